package getty_test

import (
	"encoding/binary"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gxsync "github.com/dubbogo/gost/sync"
	"github.com/stretchr/testify/assert"

	getty "github.com/getty-go/getty"
	"github.com/getty-go/getty/internal/race"
)

// seqChecker records, per session, the numbered messages it got.
type seqChecker struct {
	getty.BaseListener
	mu      sync.Mutex
	next    map[getty.Session]uint32
	bad     int
	total   atomic.Int64
	ordered bool
}

func (c *seqChecker) OnMessage(s getty.Session, pkg any) {
	n := binary.BigEndian.Uint32(pkg.(*getty.Frame).Payload)
	c.mu.Lock()
	if c.ordered && n != c.next[s] {
		c.bad++
	}
	c.next[s] = n + 1
	c.mu.Unlock()
	c.total.Add(1)
}

// sendNumbered writes count numbered frames on a raw connection.
func sendNumbered(t *testing.T, c net.Conn, count int) {
	buf := make([]byte, 0, 8*1024)
	for i := 0; i < count; i++ {
		buf = binary.BigEndian.AppendUint32(buf, 4)
		buf = binary.BigEndian.AppendUint32(buf, uint32(i))
		if len(buf) == cap(buf) || i == count-1 {
			if _, err := c.Write(buf); err != nil {
				t.Error(err)
				return
			}
			buf = buf[:0]
		}
	}
}

func dispatchOrder(t *testing.T, ordered bool, opts ...getty.ServerOption) {
	sessions, each := 100, 10000
	if race.Enabled {
		each = 2000
	}
	chk := &seqChecker{next: map[getty.Session]uint32{}, ordered: ordered}
	srv := startServer(t, row("tcp").newServer(t, opts...), withCodec(chk))
	var wg sync.WaitGroup
	for i := 0; i < sessions; i++ {
		c := rawDial(t, srv)
		wg.Add(1)
		go func() { defer wg.Done(); sendNumbered(t, c, each) }()
	}
	wg.Wait()
	eventually(t, "every message delivered", func() bool { return chk.total.Load() == int64(sessions*each) })
	chk.mu.Lock()
	defer chk.mu.Unlock()
	assert.Zero(t, chk.bad, "messages out of order")
	assert.Len(t, chk.next, sessions)
}

func TestDispatchBuiltinPoolKeepsOrder(t *testing.T) {
	dispatchOrder(t, true, getty.WithServerWorkerPool(8))
}

func TestDispatchGostPoolLosesNothing(t *testing.T) {
	pool := gxsync.NewTaskPoolSimple(8)
	defer pool.Close()
	dispatchOrder(t, false, getty.WithServerTaskPool(pool))
}

func TestDispatchGostPoolOrdered(t *testing.T) {
	pool := gxsync.NewTaskPoolSimple(8)
	defer pool.Close()
	dispatchOrder(t, true, getty.WithServerTaskPool(pool), getty.WithServerOrderedDispatch(true))
}

func TestGetTaskPool(t *testing.T) {
	pool := gxsync.NewTaskPoolSimple(2)
	defer pool.Close()
	srv := getty.NewTCPServer(getty.WithServerTaskPool(pool))
	assert.Equal(t, pool, srv.GetTaskPool())
	srv.Close()
	assert.Nil(t, getty.NewTCPClient().GetTaskPool())
}

// 1,000 sessions with crons every 100 ms and a pool of 8 workers: one
// goroutine per connection plus a small constant.
func TestGoroutinesPerConnection(t *testing.T) {
	const n = 1000
	base := runtime.NumGoroutine()
	var crons atomic.Int64
	l := &cronCounter{n: &crons}
	srv := startServer(t, row("tcp").newServer(t, getty.WithServerWorkerPool(8)), withCodec(l, func(s getty.Session) { s.SetCronPeriod(100) }))
	conns := make([]net.Conn, 0, n)
	for i := 0; i < n; i++ {
		conns = append(conns, rawDial(t, srv))
	}
	for _, c := range conns[:100] { // some traffic too
		_, _ = c.Write(frame("x"))
	}
	eventually(t, "crons firing on every session", func() bool { return crons.Load() >= 2*n })
	got := runtime.NumGoroutine() - base
	t.Logf("%d sessions: %d goroutines above the baseline", n, got)
	assert.LessOrEqual(t, got, n+32, "goroutines above one per connection")
	assert.GreaterOrEqual(t, got, n)
}

type cronCounter struct {
	getty.BaseListener
	n *atomic.Int64
}

func (c *cronCounter) OnCron(getty.Session) { c.n.Add(1) }

// A handler that blocks makes the reader stop reading: the heap stays
// bounded while the peer keeps sending.
func TestBackpressureBoundsMemory(t *testing.T) {
	release := make(chan struct{})
	blocker := &blockingHandler{release: release}
	srv := startServer(t, row("tcp").newServer(t, getty.WithServerWorkerPool(2), getty.WithServerMailboxSize(16)), withCodec(blocker))
	c := rawDial(t, srv)

	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	payload := make([]byte, 16<<10)
	msg := append(binary.BigEndian.AppendUint32(nil, uint32(len(payload))), payload...)
	sent := 0
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) && sent < 256<<20 {
		// A write stuck for 500 ms: the server has stopped reading (one
		// that kept reading would take bytes until the 3 s are over).
		_ = c.SetWriteDeadline(time.Now().Add(min(time.Until(deadline), 500*time.Millisecond)))
		n, err := c.Write(msg)
		sent += n
		if err != nil {
			break // the server stopped reading: our socket buffers filled up
		}
	}
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	growth := int64(after.HeapInuse) - int64(before.HeapInuse)
	t.Logf("peer pushed %d KiB before blocking; heap grew %d KiB", sent>>10, growth>>10)
	assert.Less(t, sent, 64<<20, "the server kept reading although its handler was blocked")
	assert.Less(t, growth, int64(16<<20), "heap growth while the handler was blocked")
	close(release)
}

type blockingHandler struct {
	getty.BaseListener
	release chan struct{}
}

func (b *blockingHandler) OnMessage(getty.Session, any) { <-b.release }

// OnCron fires at its period, survives a panic only by closing that
// session, and never runs after OnClose.
func TestCron(t *testing.T) {
	l := &cronProbe{fired: make(chan time.Time, 100)}
	const period = 50 * time.Millisecond
	srv := startServer(t, row("tcp").newServer(t), withCodec(l, func(s getty.Session) { s.SetCronPeriod(int(period / time.Millisecond)) }))
	start := time.Now() // the session, and its cron, start after this
	c := rawDial(t, srv)
	var stamps []time.Time
	for len(stamps) < 5 {
		select {
		case ts := <-l.fired:
			stamps = append(stamps, ts)
		case <-time.After(5 * time.Second):
			t.Fatal("cron did not fire")
		}
	}
	// Beat k is due k periods after the session started, and a late beat
	// does not delay the next (TestCronNoDrift): the gap after a late beat
	// may be short (34 ms seen on a loaded machine), but no beat comes
	// before its time.
	for i, ts := range stamps {
		due := time.Duration(i+1) * period
		assert.GreaterOrEqual(t, ts.Sub(start), due-5*time.Millisecond, "beat %d of the cron fired early", i+1)
	}
	c.Close()
	eventually(t, "OnClose", func() bool { return l.closed.Load() })
	time.Sleep(150 * time.Millisecond)
	assert.False(t, l.afterClose.Load(), "OnCron ran after OnClose")
}

type cronProbe struct {
	getty.BaseListener
	sess       atomic.Value
	fired      chan time.Time
	closed     atomic.Bool
	afterClose atomic.Bool
}

func (p *cronProbe) OnCron(getty.Session) {
	if p.closed.Load() {
		p.afterClose.Store(true)
	}
	select {
	case p.fired <- time.Now():
	default:
	}
}

func (p *cronProbe) OnClose(getty.Session) { p.closed.Store(true) }

// SetCronPeriod works after the session started.
func TestCronPeriodChangedLater(t *testing.T) {
	l := &cronProbe{fired: make(chan time.Time, 100)}
	srv := startServer(t, row("tcp").newServer(t), withCodec(l, func(s getty.Session) {}))
	c := rawDial(t, srv)
	_, _ = c.Write(frame("x"))
	// The default period is 60 s: nothing fires soon.
	select {
	case <-l.fired:
		t.Fatal("cron fired with the default period")
	case <-time.After(100 * time.Millisecond):
	}
	l.setPeriod(srv, 20)
	select {
	case <-l.fired:
	case <-time.After(5 * time.Second):
		t.Fatal("new period not applied")
	}
}

func (p *cronProbe) OnMessage(s getty.Session, _ any) { p.sess.Store(s) }

func (p *cronProbe) setPeriod(_ getty.Server, ms int) {
	for p.sess.Load() == nil {
		time.Sleep(time.Millisecond)
	}
	p.sess.Load().(getty.Session).SetCronPeriod(ms)
}
