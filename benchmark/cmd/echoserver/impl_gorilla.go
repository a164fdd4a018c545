//go:build !solo || solo_gorilla

package main

import (
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// The WebSocket baseline: a plain gorilla/websocket echo server, one
// goroutine per connection, each message echoed as it is read
// (NextReader, NextWriter, io.CopyBuffer with a per-connection buffer): one
// write per message. Used with loadgen -ws.
func init() {
	register("gorilla", "WebSocket: plain gorilla/websocket, goroutine per connection, one write per message (loadgen -ws)",
		func(addr string, _ pools) (server, error) { return newGorilla(addr) })
}

type gorillaServer struct {
	ln    net.Listener
	hs    *http.Server
	mu    sync.Mutex
	conns map[*websocket.Conn]struct{}
	wg    sync.WaitGroup
}

func newGorilla(addr string) (*gorillaServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := &gorillaServer{ln: ln, conns: map[*websocket.Conn]struct{}{}}
	up := websocket.Upgrader{ReadBufferSize: 4096, WriteBufferSize: 4096}
	s.hs = &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		defer func() {
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
			c.Close()
		}()
		c.SetReadLimit(maxFrame + 4)
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
	s.wg.Add(1)
	go func() { defer s.wg.Done(); _ = s.hs.Serve(ln) }()
	return s, nil
}

func (s *gorillaServer) Addr() string { return addrOf(s.ln.Addr()) }

func (s *gorillaServer) Close() error {
	_ = s.hs.Close()
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}
