package dispatch

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gxsync "github.com/dubbogo/gost/sync"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A lease runs its messages on the caller, in order, without hooks, on one token held until EndLease; a Post
// from another goroutine and a Close during the lease wait for EndLease, then run in their order.
func TestLeaseRunsOnCallerInOrder(t *testing.T) {
	p := NewPool(2, 0)
	defer p.Close()
	m := NewMailbox(p, 1, 0, 0)
	var mu sync.Mutex
	var order []string
	note := func(s string) { mu.Lock(); order = append(order, s); mu.Unlock() }
	m.SetDrainHooks(func() { note("begin") }, func() { note("end") })
	done := make(chan struct{})

	require.True(t, m.Lease())
	assert.EqualValues(t, 1, p.tok.free.Load(), "a lease holds one token")
	assert.False(t, m.Lease(), "a leased mailbox is not idle")
	assert.False(t, m.TryRun(func(any) {}, nil, true), "a leased mailbox is not idle")
	caller := true
	for _, s := range []string{"a", "b"} {
		require.True(t, m.RunLeased(func(arg any) {
			assert.True(t, caller, "a leased message runs on the caller")
			note(arg.(string))
		}, s))
	}
	posted := make(chan struct{})
	go func() {
		assert.True(t, m.Post(func(any) { note("posted") }, nil))
		m.Close(func() { note("final"); close(done) })
		close(posted)
	}()
	<-posted
	require.True(t, m.RunLeased(func(any) { note("c") }, nil))
	m.EndLease()
	caller = false
	<-done
	assert.Equal(t, []string{"a", "b", "c", "begin", "posted", "end", "final"}, order,
		"leased messages without hooks, then the Post as a drain's batch, then final")
	assert.Eventually(t, func() bool { return p.tok.free.Load() == 2 }, time.Second, time.Millisecond,
		"the tokens are back (the drain's once its task returns)")
}

// Lease fails where TryRun would: a closed mailbox, an executor that lends no slot, no token free.
func TestLeaseRefused(t *testing.T) {
	p := NewPool(1, 0)
	defer p.Close()
	closed := NewMailbox(p, 1, 0, 0)
	closed.Close(nil)
	assert.False(t, closed.Lease(), "a closed mailbox")

	gp := gxsync.NewTaskPoolSimple(1)
	defer gp.Close()
	assert.False(t, NewMailbox(NewGostExecutor(gp), 1, 0, 0).Lease(), "a gost pool lends no slot")

	m := NewMailbox(p, 2, 0, 0)
	require.True(t, m.Lease())
	other := NewMailbox(p, 3, 0, 0)
	assert.False(t, other.Lease(), "the only token is leased")
	m.EndLease()
	assert.True(t, other.Lease())
	other.EndLease()
	assert.EqualValues(t, 1, p.tok.free.Load())
}

// Fairness: once a worker waits for the token a lease holds, RunLeased refuses, the caller ends the lease and
// Posts, and the work that was waiting runs before the caller's next message.
func TestLeaseYieldsToWaitingWorker(t *testing.T) {
	p := NewPool(1, 0)
	defer p.Close()
	m := NewMailbox(p, 0, 0, 0)
	var mu sync.Mutex
	var order []string
	note := func(s string) { mu.Lock(); order = append(order, s); mu.Unlock() }

	require.True(t, m.Lease())
	require.True(t, m.RunLeased(func(any) { note("leased") }, nil))
	other := NewMailbox(p, 0, 0, 0)
	require.True(t, other.Post(func(any) { note("other") }, nil))
	for !p.wanted() { // the worker took the drain and waits for the token
		runtime.Gosched()
	}
	assert.False(t, m.RunLeased(func(any) { note("not run") }, nil), "a worker waits: the lease must end")
	m.EndLease()
	done := make(chan struct{})
	require.True(t, m.Post(func(any) { note("mine"); close(done) }, nil))
	<-done
	assert.Equal(t, []string{"leased", "other", "mine"}, order)
}

// A panicking leased message goes to the panic handler; the lease and the messages after it go on.
func TestLeasePanicContained(t *testing.T) {
	p := NewPool(1, 0)
	defer p.Close()
	m := NewMailbox(p, 0, 0, 0)
	var got any
	m.SetPanicHandler(func(v any) { got = v })
	require.True(t, m.Lease())
	require.True(t, m.RunLeased(func(any) { panic("boom") }, nil))
	assert.Equal(t, "boom", got)
	ran := false
	require.True(t, m.RunLeased(func(any) { ran = true }, nil))
	m.EndLease()
	assert.True(t, ran)
	assert.EqualValues(t, 1, p.tok.free.Load(), "the token is back")
	require.True(t, m.TryRun(func(any) {}, nil, false), "the mailbox is idle again")
}

// Many readers leasing batches as a session's reader does (lease, run until refused, else Post) on few tokens:
// never more than `workers` messages at once, order kept per mailbox, every message run, every token back.
func TestLeaseKeepsBoundAndOrder(t *testing.T) {
	const workers, sessions, each, batch = 2, 16, 2000, 7
	p := NewPool(workers, 0)
	defer p.Close()
	var running, peak atomic.Int32
	var wg sync.WaitGroup
	checkers := make([]*seqChecker, sessions)
	for s := range checkers {
		c := &seqChecker{}
		checkers[s] = c
		m := NewMailbox(p, uint64(s), 8, 0)
		fn := func(arg any) {
			n := running.Add(1)
			for pk := peak.Load(); n > pk && !peak.CompareAndSwap(pk, n); pk = peak.Load() {
			}
			c.handle(arg)
			runtime.Gosched() // stay a while, so others find the tokens held
			running.Add(-1)
		}
		wg.Add(1)
		go func() {
			for i := 0; i < each; i += batch {
				leased := false
				for j := i; j < min(i+batch, each); j++ {
					if !leased {
						leased = m.Lease()
					}
					if leased {
						if m.RunLeased(fn, j) {
							continue
						}
						m.EndLease()
						leased = false
					}
					if !m.Post(fn, j) {
						t.Errorf("Post %d refused", j)
					}
				}
				if leased {
					m.EndLease()
				}
			}
			m.Close(wg.Done)
		}()
	}
	wg.Wait()
	checkOrderedWithinBound(t, p, checkers, each, peak.Load(), workers)
}
