//go:build !solo || solo_netpoll

package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/cloudwego/netpoll"
)

func init() {
	register("netpoll", "cloudwego/netpoll event loop: frames copied into the nocopy writer, one Flush per event",
		func(addr string, _ pools) (server, error) { return newNetpoll(addr) })
}

type netpollServer struct {
	ln   netpoll.Listener
	loop netpoll.EventLoop
	done chan error
}

// netpollEcho is netpoll's idiomatic handler: it must consume all the input
// (netpoll calls it again while unread bytes remain), so it reads whole
// frames with the blocking Peek/Next, copies each reply into the nocopy
// writer, and flushes once the input is drained or before it would wait.
func netpollEcho(_ context.Context, conn netpoll.Connection) error {
	r, w := conn.Reader(), conn.Writer()
	pending := false
	flush := func() error {
		if !pending {
			return nil
		}
		pending = false
		return w.Flush()
	}
	for {
		if r.Len() < 4 {
			if err := flush(); err != nil {
				return err
			}
		}
		h, err := r.Peek(4)
		if err != nil {
			return err
		}
		n := int(binary.BigEndian.Uint32(h))
		if n > maxFrame {
			_ = conn.Close()
			return fmt.Errorf("frame of %d bytes exceeds %d", n, maxFrame)
		}
		if r.Len() < 4+n {
			if err := flush(); err != nil {
				return err
			}
		}
		frame, err := r.Next(4 + n)
		if err != nil {
			return err
		}
		work()
		out, err := w.Malloc(4 + n)
		if err != nil {
			return err
		}
		copy(out, frame)
		pending = true
		if r.Len() == 0 {
			break
		}
	}
	if err := r.Release(); err != nil {
		return err
	}
	return flush()
}

func newNetpoll(addr string) (*netpollServer, error) {
	ln, err := netpoll.CreateListener("tcp", addr)
	if err != nil {
		return nil, err
	}
	loop, err := netpoll.NewEventLoop(netpollEcho)
	if err != nil {
		_ = ln.Close()
		return nil, err
	}
	s := &netpollServer{ln: ln, loop: loop, done: make(chan error, 1)}
	go func() { s.done <- loop.Serve(ln) }()
	return s, nil
}

func (s *netpollServer) Addr() string { return s.ln.Addr().String() }

func (s *netpollServer) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.loop.Shutdown(ctx)
	select {
	case <-s.done:
	case <-ctx.Done():
	}
	return err
}
