//go:build getty && (!solo || solo_getty)

// The getty servers are behind the "getty" build tag so the rest of the
// harness builds while the library's core is being written. The compare
// driver builds them with -tags "solo solo_getty getty" and, if that fails,
// runs the other servers and says so. (The solo tags: see main.go.)

package main

import (
	"fmt"

	gxsync "github.com/dubbogo/gost/sync"
	getty "github.com/getty-go/getty"
)

func init() {
	register("getty", "this library, OnMessage inline on the read goroutine, built-in LengthFieldCodec",
		func(addr string, _ pools) (server, error) { return newGetty(addr) })
	register("getty-pool", "this library with its own worker pool, WithServerWorkerPool(workers)",
		func(addr string, p pools) (server, error) {
			return newGetty(addr, getty.WithServerWorkerPool(p.Workers))
		})
	register("getty-pool-unordered", "this library with its own worker pool, unordered: WithServerWorkerPool(workers), WithServerOrderedDispatch(false)",
		func(addr string, p pools) (server, error) {
			return newGetty(addr, getty.WithServerWorkerPool(p.Workers), getty.WithServerOrderedDispatch(false))
		})
	register("getty-gost", "this library with WithServerTaskPool(gxsync.NewTaskPoolSimple(gost-workers)), unordered as upstream",
		func(addr string, p pools) (server, error) {
			pool := gxsync.NewTaskPoolSimple(p.Gost)
			s, err := newGetty(addr, getty.WithServerTaskPool(pool))
			if err != nil {
				pool.Close()
				return nil, err
			}
			s.pool = pool
			return s, nil
		})
	register("getty-ws", "this library over WebSocket (NewWSServer), inline, built-in LengthFieldCodec (loadgen -ws)",
		func(addr string, _ pools) (server, error) { return newGettyWS(addr) })
	register("getty-ws-pool", "this library over WebSocket with WithServerWorkerPool(workers) (loadgen -ws)",
		func(addr string, p pools) (server, error) {
			return newGettyWS(addr, getty.WithServerWorkerPool(p.Workers))
		})
	register("getty-ws-gost", "this library over WebSocket with WithServerTaskPool(gxsync.NewTaskPoolSimple(gost-workers)) (loadgen -ws)",
		func(addr string, p pools) (server, error) {
			pool := gxsync.NewTaskPoolSimple(p.Gost)
			s, err := newGettyWS(addr, getty.WithServerTaskPool(pool))
			if err != nil {
				pool.Close()
				return nil, err
			}
			s.pool = pool
			return s, nil
		})
}

func newGettyWS(addr string, opts ...getty.ServerOption) (*gettyServer, error) {
	srv := getty.NewWSServer(append([]getty.ServerOption{getty.WithLocalAddress(addr)}, opts...)...)
	srv.RunEventLoop(func(s getty.Session) error {
		s.SetPkgHandler(&getty.LengthFieldCodec{})
		s.SetEventListener(&gettyEcho{})
		s.SetMaxMsgLen(maxFrame + 4)
		return nil
	})
	if srv.IsClosed() {
		return nil, fmt.Errorf("getty-ws: cannot listen on %s", addr)
	}
	return &gettyServer{srv: srv}, nil
}

type gettyEcho struct{ getty.BaseListener }

func (gettyEcho) OnMessage(s getty.Session, pkg interface{}) {
	work()
	_, _, _ = s.WritePkg(pkg, 0)
}

type gettyServer struct {
	srv  getty.Server
	pool interface{ Close() } // a task pool the server runs on, closed after it
}

func newGetty(addr string, opts ...getty.ServerOption) (s *gettyServer, err error) {
	srv := getty.NewTCPServer(append([]getty.ServerOption{getty.WithLocalAddress(addr)}, opts...)...)
	defer func() { // as upstream, RunEventLoop may panic when it cannot listen
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r)
		}
	}()
	srv.RunEventLoop(func(s getty.Session) error {
		s.SetPkgHandler(&getty.LengthFieldCodec{})
		s.SetEventListener(&gettyEcho{})
		s.SetMaxMsgLen(maxFrame + 4)
		return nil
	})
	return &gettyServer{srv: srv}, nil
}

func (s *gettyServer) Addr() string {
	return addrOf(s.srv.(getty.StreamServer).Listener().Addr())
}

func (s *gettyServer) Close() error {
	s.srv.Close()
	if s.pool != nil {
		s.pool.Close()
	}
	return nil
}
