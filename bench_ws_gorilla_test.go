package getty_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"

	"github.com/gorilla/websocket"
)

// BenchmarkWSEchoGorilla is BenchmarkWSEcho's baseline in the same run: a
// plain gorilla/websocket echo server (one goroutine per connection, each
// message copied from NextReader to NextWriter, as benchmark/'s gorilla
// server), driven by the same raw client and measured the same way.
func BenchmarkWSEchoGorilla(b *testing.B) {
	for _, inflight := range []int{1, 16} {
		for _, size := range []int{128, 1024} {
			b.Run(fmt.Sprintf("gorilla/%dx%d", inflight, size), func(b *testing.B) {
				addr, stop := gorillaEchoServer(b)
				defer stop()
				benchWSClient(b, addr, inflight, size)
			})
		}
	}
}

func gorillaEchoServer(b *testing.B) (addr string, stop func()) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	up := websocket.Upgrader{ReadBufferSize: 4096, WriteBufferSize: 4096}
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		buf := make([]byte, 4096)
		for {
			typ, rd, err := c.NextReader()
			if err != nil {
				return
			}
			wr, err := c.NextWriter(typ)
			if err != nil {
				return
			}
			if _, err := io.CopyBuffer(wr, rd, buf); err != nil {
				return
			}
			if err := wr.Close(); err != nil {
				return
			}
		}
	})}
	go func() { _ = hs.Serve(ln) }()
	return ln.Addr().String(), func() { _ = hs.Close() }
}
