package dispatch

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestPoolDefaults(t *testing.T) {
	p := NewPool(0, 0)
	defer p.Close()
	require.Equal(t, runtime.GOMAXPROCS(0), p.Workers())
	require.Len(t, p.queues, p.Workers())
	require.Equal(t, DefaultQueueLen, p.queues[0].limit)

	s := NewPoolWithQueues(5, 2, 3)
	defer s.Close()
	require.Equal(t, 5, s.Workers())
	require.Len(t, s.queues, 2)
	// Room for one yield per serving worker: 3 workers serve queue 0, 2 serve queue 1.
	require.Len(t, s.queues[0].buf, 3+3)
	require.Len(t, s.queues[1].buf, 3+2)

	d := NewPoolWithQueues(0, 0, 0)
	defer d.Close()
	require.Equal(t, runtime.GOMAXPROCS(0), d.Workers())
	require.Len(t, d.queues, d.Workers())
	d.SetPanicHandler(func(any) {})
	d.SetPanicHandler(nil) // back to logging
	require.Nil(t, d.onPanic.Load())
}

func TestPoolExecuteRunsEverything(t *testing.T) {
	p := NewPool(4, 8)
	const producers, per = 8, 5000
	var ran atomic.Int64
	var wg sync.WaitGroup
	wg.Add(producers * per)
	task := func() { ran.Add(1); wg.Done() }
	for g := 0; g < producers; g++ {
		go func(g int) {
			for i := 0; i < per; i++ {
				if !p.Execute(uint64(g*per+i), task) {
					t.Error("Execute refused on an open pool")
					wg.Done()
				}
			}
		}(g)
	}
	wg.Wait()
	p.Close()
	require.EqualValues(t, producers*per, ran.Load())
}

// With one queue per worker, raw Execute preserves per-key order.
func TestPoolPerKeyOrder(t *testing.T) {
	p := NewPool(4, 4)
	const keys, per = 16, 2000
	next := make([]int, keys) // only touched by the single worker of each key's queue
	var bad atomic.Int64
	var wg sync.WaitGroup
	for k := 0; k < keys; k++ {
		wg.Add(1)
		go func(k int) {
			defer wg.Done()
			for i := 0; i < per; i++ {
				p.Execute(uint64(k), func() {
					if next[k] != i {
						bad.Add(1)
					}
					next[k]++
				})
			}
		}(k)
	}
	wg.Wait()
	p.Close()
	require.Zero(t, bad.Load())
	for k := range next {
		require.Equal(t, per, next[k])
	}
}

func TestPoolCloseRunsQueuedAndRefusesNew(t *testing.T) {
	p := NewPool(1, 16)
	gate := make(chan struct{})
	started := make(chan struct{})
	require.True(t, p.Execute(0, func() { close(started); <-gate }))
	<-started
	var ran atomic.Int64
	for i := 0; i < 10; i++ {
		require.True(t, p.Execute(0, func() { ran.Add(1) }))
	}
	require.Equal(t, 10, p.Len())

	closed := make(chan struct{})
	go func() { p.Close(); close(closed) }()
	require.True(t, stillBlocked(closed), "Close must wait for the running task")
	require.False(t, p.Execute(0, func() { t.Error("task accepted after Close ran") }))
	close(gate)
	waitChan(t, closed, "Close")
	require.EqualValues(t, 10, ran.Load(), "Close runs what was queued")
	require.False(t, p.Execute(1, func() {}))
	p.Close() // idempotent
}

func TestPoolCloseReleasesBlockedExecute(t *testing.T) {
	p := NewPool(1, 1)
	gate := make(chan struct{})
	started := make(chan struct{})
	require.True(t, p.Execute(0, func() { close(started); <-gate }))
	<-started
	require.True(t, p.Execute(0, func() {})) // fills the queue

	res := make(chan bool, 1)
	go func() { res <- p.Execute(0, func() { t.Error("blocked task ran") }) }()
	require.Eventually(t, func() bool {
		q := p.queues[0]
		q.mu.Lock()
		defer q.mu.Unlock()
		return q.blocked == 1
	}, waitTimeout, time.Millisecond)

	closed := make(chan struct{})
	go func() { p.Close(); close(closed) }()
	// The blocked Execute returns false while the worker is still busy (Close itself is still waiting).
	select {
	case ok := <-res:
		require.False(t, ok)
	case <-time.After(waitTimeout):
		t.Fatal("Execute blocked on a full queue did not return after Close")
	}
	require.True(t, stillBlocked(closed))
	close(gate)
	waitChan(t, closed, "Close")
}

// Execute and Close racing: no panic, and every accepted task runs before Close returns.
func TestPoolCloseConcurrentWithExecute(t *testing.T) {
	for round := 0; round < 20; round++ {
		p := NewPool(4, 2)
		var accepted, ran atomic.Int64
		task := func() { ran.Add(1) }
		var wg sync.WaitGroup
		for g := 0; g < 8; g++ {
			wg.Add(1)
			go func(g int) {
				defer wg.Done()
				for i := 0; ; i++ {
					if !p.Execute(uint64(g+i), task) {
						return
					}
					accepted.Add(1)
				}
			}(g)
		}
		var closers sync.WaitGroup
		for c := 0; c < 3; c++ {
			closers.Add(1)
			go func() { defer closers.Done(); p.Close() }()
		}
		closers.Wait()
		wg.Wait()
		require.Equal(t, accepted.Load(), ran.Load())
	}
}

func TestPoolRecoversPanics(t *testing.T) {
	p := NewPool(1, 4)
	got := make(chan any, 1)
	p.SetPanicHandler(func(v any) { got <- v })
	require.True(t, p.Execute(0, func() { panic("boom") }))
	done := make(chan struct{})
	require.True(t, p.Execute(0, func() { close(done) }))
	waitChan(t, done, "task after a panicking task")
	require.Equal(t, "boom", <-got)

	// A panicking handler is contained too.
	p.SetPanicHandler(func(v any) { panic("handler") })
	require.True(t, p.Execute(0, func() { panic("again") }))
	done2 := make(chan struct{})
	require.True(t, p.Execute(0, func() { close(done2) }))
	waitChan(t, done2, "task after a panicking handler")
	p.Close()
}

func TestPoolSurvivesGoexit(t *testing.T) {
	p := NewPool(1, 4)
	require.True(t, p.Execute(0, func() { runtime.Goexit() }))
	done := make(chan struct{})
	require.True(t, p.Execute(0, func() { close(done) }))
	waitChan(t, done, "task after runtime.Goexit")
	p.Close()
}

// Workers sharing one queue: a blocked task holds one worker, the others keep serving the queue.
func TestPoolSharedQueueNoHeadOfLineBlocking(t *testing.T) {
	p := NewPoolWithQueues(2, 1, 4)
	gate := make(chan struct{})
	started := make(chan struct{})
	require.True(t, p.Execute(0, func() { close(started); <-gate }))
	<-started
	done := make(chan struct{})
	require.True(t, p.Execute(0, func() { close(done) }))
	waitChan(t, done, "second worker of the shared queue")
	close(gate)
	p.Close()
}
