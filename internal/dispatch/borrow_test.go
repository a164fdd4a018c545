package dispatch

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// inside is set by the caller around RunOrPost: fn sees it only when it runs on the caller.
func TestRunOrPostRunsOnCallerWhenIdle(t *testing.T) {
	p := NewPool(2, 0)
	defer p.Close()
	m := NewMailbox(p, 1, 0, 0)
	var hooks []string
	m.SetDrainHooks(func() { hooks = append(hooks, "begin") }, func() { hooks = append(hooks, "end") })
	var inside, ranInside bool
	inside = true
	require.True(t, m.RunOrPost(func(any) { hooks = append(hooks, "msg"); ranInside = inside }, nil, false))
	inside = false
	assert.True(t, ranInside, "an idle mailbox on a pool with a free token runs the message on the caller")
	assert.Equal(t, []string{"begin", "msg", "end"}, hooks, "the hooks wrap a borrowed run as a batch")
	assert.EqualValues(t, 2, p.tok.free.Load(), "the token is back")
	hooks = nil
	require.True(t, m.RunOrPost(func(any) { hooks = append(hooks, "msg") }, nil, true))
	assert.Equal(t, []string{"msg"}, hooks, "a caller with a batch of its own open gets no hooks")
	done := make(chan struct{})
	m.Close(func() { close(done) })
	<-done
}

// With every token held, RunOrPost posts, and the message runs on a worker once a token is free.
func TestRunOrPostQueuesWhenSaturated(t *testing.T) {
	p := NewPool(1, 0)
	defer p.Close()
	release := make(chan struct{})
	started := make(chan struct{})
	require.True(t, p.Execute(0, func() { close(started); <-release }))
	<-started
	m := NewMailbox(p, 0, 0, 0)
	ran := make(chan bool, 1)
	calling := true
	require.True(t, m.RunOrPost(func(any) { ran <- calling }, nil, false))
	calling = false // RunOrPost returned: had fn run here, it would already be in ran
	select {
	case <-ran:
		t.Fatal("ran while the only token was held")
	default:
	}
	close(release)
	assert.False(t, <-ran, "the message ran on the worker, after RunOrPost returned")
}

// Many callers on few tokens: never more than `workers` messages at once, order kept per mailbox, every
// message run, finals once each.
func TestRunOrPostKeepsBoundAndOrder(t *testing.T) {
	const workers, sessions, each = 2, 16, 2000
	p := NewPool(workers, 0)
	defer p.Close()
	var running, peak, borrowed atomic.Int32
	var wg sync.WaitGroup
	checkers := make([]*seqChecker, sessions)
	for s := range checkers {
		c := &seqChecker{}
		checkers[s] = c
		m := NewMailbox(p, uint64(s), 8, 0)
		wg.Add(1)
		go func() {
			var inRunOrPost atomic.Bool // a log of where messages ran, not asserted
			fn := func(arg any) {
				n := running.Add(1)
				for {
					pk := peak.Load()
					if n <= pk || peak.CompareAndSwap(pk, n) {
						break
					}
				}
				if inRunOrPost.Load() {
					borrowed.Add(1)
				}
				c.handle(arg)
				runtime.Gosched() // stay a while, so callers find the tokens held
				running.Add(-1)
			}
			for i := 0; i < each; i++ {
				inRunOrPost.Store(true)
				ok := m.RunOrPost(fn, i, i%2 == 1)
				inRunOrPost.Store(false)
				if !ok {
					t.Errorf("RunOrPost %d refused", i)
				}
			}
			m.Close(wg.Done)
		}()
	}
	wg.Wait()
	checkOrderedWithinBound(t, p, checkers, each, peak.Load(), workers)
	t.Logf("%d of %d messages ran on their caller; peak %d at once", borrowed.Load(), sessions*each, peak.Load())
}

// A Post from another goroutine while a borrowed run is going is drained after it, and Close during the run
// runs final after both.
func TestRunOrPostHandsOverToDrain(t *testing.T) {
	p := NewPool(2, 0)
	defer p.Close()
	m := NewMailbox(p, 3, 0, 0)
	var order []string
	var mu sync.Mutex
	note := func(s string) { mu.Lock(); order = append(order, s); mu.Unlock() }
	done := make(chan struct{})
	require.True(t, m.RunOrPost(func(any) {
		note("first")
		posted := make(chan struct{})
		go func() {
			m.Post(func(any) { note("second") }, nil)
			m.Close(func() { note("final"); close(done) })
			close(posted)
		}()
		<-posted
	}, nil, false))
	<-done
	assert.Equal(t, []string{"first", "second", "final"}, order)
}

// A worker that waits for a token blocks borrowing, so queued work goes first once the pool is saturated.
func TestTokensWaitingWorkerBlocksBorrow(t *testing.T) {
	var tk tokens
	tk.init(1)
	require.True(t, tk.tryBorrow())
	got := make(chan struct{})
	go func() { tk.acquire(); close(got) }()
	for tk.waiting.Load() == 0 {
		runtime.Gosched()
	}
	assert.False(t, tk.tryBorrow(), "borrowed past a waiting worker")
	tk.release()
	<-got
	assert.False(t, tk.tryBorrow(), "the worker holds the token")
	tk.release()
	assert.True(t, tk.tryBorrow())
	tk.release()
}

// checkOrderedWithinBound checks what every many-session test of the pool's tokens must hold once all sessions
// are done: each session got its each messages in order, one at a time; no more than workers ran at once (peak);
// every token is back.
func checkOrderedWithinBound(t *testing.T, p *Pool, checkers []*seqChecker, each int, peak int32, workers int) {
	t.Helper()
	for s, c := range checkers {
		require.Zero(t, c.bad.Load(), "session %d out of order or concurrent", s)
		require.Equal(t, each, c.next, "session %d lost messages", s)
	}
	assert.LessOrEqual(t, peak, int32(workers), "more messages at once than the pool has workers")
	assert.EqualValues(t, workers, p.tok.free.Load(), "every token back")
}
