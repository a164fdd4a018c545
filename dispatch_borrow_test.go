package getty_test

import (
	"bytes"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	getty "github.com/getty-go/getty"
)

// whereRan echoes and records whether OnMessage ran on the session's
// reader goroutine (its stack holds the read loop) or on a pool worker.
type whereRan struct {
	getty.BaseListener
	onReader, onWorker atomic.Int64
}

func (w *whereRan) OnMessage(s getty.Session, pkg any) {
	var buf [8 << 10]byte
	if bytes.Contains(buf[:runtime.Stack(buf[:], false)], []byte("readStream")) {
		w.onReader.Add(1)
	} else {
		w.onWorker.Add(1)
	}
	_, _, _ = s.WritePkg(pkg, 0)
}

// With the ordered built-in pool idle, a message whose session has
// nothing queued runs on the reader under one of the pool's tokens: no
// handoff to a worker.
func TestDispatchPoolIdleRunsOnReader(t *testing.T) {
	w := &whereRan{}
	srv := startServer(t, row("tcp").newServer(t, getty.WithServerWorkerPool(4)), withCodec(w))
	c := rawDial(t, srv)
	for i := 0; i < 50; i++ {
		_, err := c.Write(frame("ping"))
		assert.NoError(t, err)
		assert.Equal(t, "ping", readFrame(t, c))
	}
	assert.EqualValues(t, 50, w.onReader.Load(), "messages run on the reader")
	assert.Zero(t, w.onWorker.Load(), "messages handed to a worker")
}

// boundChecker checks per-session order and counts how many OnMessage
// calls overlap.
type boundChecker struct {
	seqChecker
	running, peak atomic.Int32
}

func (b *boundChecker) OnMessage(s getty.Session, pkg any) {
	n := b.running.Add(1)
	for p := b.peak.Load(); n > p && !b.peak.CompareAndSwap(p, n); p = b.peak.Load() {
	}
	runtime.Gosched() // stay a while, so other readers find the tokens held
	b.seqChecker.OnMessage(s, pkg)
	b.running.Add(-1)
}

// Readers running messages themselves still count against the pool's n:
// at most n OnMessage calls at once over all sessions, each session's in
// order.
func TestDispatchPoolBoundHoldsWithReaders(t *testing.T) {
	const workers, sessions, each = 2, 8, 2000
	chk := &boundChecker{seqChecker: seqChecker{next: map[getty.Session]uint32{}, ordered: true}}
	srv := startServer(t, row("tcp").newServer(t, getty.WithServerWorkerPool(workers)), withCodec(chk))
	var wg sync.WaitGroup
	for i := 0; i < sessions; i++ {
		c := rawDial(t, srv)
		wg.Add(1)
		go func() { defer wg.Done(); sendNumbered(t, c, each) }()
	}
	wg.Wait()
	eventually(t, "every message delivered", func() bool { return chk.total.Load() == sessions*each })
	chk.mu.Lock()
	defer chk.mu.Unlock()
	assert.Zero(t, chk.bad, "messages out of order")
	assert.LessOrEqual(t, chk.peak.Load(), int32(workers), "OnMessage calls at once")
}

// Packages that arrive in one read run on the reader, under one lease of
// the session's mailbox and a token, in order; their replies all arrive.
func TestDispatchPoolLeaseRunsBatchOnReader(t *testing.T) {
	const n = 16
	w := &whereRan{}
	srv := startServer(t, row("tcp").newServer(t, getty.WithServerWorkerPool(1)), withCodec(w))
	c := rawDial(t, srv)
	var batch []byte
	for i := 0; i < n; i++ {
		batch = append(batch, frame(fmt.Sprint("m", i))...)
	}
	for round := 0; round < 3; round++ {
		_, err := c.Write(batch)
		require.NoError(t, err)
		for i := 0; i < n; i++ {
			require.Equal(t, fmt.Sprint("m", i), readFrame(t, c))
		}
	}
	assert.EqualValues(t, 3*n, w.onReader.Load(), "messages run on the reader")
	assert.Zero(t, w.onWorker.Load(), "messages handed to a worker")
}

// panicOnThird echoes and panics on its session's third message.
type panicOnThird struct {
	getty.BaseListener
	seen   atomic.Int32
	errs   chan error
	closed chan struct{}
}

func (p *panicOnThird) OnMessage(s getty.Session, pkg any) {
	if p.seen.Add(1) == 3 {
		panic("boom in a leased OnMessage")
	}
	_, _, _ = s.WritePkg(pkg, 0)
}

func (p *panicOnThird) OnError(_ getty.Session, err error) { p.errs <- err }
func (p *panicOnThird) OnClose(getty.Session)              { close(p.closed) }

// A panic in the middle of a leased batch closes that session as a panic
// in OnMessage does anywhere (OnError with ErrPanic, then OnClose), and
// the lease's token comes back: the pool's only worker serves the next
// session.
func TestDispatchPoolLeasePanic(t *testing.T) {
	relSilence(t)
	p := &panicOnThird{errs: make(chan error, 4), closed: make(chan struct{})}
	var sessions atomic.Int32
	srv := startServer(t, row("tcp").newServer(t, getty.WithServerWorkerPool(1)), func(s getty.Session) error {
		if sessions.Add(1) == 1 {
			return withCodec(p)(s)
		}
		return withCodec(&whereRan{})(s)
	})
	c := rawDial(t, srv)
	var batch []byte
	for i := 0; i < 8; i++ {
		batch = append(batch, frame(fmt.Sprint("m", i))...)
	}
	_, err := c.Write(batch)
	require.NoError(t, err)
	select {
	case err := <-p.errs:
		assert.ErrorIs(t, err, getty.ErrPanic)
	case <-time.After(waitLimit):
		t.Fatal("no OnError after the panic")
	}
	select {
	case <-p.closed:
	case <-time.After(waitLimit):
		t.Fatal("no OnClose after the panic")
	}
	waitEOF(t, c)
	c2 := rawDial(t, srv)
	for i := 0; i < 3; i++ {
		_, err := c2.Write(append(frame("a"), frame("b")...))
		require.NoError(t, err)
		assert.Equal(t, "a", readFrame(t, c2))
		assert.Equal(t, "b", readFrame(t, c2))
	}
}
