package getty_test

// Graceful close: what was accepted is flushed, and stuck peers or
// sessions do not hold Close or Shutdown forever. See reliability_test.go.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	getty "github.com/getty-go/getty"
)

// relBurstListener writes count numbered messages from OnMessage on "go",
// then closes its session.
type relBurstListener struct {
	getty.BaseListener
	count int
	errs  chan error
}

func (l *relBurstListener) OnMessage(s getty.Session, pkg any) {
	if string(payload(pkg)) != "go" {
		return
	}
	for i := 0; i < l.count; i++ {
		if _, _, err := s.WritePkg(fmt.Sprintf("%06d", i), 10*time.Second); err != nil {
			l.errs <- fmt.Errorf("message %d: %w", i, err)
			return
		}
	}
	s.Close()
}

// relReadNumbered reads count numbered messages in order, then the end.
func relReadNumbered(p *relPeer, count int) error {
	for i := 0; i < count; i++ {
		m, err := p.recv(10 * time.Second)
		if err != nil {
			return fmt.Errorf("after %d of %d messages: %w", i, count, err)
		}
		if want := fmt.Sprintf("%06d", i); m != want {
			return fmt.Errorf("message %d is %q", i, m)
		}
	}
	m, err := p.recv(10 * time.Second)
	if !errors.Is(err, errRelClosed) {
		return fmt.Errorf("after the last message: %q, %v (want the end)", m, err)
	}
	if _, err := p.waitClosed(10 * time.Second); err != nil {
		return err
	}
	return nil
}

// 10,000 numbered messages, then Close: the peer gets all of them in order,
// then the end of the stream. Written from a goroutine, or from OnMessage
// (inline, where replies are gathered while more input waits, or on the
// worker pool).
func TestReliabGracefulClose(t *testing.T) {
	const count = 10000
	run(t, func(t *testing.T, tr transport) {
		t.Run("writer goroutine", func(t *testing.T) {
			sessCh := make(chan getty.Session, 1)
			srv := startServer(t, tr.newServer(t), relSessionGrabber(getty.BaseListener{}, sessCh))
			p := relConnect(t, relTargetOf(t, tr, srv))
			s := <-sessCh
			done := make(chan error, 1)
			go func() { done <- relReadNumbered(p, count) }()
			for i := 0; i < count; i++ {
				_, _, err := s.WritePkg(fmt.Sprintf("%06d", i), 10*time.Second)
				require.NoError(t, err, "message %d", i)
			}
			s.Close()
			require.NoError(t, <-done)
		})
		for _, mode := range []string{"inline", "workers"} {
			t.Run("from OnMessage "+mode, func(t *testing.T) {
				var opts []getty.ServerOption
				if mode == "workers" {
					opts = append(opts, getty.WithServerWorkerPool(2))
				}
				l := &relBurstListener{count: count, errs: make(chan error, 1)}
				srv := startServer(t, tr.newServer(t, opts...), withCodec(l))
				p := relConnect(t, relTargetOf(t, tr, srv))
				done := make(chan error, 1)
				go func() { done <- relReadNumbered(p, count) }()
				// "go" and more input in one write: inline dispatch gathers
				// the replies, and Close must flush them.
				if tr.stream {
					require.NoError(t, p.raw(append(frame("go"), frame("more")...)))
				} else {
					require.NoError(t, p.send("go"))
					require.NoError(t, p.send("more"))
				}
				select {
				case err := <-done:
					require.NoError(t, err)
				case err := <-l.errs:
					t.Fatal(err)
				}
			})
		}
	}, connected)
}

// Three Close calls race 32 writers: no panic, no race, every write
// returns nil or ErrSessionClosed, and the peer gets exactly the messages
// whose write returned nil, each whole.
func TestReliabConcurrentClose(t *testing.T) {
	run(t, func(t *testing.T, tr transport) {
		for round := 0; round < 5; round++ {
			sessCh := make(chan getty.Session, 1)
			srv := startServer(t, tr.newServer(t), relSessionGrabber(getty.BaseListener{}, sessCh))
			p := relConnect(t, relTargetOf(t, tr, srv))
			s := <-sessCh
			received := make(chan int, 1)
			go func() {
				n := 0
				for {
					if _, err := p.recv(10 * time.Second); err != nil {
						assert.ErrorIsf(t, err, errRelClosed, "peer: %v", err)
						received <- n
						return
					}
					n++
				}
			}()
			var (
				wg sync.WaitGroup
				ok atomic.Int64
			)
			for w := 0; w < 32; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; i < 200; i++ {
						_, _, err := s.WritePkg(fmt.Sprintf("w%02d-%03d", w, i), 5*time.Second)
						if err == nil {
							ok.Add(1)
							continue
						}
						assert.ErrorIsf(t, err, getty.ErrSessionClosed, "write: %v", err)
						return
					}
				}()
			}
			for i := 0; i < 3; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					time.Sleep(time.Duration(1+round) * time.Millisecond)
					s.Close()
				}()
			}
			wg.Wait()
			select {
			case n := <-received:
				assert.Equal(t, int(ok.Load()), n, "round %d: messages received vs writes that returned nil", round)
			case <-time.After(15 * time.Second):
				t.Fatal("peer did not see the end")
			}
			srv.Close()
		}
	}, connected)
}

// relBlocker blocks OnMessage until release closes.
type relBlocker struct {
	getty.BaseListener
	entered chan struct{}
	release chan struct{}
	closed  chan struct{}
}

func (b *relBlocker) OnMessage(getty.Session, any) {
	b.entered <- struct{}{}
	<-b.release
}

func (b *relBlocker) OnClose(getty.Session) { close(b.closed) }

// Shutdown with a session stuck in OnMessage returns ctx.Err() when ctx
// ends, and the socket is closed all the same; once the handler returns,
// everything ends.
func TestReliabShutdownStuckSession(t *testing.T) {
	runAtOnce(t, func(t *testing.T, tr transport) {
		for _, mode := range []string{"inline", "workers"} {
			t.Run(mode, func(t *testing.T) {
				var opts []getty.ServerOption
				if mode == "workers" {
					opts = append(opts, getty.WithServerWorkerPool(2))
				}
				b := &relBlocker{entered: make(chan struct{}, 1), release: make(chan struct{}), closed: make(chan struct{})}
				srv := tr.newServer(t, opts...)
				srv.RunEventLoop(withCodec(b))
				var once sync.Once
				unblock := func() { once.Do(func() { close(b.release) }) }
				t.Cleanup(func() { unblock(); srv.Close() })
				p := relConnect(t, relTargetOf(t, tr, srv))
				require.NoError(t, p.send("block"))
				<-b.entered

				ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
				defer cancel()
				start := time.Now()
				err := srv.Shutdown(ctx)
				took := time.Since(start)
				assert.ErrorIs(t, err, context.DeadlineExceeded)
				assert.Less(t, took, 2*time.Second, "Shutdown outlived its context")

				gone, err := p.waitClosed(3 * time.Second)
				assert.NoError(t, err, "socket of the stuck session still open %v after Shutdown returned", gone)
				t.Logf("Shutdown returned after %v, the peer saw the end %v later", took.Round(time.Millisecond), gone.Round(time.Millisecond))

				unblock()
				select {
				case <-b.closed:
				case <-time.After(5 * time.Second):
					t.Fatal("no OnClose once the handler returned")
				}
				srv.Close()
			})
		}
	}, connected)
}

// Close on a peer that stopped reading: Close is bounded by the wait time
// (SetWaitTime), not by a writer's longer timeout nor by TLS's 5 s
// close_notify attempt, and a writer blocked on the session is released.
func TestReliabCloseWithStuckPeer(t *testing.T) {
	const wait = 200 * time.Millisecond
	runAtOnce(t, func(t *testing.T, tr transport) {
		t.Run("writer in flight", func(t *testing.T) {
			sessCh := make(chan getty.Session, 1)
			rec := newRelErrRecorder(false)
			srv := startServer(t, tr.newServer(t), relSessionGrabber(rec, sessCh, func(s getty.Session) { s.SetWaitTime(wait) }))
			relConnect(t, relTargetOf(t, tr, srv)) // never reads
			s := <-sessCh
			writer := make(chan time.Time, 1)
			go func() {
				pkg := bytes.Repeat([]byte{'x'}, 16<<10)
				for i := 0; i < 4000; i++ {
					if _, _, err := s.WritePkg(pkg, 3*time.Second); err != nil {
						break
					}
				}
				writer <- time.Now()
			}()
			time.Sleep(300 * time.Millisecond) // the writer is blocked by now
			start := time.Now()
			s.Close()
			took := time.Since(start)
			var released time.Duration
			select {
			case at := <-writer:
				released = at.Sub(start)
			case <-time.After(10 * time.Second):
				t.Fatal("writer still blocked 10s after Close")
			}
			t.Logf("Close returned after %v (wait time %v); the blocked writer was released after %v",
				took.Round(time.Millisecond), wait, released.Round(time.Millisecond))
			assert.Less(t, took, wait+1300*time.Millisecond, "Close waited past its wait time")
			assert.Less(t, released, wait+1300*time.Millisecond, "a writer stayed blocked after Close")
		})
		t.Run("full buffer, no writer", func(t *testing.T) {
			sessCh := make(chan getty.Session, 1)
			srv := startServer(t, tr.newServer(t), relSessionGrabber(getty.BaseListener{}, sessCh, func(s getty.Session) { s.SetWaitTime(wait) }))
			relConnect(t, relTargetOf(t, tr, srv)) // never reads
			s := <-sessCh
			// Fill the TCP socket under the session (under TLS too) until
			// it takes no more bytes; the session has no write pending.
			tcp := getty.TCPConnOf(s.Conn())
			require.NotNil(t, tcp)
			require.NoError(t, relFill(tcp))
			start := time.Now()
			s.Close()
			took := time.Since(start)
			t.Logf("Close with a full send buffer returned after %v (wait time %v)", took.Round(time.Millisecond), wait)
			assert.Less(t, took, wait+1300*time.Millisecond, "Close waited past its wait time")
		})
	}, connected)
}

// relFill writes to a socket whose peer does not read until the kernel
// takes no more (three 50 ms attempts in a row write nothing), so even a
// small write (a TLS close_notify) would block.
func relFill(c *net.TCPConn) error {
	defer c.SetWriteDeadline(time.Time{})
	chunk := make([]byte, 16<<10)
	_ = c.SetWriteDeadline(time.Now().Add(300 * time.Millisecond))
	for i := 0; i < 4000; i++ {
		if _, err := c.Write(chunk); err != nil {
			break
		}
	}
	for i, zero := 0, 0; i < 100; i++ {
		time.Sleep(20 * time.Millisecond)
		_ = c.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
		if n, _ := c.Write(chunk); n > 0 { // a probe of 1 byte would fit in the last segment's room
			zero = 0
			continue
		}
		if zero++; zero == 3 {
			return nil
		}
	}
	return errors.New("the socket kept taking bytes")
}
