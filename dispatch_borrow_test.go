package getty_test

import (
	"bytes"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"

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
