//go:build !solo || solo_gnet

package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"time"

	"github.com/panjf2000/ants/v2"
	"github.com/panjf2000/gnet/v2"
	"github.com/panjf2000/gnet/v2/pkg/logging"
	"github.com/panjf2000/gnet/v2/pkg/pool/goroutine"
)

func init() {
	register("gnet", "panjf2000/gnet/v2 event loop: every complete frame in the inbound buffer echoed with one write",
		func(addr string, _ pools) (server, error) { return newGnet(addr, nil) })
	register("gnet-ants", "gnet/v2 with an ants/v2 pool: gnet's default goroutine pool (pkg/pool/goroutine.Default: 256Ki workers, non-blocking), or ants.NewPool(ants-workers) with a blocking Submit; each frame copied, worked on and echoed by AsyncWrite from the pool",
		func(addr string, p pools) (server, error) {
			if p.Ants <= 0 {
				return newGnet(addr, goroutine.Default())
			}
			pool, err := ants.NewPool(p.Ants)
			if err != nil {
				return nil, err
			}
			return newGnet(addr, pool)
		})
}

type gnetEcho struct {
	gnet.BuiltinEventEngine
	eng    gnet.Engine
	booted chan struct{}
	pool   *ants.Pool // nil: the work and the echo run on the event loop
}

func (e *gnetEcho) OnBoot(eng gnet.Engine) gnet.Action {
	e.eng = eng
	close(e.booted)
	return gnet.None
}

// OnTraffic echoes every complete frame that is buffered, with one Write,
// and leaves a partial frame for the next event.
func (e *gnetEcho) OnTraffic(c gnet.Conn) gnet.Action {
	buf, err := c.Peek(-1)
	if err != nil {
		return gnet.None
	}
	total := 0
	for len(buf)-total >= 4 {
		n := int(binary.BigEndian.Uint32(buf[total:]))
		if n > maxFrame {
			return gnet.Close
		}
		if len(buf)-total < 4+n {
			break
		}
		if e.pool != nil {
			if !e.submit(c, buf[total:total+4+n]) {
				return gnet.Close
			}
		} else {
			work() // on the event loop, as gnet's handlers run
		}
		total += 4 + n
	}
	if e.pool != nil {
		_, _ = c.Discard(total)
		return gnet.None
	}
	if total == 0 {
		return gnet.None
	}
	if _, err := c.Write(buf[:total]); err != nil {
		return gnet.Close
	}
	_, _ = c.Discard(total)
	return gnet.None
}

// submit hands one frame to the pool, the way gnet's documentation
// suggests for handlers that block: the inbound buffer is reused by the
// loop, so the task gets a copy, and replies go back with AsyncWrite (the
// only Conn method safe off the loop). Replies of one connection may leave
// out of order, as with upstream's gost pool.
func (e *gnetEcho) submit(c gnet.Conn, frame []byte) bool {
	f := append([]byte(nil), frame...)
	return e.pool.Submit(func() {
		work()
		_ = c.AsyncWrite(f, nil)
	}) == nil
}

// gnetLogger keeps gnet's INFO banner off stdout (the control channel);
// warnings and errors go to stderr.
type gnetLogger struct{}

func (gnetLogger) Debugf(string, ...any) {}
func (gnetLogger) Infof(string, ...any)  {}
func (gnetLogger) Warnf(f string, a ...any) {
	fmt.Fprintf(os.Stderr, "gnet: WARN "+f+"\n", a...)
}
func (gnetLogger) Errorf(f string, a ...any) {
	fmt.Fprintf(os.Stderr, "gnet: ERROR "+f+"\n", a...)
}
func (gnetLogger) Fatalf(f string, a ...any) {
	fmt.Fprintf(os.Stderr, "gnet: FATAL "+f+"\n", a...)
	os.Exit(1)
}

type gnetServer struct {
	addr string
	h    *gnetEcho
	done chan error
}

func newGnet(addr string, pool *ants.Pool) (*gnetServer, error) {
	a, err := freeLoopbackPort(addr)
	if err != nil {
		return nil, err
	}
	h := &gnetEcho{booted: make(chan struct{}), pool: pool}
	s := &gnetServer{addr: a, h: h, done: make(chan error, 1)}
	go func() {
		s.done <- gnet.Run(h, "tcp://"+a, gnet.WithMulticore(true), gnet.WithReusePort(false),
			gnet.WithLogger(gnetLogger{}), gnet.WithLogLevel(logging.ErrorLevel))
	}()
	select {
	case <-h.booted:
		return s, nil
	case err := <-s.done:
		return nil, fmt.Errorf("gnet.Run: %w", err)
	case <-time.After(10 * time.Second):
		return nil, fmt.Errorf("gnet did not boot within 10s")
	}
}

func (s *gnetServer) Addr() string { return s.addr }

func (s *gnetServer) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.h.eng.Stop(ctx)
	<-s.done
	if s.h.pool != nil {
		_ = s.h.pool.ReleaseTimeout(5 * time.Second)
	}
	return err
}
