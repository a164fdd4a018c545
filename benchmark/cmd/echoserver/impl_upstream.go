//go:build !solo || solo_upstream

package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"

	upgetty "github.com/apache/dubbo-getty"
	gxsync "github.com/dubbogo/gost/sync"
)

func init() {
	register("upstream", "apache/dubbo-getty v1.4.10, OnMessage inline on the read goroutine (logger at error level)",
		func(addr string, _ pools) (server, error) { return newUpstream(addr, 0) })
	register("upstream-pool", "apache/dubbo-getty v1.4.10 with gxsync.NewTaskPoolSimple(gost-workers) (logger at error level)",
		func(addr string, p pools) (server, error) { return newUpstream(addr, p.Gost) })
	register("upstream-ws", "apache/dubbo-getty v1.4.10 over WebSocket (NewWSServer), inline (logger at error level; loadgen -ws)",
		func(addr string, _ pools) (server, error) { return newUpstreamWS(addr) })
}

// upstreamCodec is the idiomatic upstream ReadWriter for a length-prefixed
// frame (as in its hello demo): Read copies the payload out of getty's
// buffer (the buffer is reused, and with a task pool OnMessage runs later),
// Write allocates the frame it returns.
type upstreamCodec struct{}

func (upstreamCodec) Read(_ upgetty.Session, data []byte) (interface{}, int, error) {
	if len(data) < 4 {
		return nil, 0, nil
	}
	n := int(binary.BigEndian.Uint32(data))
	if n > maxFrame {
		return nil, 0, fmt.Errorf("frame of %d bytes exceeds %d", n, maxFrame)
	}
	if len(data) < 4+n {
		return nil, 4 + n, nil
	}
	p := make([]byte, n)
	copy(p, data[4:4+n])
	return p, 4 + n, nil
}

func (upstreamCodec) Write(_ upgetty.Session, pkg interface{}) ([]byte, error) {
	p, ok := pkg.([]byte)
	if !ok {
		return nil, errors.New("upstreamCodec: want []byte")
	}
	b := make([]byte, 4+len(p))
	binary.BigEndian.PutUint32(b, uint32(len(p)))
	copy(b[4:], p)
	return b, nil
}

type upstreamEcho struct{}

// OnOpen yields once. Built against gost v1.14.4 (the version this repo
// uses; upstream v1.4.10 was released against v1.13.1), upstream's session
// start panics with "timer queue is full" when connections arrive in a burst
// on one CPU: gost's timer wheel now enqueues without blocking and the accept
// goroutine outruns the goroutine that drains the queue. OnOpen runs on the
// accept goroutine just before that enqueue, so a yield lets the queue drain.
// It costs nothing in the measured window (connections are opened before).
func (upstreamEcho) OnOpen(upgetty.Session) error {
	runtime.Gosched()
	return nil
}
func (upstreamEcho) OnClose(upgetty.Session)        {}
func (upstreamEcho) OnError(upgetty.Session, error) {}
func (upstreamEcho) OnCron(upgetty.Session)         {}
func (upstreamEcho) OnMessage(s upgetty.Session, pkg interface{}) {
	work()
	_, _, _ = s.WritePkg(pkg, 0)
}

type upstreamServer struct {
	srv  upgetty.Server
	pool gxsync.GenericTaskPool
}

func newUpstream(addr string, workers int) (*upstreamServer, error) {
	// Shipped as is, upstream logs a DEBUG line per packet; measure it with
	// the level a production deployment would use.
	if err := upgetty.SetLoggerLevel(upgetty.LoggerLevelError); err != nil {
		return nil, err
	}
	opts := []upgetty.ServerOption{upgetty.WithLocalAddress(addr)}
	var pool gxsync.GenericTaskPool
	if workers > 0 {
		pool = gxsync.NewTaskPoolSimple(workers)
		opts = append(opts, upgetty.WithServerTaskPool(pool))
	}
	srv := upgetty.NewTCPServer(opts...)
	if err := runUpstream(srv); err != nil {
		return nil, err
	}
	return &upstreamServer{srv: srv, pool: pool}, nil
}

// newUpstreamWS is upstream's WebSocket server on "/": one message is one
// Read call (each loadgen frame is one message), WritePkg one binary message.
func newUpstreamWS(addr string) (*upstreamServer, error) {
	if err := upgetty.SetLoggerLevel(upgetty.LoggerLevelError); err != nil {
		return nil, err
	}
	srv := upgetty.NewWSServer(upgetty.WithLocalAddress(addr), upgetty.WithWebsocketServerPath("/"))
	if err := runUpstream(srv); err != nil {
		return nil, err
	}
	return &upstreamServer{srv: srv}, nil
}

// runUpstream starts srv's event loop with the echo session set-up.
func runUpstream(srv upgetty.Server) (err error) {
	defer func() { // RunEventLoop panics when it cannot listen
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r)
		}
	}()
	codec, handler := upstreamCodec{}, upstreamEcho{}
	srv.RunEventLoop(func(sess upgetty.Session) error {
		sess.SetName("echo")
		sess.SetMaxMsgLen(maxFrame + 4)
		sess.SetPkgHandler(codec)
		sess.SetEventListener(handler)
		return nil
	})
	return nil
}

func (s *upstreamServer) Addr() string {

	return s.srv.(upgetty.StreamServer).Listener().Addr().String()
}

func (s *upstreamServer) Close() error {
	s.srv.Close()
	if s.pool != nil {
		s.pool.Close()
	}
	return nil
}
