package getty_test

// Churn: sessions opening and closing in a loop leave nothing behind. See reliability_test.go.

import (
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	getty "github.com/getty-go/getty"
	"github.com/getty-go/getty/internal/race"
)

// relChurnListener echoes, closes its session on "bye", and counts.
type relChurnListener struct {
	getty.BaseListener
	opens, closes, errs atomic.Int64
}

func (l *relChurnListener) OnOpen(getty.Session) error       { l.opens.Add(1); return nil }
func (l *relChurnListener) OnClose(getty.Session)            { l.closes.Add(1) }
func (l *relChurnListener) OnError(_ getty.Session, _ error) { l.errs.Add(1) }
func (l *relChurnListener) OnMessage(s getty.Session, pkg any) {
	if string(payload(pkg)) == "bye" {
		s.Close()
		return
	}
	_, _, _ = s.WritePkg(pkg, 5*time.Second)
}

// relChurnSize is how many sessions each churn round holds open at once.
func relChurnSize(tr transport) int {
	// A TLS handshake costs ~1 ms of CPU (~5 ms under -race): fewer
	// sessions on tls and wss. Under -race, 1,000 on tcp and ws: every
	// session costs ~5x the CPU there, and 3,000 (make test-floor, without
	// -race) took 15 of make test's seconds for the same assertions.
	switch {
	case testing.Short():
		return 300
	case (tr.name == "tcp" || tr.name == "ws") && !race.Enabled:
		return 3000
	case tr.name == "tcp" || tr.name == "ws":
		return 1000
	case race.Enabled:
		return 200
	}
	return 500
}

// 3 rounds of N sessions open at once, one echo each, closed from
// alternating sides: OnOpen and OnClose balance, and goroutines and
// descriptors come back to their baseline.
func TestReliabChurn(t *testing.T) {
	run(t, func(t *testing.T, tr transport) {
		const rounds, slack = 3, 5
		n := relChurnSize(tr)
		baseG, baseFD := runtime.NumGoroutine(), relOpenFDs(t)
		l := &relChurnListener{}
		srv := startServer(t, tr.newServer(t), withCodec(l))
		tg := relTargetOf(t, tr, srv)
		srvG, srvFD := runtime.NumGoroutine(), relOpenFDs(t)

		for r := 1; r <= rounds; r++ {
			start := time.Now()
			var (
				ready, done sync.WaitGroup
				release     = make(chan struct{})
				errs        = make(chan error, n)
			)
			for i := 0; i < n; i++ {
				ready.Add(1)
				done.Add(1)
				go func() {
					defer done.Done()
					p, err := tg.connect()
					if err == nil {
						err = p.echo(strconv.Itoa(i))
					}
					ready.Done()
					if err != nil {
						errs <- err
						if p != nil {
							p.Close()
						}
						return
					}
					<-release
					if i%2 == 0 {
						p.Close() // the client closes
						return
					}
					defer p.Close()
					if err := p.send("bye"); err != nil { // the server closes
						errs <- err
						return
					}
					if _, err := p.waitClosed(20 * time.Second); err != nil {
						errs <- fmt.Errorf("server did not close: %w", err)
					}
				}()
			}
			ready.Wait()
			opened := time.Since(start)
			open := l.opens.Load() - l.closes.Load()
			close(release)
			done.Wait()
			close(errs)
			nerr := 0
			for err := range errs {
				assert.Falsef(t, nerr < 5, "round %d: %v", r, err)
				nerr++
			}
			require.Zero(t, nerr, "round %d: failed sessions", r)
			assert.Equal(t, int64(n), open, "round %d: sessions open at once", r)
			eventually(t, "every OnClose", func() bool { return l.closes.Load() == int64(r*n) })
			assert.Equal(t, int64(r*n), l.opens.Load(), "round %d: OnOpen calls", r)
			var g, fds int
			for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
				g, fds = runtime.NumGoroutine(), relOpenFDs(t)
				if g <= srvG+slack && fds <= srvFD+slack || time.Now().After(deadline) {
					break
				}
			}
			t.Logf("round %d: %d sessions open at once after %v, all closed after %v; goroutines %d (serving baseline %d), fds %d (baseline %d)",
				r, n, opened.Round(time.Millisecond), time.Since(start).Round(time.Millisecond), g, srvG, fds, srvFD)
			assert.LessOrEqual(t, g, srvG+slack, "round %d: goroutines left", r)
			assert.LessOrEqual(t, fds, srvFD+slack, "round %d: descriptors left", r)
		}
		assert.Zero(t, l.errs.Load(), "OnError calls")
		srv.Close()
		eventually(t, "goroutines and descriptors back to the baseline", func() bool {
			return runtime.NumGoroutine() <= baseG+slack && relOpenFDs(t) <= baseFD+slack
		})
	}, connected)
}
