package getty_test

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	getty "github.com/getty-go/getty"
)

// BenchmarkWSEcho is BenchmarkEcho over WebSocket: a raw client (frames
// built once, masked with a zero key, so allocation-free) sends inflight
// binary messages of one length-prefixed package each in one write and
// reads the echoes. One op is one message; allocs/op are the server's.
func BenchmarkWSEcho(b *testing.B) {
	for _, m := range benchModes {
		for _, inflight := range []int{1, 16} {
			for _, size := range []int{128, 1024} {
				benchWSEcho(b, m.name, m.opts, inflight, size)
			}
		}
	}
}

func benchWSEcho(b *testing.B, mode string, modeOpts func() ([]getty.ServerOption, func()), inflight, size int) {
	b.Run(fmt.Sprintf("%s/%dx%d", mode, inflight, size), func(b *testing.B) {
		opts, done := modeOpts()
		defer done()
		srv := getty.NewWSServer(append(opts, getty.WithLocalAddress("127.0.0.1:0"))...)
		srv.RunEventLoop(func(s getty.Session) error {
			s.SetPkgHandler(&getty.LengthFieldCodec{})
			s.SetEventListener(benchEcho{})
			return nil
		})
		defer srv.Close()
		benchWSClient(b, srv.Addr().String(), inflight, size)
	})
}

// benchWSClient runs the benchmark's client against the WebSocket echo
// server at addr: inflight messages of size bytes each per round trip.
func benchWSClient(b *testing.B, addr string, inflight, size int) {
	c, br := benchWSDial(b, addr)
	defer c.Close()
	msg := make([]byte, 4+size)
	binary.BigEndian.PutUint32(msg, uint32(size))
	var req []byte
	for i := 0; i < inflight; i++ {
		req = append(req, 0x82, 0x80|126, byte(len(msg)>>8), byte(len(msg)), 0, 0, 0, 0)
		req = append(req, msg...)
	}
	resp := make([]byte, 4+len(msg))
	roundTrip := func() {
		if _, err := c.Write(req); err != nil {
			b.Fatal(err)
		}
		for i := 0; i < inflight; i++ {
			if _, err := io.ReadFull(br, resp); err != nil {
				b.Fatal(err)
			}
		}
	}
	for i := 0; i < 100; i++ { // warm the pools
		roundTrip()
	}
	b.SetBytes(int64(2 * len(msg)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N/inflight+1; i++ {
		roundTrip()
	}
}

func benchWSDial(b *testing.B, addr string) (net.Conn, *bufio.Reader) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	_, _ = io.WriteString(c, "GET / HTTP/1.1\r\nHost: "+addr+"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
	br := bufio.NewReaderSize(c, 64<<10)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		b.Fatalf("upgrade: %v %v", err, resp)
	}
	resp.Body.Close()
	if strings.Contains(resp.Header.Get("Sec-WebSocket-Extensions"), "deflate") {
		b.Fatal("deflate negotiated")
	}
	return c, br
}
