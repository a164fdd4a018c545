package dispatch

import (
	"sync"
	"sync/atomic"
)

// tokens bounds how many tasks and borrowed runs of a Pool execute at once: a Pool of n workers has n tokens. A
// worker takes one before each task and gives it back after; a caller that finds a token free may run a task on
// its own goroutine instead of handing it to a worker (Mailbox.RunOrPost), which saves the handoff — a futex wake
// of an idle worker and a scheduler round trip — that otherwise costs about as much as a short handler.
//
// Fairness: a borrower only takes a token while no worker waits for one, so once the pool is saturated, work
// already queued is served first and borrowers queue behind it like everyone else.
type tokens struct {
	free    atomic.Int64 // tokens not held
	waiting atomic.Int64 // workers blocked in acquire
	mu      sync.Mutex
	cond    sync.Cond // workers wait here for a token
}

func (t *tokens) init(n int) {
	t.free.Store(int64(n))
	t.cond.L = &t.mu
}

// tryBorrow takes a token without blocking, for a run outside the workers. It fails while a worker waits.
func (t *tokens) tryBorrow() bool {
	if t.waiting.Load() > 0 {
		return false
	}
	return t.tryTake()
}

func (t *tokens) tryTake() bool {
	for {
		f := t.free.Load()
		if f <= 0 {
			return false
		}
		if t.free.CompareAndSwap(f, f-1) {
			return true
		}
	}
}

// acquire takes a token for a worker, waiting while every token is held.
func (t *tokens) acquire() {
	if t.tryTake() {
		return
	}
	t.mu.Lock()
	t.waiting.Add(1) // before the retry: a release that misses this retry sees waiting > 0 and signals
	for !t.tryTake() {
		t.cond.Wait()
	}
	t.waiting.Add(-1)
	t.mu.Unlock()
}

// release gives a token back and wakes a waiting worker, if any.
func (t *tokens) release() {
	t.free.Add(1)
	if t.waiting.Load() > 0 {
		t.mu.Lock()
		t.cond.Signal()
		t.mu.Unlock()
	}
}
