//go:build !solo || solo_coder

package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// coder/websocket (formerly nhooyr.io/websocket), one goroutine per
// connection, each message read whole into a per-connection buffer
// (Reader) and echoed in one frame (Write). Used with loadgen -ws.
func init() {
	register("coder", "WebSocket: coder/websocket, goroutine per connection, Reader then Write: one frame and one write per message (loadgen -ws)",
		func(addr string, _ pools) (server, error) { return newCoder(addr) })
}

type coderServer struct {
	ln     net.Listener
	hs     *http.Server
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func newCoder(addr string) (*coderServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := &coderServer{ln: ln}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.hs = &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		c.SetReadLimit(maxFrame + 4)
		// The message is read whole, then written with Write: coder's
		// Writer sends what it holds as a fragment once its buffer is
		// full, and loadgen wants each reply in one frame.
		buf := make([]byte, 4096)
		for {
			typ, rd, err := c.Reader(s.ctx)
			if err != nil {
				return
			}
			n := 0
			for err == nil {
				if n == len(buf) {
					buf = append(buf, 0)[:n]
					buf = buf[:cap(buf)]
				}
				var m int
				m, err = rd.Read(buf[n:])
				n += m
			}
			if err != io.EOF {
				return
			}
			if err := c.Write(s.ctx, typ, buf[:n]); err != nil {
				return
			}
		}
	})}
	s.wg.Add(1)
	go func() { defer s.wg.Done(); _ = s.hs.Serve(ln) }()
	return s, nil
}

func (s *coderServer) Addr() string { return addrOf(s.ln.Addr()) }

func (s *coderServer) Close() error {
	s.cancel() // ends every connection's read
	_ = s.hs.Close()
	s.wg.Wait()
	return nil
}
