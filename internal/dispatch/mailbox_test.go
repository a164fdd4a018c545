package dispatch

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// seqChecker is one session's view: messages must arrive numbered 0, 1, 2, ... and never two at once.
type seqChecker struct {
	next    int // only touched by the mailbox's drain, which the mailbox serializes
	bad     atomic.Int64
	running atomic.Int32
}

func (c *seqChecker) handle(arg any) {
	if c.running.Add(1) != 1 {
		c.bad.Add(1)
	}
	if arg.(int) != c.next {
		c.bad.Add(1)
	}
	c.next++
	c.running.Add(-1)
}

func TestMailboxOrderManySessionsOnPool(t *testing.T) {
	// Full size in race mode too: about 2.5s under -race on a 2-core machine.
	const sessions, perSession = 100, 10000
	p := NewPool(8, 0)
	defer p.Close()
	start := time.Now()
	var wg sync.WaitGroup
	checkers := make([]*seqChecker, sessions)
	finals := make([]atomic.Int32, sessions)
	for s := 0; s < sessions; s++ {
		c := &seqChecker{}
		checkers[s] = c
		m := NewMailbox(p, uint64(s), 0, 0)
		wg.Add(1)
		go func(s int) { // the session's reader goroutine
			for i := 0; i < perSession; i++ {
				if !m.Post(c.handle, i) {
					t.Errorf("session %d: Post %d refused", s, i)
				}
			}
			m.Close(func() { finals[s].Add(1); wg.Done() })
		}(s)
	}
	wg.Wait()
	for s, c := range checkers {
		require.Zero(t, c.bad.Load(), "session %d out of order or concurrent", s)
		require.Equal(t, perSession, c.next, "session %d lost messages", s)
		require.EqualValues(t, 1, finals[s].Load())
	}
	t.Logf("%d sessions x %d messages in %v", sessions, perSession, time.Since(start))
}

// Which mailboxes run in parallel: with NewPool (one queue per worker), mailboxes whose keys map to different
// queues (key % Workers) do; mailboxes sharing a queue share its worker, so a handler that blocks holds up the
// others on that queue until it returns. NewPoolWithQueues (shared queues) removes that coupling up to the
// number of workers serving the queue.
func TestMailboxParallelism(t *testing.T) {
	p := NewPool(2, 0)
	gate := make(chan struct{})
	blocked := make(chan struct{})
	a := NewMailbox(p, 0, 0, 0)
	require.True(t, a.Post(func(any) { close(blocked); <-gate }, nil))
	waitChan(t, blocked, "blocking handler")

	other := NewMailbox(p, 1, 0, 0) // queue 1: independent of the blocked worker
	done := make(chan struct{})
	require.True(t, other.Post(func(any) { close(done) }, nil))
	waitChan(t, done, "mailbox on another queue")

	same := NewMailbox(p, 2, 0, 0) // 2 % 2 == 0: same queue as the blocked mailbox
	sameDone := make(chan struct{})
	require.True(t, same.Post(func(any) { close(sameDone) }, nil))
	require.True(t, stillBlocked(sameDone), "documented: same-queue mailboxes are head-of-line blocked")
	close(gate)
	waitChan(t, sameDone, "same-queue mailbox after the block clears")
	p.Close()

	// Shared queue: 2 workers on 1 queue, the same keys no longer interfere.
	sp := NewPoolWithQueues(2, 1, 0)
	gate2 := make(chan struct{})
	blocked2 := make(chan struct{})
	a2 := NewMailbox(sp, 0, 0, 0)
	require.True(t, a2.Post(func(any) { close(blocked2); <-gate2 }, nil))
	waitChan(t, blocked2, "blocking handler")
	b2 := NewMailbox(sp, 2, 0, 0)
	done2 := make(chan struct{})
	require.True(t, b2.Post(func(any) { close(done2) }, nil))
	waitChan(t, done2, "mailbox sharing the queue with a blocked one")
	close(gate2)
	sp.Close()
}

func TestMailboxBackpressure(t *testing.T) {
	const capacity = 8
	p := NewPool(1, 4)
	defer p.Close()

	// 1) Worker busy elsewhere: the mailbox fills, its single drain waits in the pool queue, Post then blocks.
	gate := make(chan struct{})
	started := make(chan struct{})
	require.True(t, p.Execute(0, func() { close(started); <-gate }))
	<-started
	var c seqChecker
	m := NewMailbox(p, 0, capacity, 0)
	for i := 0; i < capacity; i++ {
		require.True(t, m.Post(c.handle, i))
	}
	require.Equal(t, capacity, m.Len())
	require.Equal(t, 1, p.Len(), "at most one drain per mailbox in the pool")
	posted := make(chan struct{})
	go func() {
		if !m.Post(c.handle, capacity) {
			t.Error("blocked Post refused")
		}
		close(posted)
	}()
	require.True(t, stillBlocked(posted), "Post must block on a full mailbox")
	require.Equal(t, 1, p.Len())
	close(gate)
	waitChan(t, posted, "blocked Post")
	fin := make(chan struct{})
	m.Close(func() { close(fin) })
	waitChan(t, fin, "final")
	require.Zero(t, c.bad.Load())
	require.Equal(t, capacity+1, c.next)

	// 2) The session's own handler blocks: one message running, capacity queued, the next Post blocks, and
	// the pool holds no extra task for the mailbox.
	hgate := make(chan struct{})
	inHandler := make(chan struct{})
	var once sync.Once
	m2 := NewMailbox(p, 0, capacity, 0)
	require.True(t, m2.Post(func(any) { once.Do(func() { close(inHandler) }); <-hgate }, nil))
	waitChan(t, inHandler, "handler")
	for i := 0; i < capacity; i++ {
		require.True(t, m2.Post(func(any) {}, nil))
	}
	posted2 := make(chan struct{})
	go func() { m2.Post(func(any) {}, nil); close(posted2) }()
	require.True(t, stillBlocked(posted2))
	require.Equal(t, 0, p.Len())
	require.Equal(t, capacity, m2.Len())
	close(hgate)
	waitChan(t, posted2, "blocked Post")
	fin2 := make(chan struct{})
	m2.Close(func() { close(fin2) })
	waitChan(t, fin2, "final")
}

func TestMailboxBudgetFairness(t *testing.T) {
	p := NewPool(1, 16)
	defer p.Close()

	// Deterministic: A (budget 4) holds 64 messages, B one; B runs right after A's first budget.
	var mu sync.Mutex
	var log []string
	record := func(arg any) { mu.Lock(); log = append(log, arg.(string)); mu.Unlock() }
	gate := make(chan struct{})
	started := make(chan struct{})
	require.True(t, p.Execute(0, func() { close(started); <-gate }))
	<-started
	a := NewMailbox(p, 0, 64, 4)
	b := NewMailbox(p, 1, 64, 4) // 1 % 1 == 0: same queue
	for i := 0; i < 64; i++ {
		require.True(t, a.Post(record, "a"))
	}
	require.True(t, b.Post(record, "b"))
	close(gate)
	fa, fb := make(chan struct{}), make(chan struct{})
	a.Close(func() { close(fa) })
	b.Close(func() { close(fb) })
	waitChan(t, fa, "a final")
	waitChan(t, fb, "b final")
	mu.Lock()
	require.Len(t, log, 65)
	require.Equal(t, "b", log[4], "B must run after A's first budget of 4: %v", log[:8])
	mu.Unlock()

	// Live: A is flooded without pause by its reader; B's messages still get through.
	flood := NewMailbox(p, 0, 64, 8)
	stop := make(chan struct{})
	floodDone := make(chan struct{})
	go func() {
		defer close(floodDone)
		for {
			select {
			case <-stop:
				return
			default:
			}
			flood.Post(func(any) {}, nil)
		}
	}()
	victim := NewMailbox(p, 1, 64, 8)
	for i := 0; i < 100; i++ {
		got := make(chan struct{})
		require.True(t, victim.Post(func(any) { close(got) }, nil))
		waitChan(t, got, fmt.Sprintf("victim message %d while another mailbox is flooded", i))
	}
	close(stop)
	<-floodDone
	flood.Close(nil)
	victim.Close(nil)
}

func TestMailboxCloseRunsFinalAfterLastMessage(t *testing.T) {
	p := NewPool(4, 0)
	defer p.Close()
	const n = 200
	var ran, running atomic.Int32
	var overlap atomic.Bool
	m := NewMailbox(p, 7, 16, 4)
	handler := func(any) {
		if running.Add(1) != 1 {
			overlap.Store(true)
		}
		time.Sleep(10 * time.Microsecond)
		ran.Add(1)
		running.Add(-1)
	}
	for i := 0; i < n; i++ {
		require.True(t, m.Post(handler, nil))
	}
	var finals atomic.Int32
	var ranAtFinal int32
	fin := make(chan struct{})
	m.Close(func() {
		if running.Load() != 0 {
			overlap.Store(true)
		}
		ranAtFinal = ran.Load()
		finals.Add(1)
		close(fin)
	})
	m.Close(func() { t.Error("second final ran") })
	require.False(t, m.Post(handler, nil), "Post after Close")
	waitChan(t, fin, "final")
	require.EqualValues(t, n, ranAtFinal)
	require.False(t, overlap.Load())
	m.Close(func() { t.Error("third final ran") })
	time.Sleep(blockedFor)
	require.EqualValues(t, 1, finals.Load())
	require.EqualValues(t, n, ran.Load())
}

func TestMailboxCloseIdleRunsFinalInline(t *testing.T) {
	p := NewPool(1, 0)
	defer p.Close()
	m := NewMailbox(p, 0, 0, 0)
	ranFinal := false
	m.Close(func() { ranFinal = true })
	require.True(t, ranFinal, "idle mailbox: final runs before Close returns")

	m2 := NewMailbox(p, 0, 0, 0)
	done := make(chan struct{})
	require.True(t, m2.Post(func(any) { close(done) }, nil))
	<-done
	require.Eventually(t, func() bool {
		m2.mu.Lock()
		defer m2.mu.Unlock()
		return !m2.scheduled
	}, waitTimeout, time.Millisecond)
	ranFinal = false
	m2.Close(func() { ranFinal = true })
	require.True(t, ranFinal)
	m2.Close(nil)
}

func TestMailboxCloseReleasesBlockedPost(t *testing.T) {
	p := NewPool(1, 0)
	defer p.Close()
	const capacity = 4
	gate := make(chan struct{})
	inHandler := make(chan struct{})
	var ran atomic.Int32
	m := NewMailbox(p, 0, capacity, 0)
	require.True(t, m.Post(func(any) { close(inHandler); <-gate; ran.Add(1) }, nil))
	<-inHandler
	for i := 0; i < capacity; i++ {
		require.True(t, m.Post(func(any) { ran.Add(1) }, nil))
	}
	res := make(chan bool, 1)
	go func() { res <- m.Post(func(any) { t.Error("refused message ran") }, nil) }()
	require.Eventually(t, func() bool {
		m.mu.Lock()
		defer m.mu.Unlock()
		return m.waiters == 1
	}, waitTimeout, time.Millisecond)

	fin := make(chan struct{})
	m.Close(func() { close(fin) })
	select {
	case ok := <-res:
		require.False(t, ok)
	case <-time.After(waitTimeout):
		t.Fatal("blocked Post not released by Close")
	}
	require.True(t, stillBlocked(fin), "final waits for the running handler")
	close(gate)
	waitChan(t, fin, "final")
	require.EqualValues(t, capacity+1, ran.Load())
}

func TestMailboxExecutorClosed(t *testing.T) {
	// Refused at scheduling time: Post returns false, final runs inline.
	p := NewPool(1, 0)
	p.Close()
	m := NewMailbox(p, 0, 0, 0)
	require.False(t, m.Post(func(any) { t.Error("ran on a closed pool") }, nil))
	require.False(t, m.Post(func(any) { t.Error("ran on a closed pool") }, nil))
	ranFinal := false
	m.Close(func() { ranFinal = true })
	require.True(t, ranFinal)

	// Refused at re-queue time: the drain stops after its budget, drops the rest, and final still runs once.
	p2 := NewPool(1, 0)
	m2 := NewMailbox(p2, 0, 4, 2)
	gate := make(chan struct{})
	inHandler := make(chan struct{})
	var ran atomic.Int32
	require.True(t, m2.Post(func(any) { close(inHandler); <-gate; ran.Add(1) }, nil))
	<-inHandler
	for i := 0; i < 4; i++ {
		require.True(t, m2.Post(func(any) { ran.Add(1) }, nil))
	}
	// Three Posts blocked on the full mailbox: at most one gets in when the drain pops its second message,
	// the others are released (false) when the drain is refused.
	var refused atomic.Int32
	var posters sync.WaitGroup
	for i := 0; i < 3; i++ {
		posters.Add(1)
		go func() {
			defer posters.Done()
			if !m2.Post(func(any) { ran.Add(1) }, nil) {
				refused.Add(1)
			}
		}()
	}
	require.Eventually(t, func() bool {
		m2.mu.Lock()
		defer m2.mu.Unlock()
		return m2.waiters == 3
	}, waitTimeout, time.Millisecond)
	closed := make(chan struct{})
	go func() { p2.Close(); close(closed) }()
	require.Eventually(t, func() bool {
		q := p2.queues[0]
		q.mu.Lock()
		defer q.mu.Unlock()
		return q.closed
	}, waitTimeout, time.Millisecond)
	close(gate)
	waitChan(t, closed, "pool Close")
	posters.Wait()
	require.GreaterOrEqual(t, refused.Load(), int32(2))
	var finals atomic.Int32
	m2.Close(func() { finals.Add(1) }) // the drain is gone: final runs inline
	require.EqualValues(t, 1, finals.Load())
	require.EqualValues(t, 2, ran.Load(), "one budget ran, the rest was dropped")
	require.Zero(t, m2.Len())
	require.False(t, m2.Post(func(any) {}, nil))

	// Same, with the mailbox closed before the refusal: the drain that observes it runs final.
	p3 := NewPool(1, 0)
	m3 := NewMailbox(p3, 0, 16, 2)
	gate3 := make(chan struct{})
	in3 := make(chan struct{})
	var ran3, finals3 atomic.Int32
	require.True(t, m3.Post(func(any) { close(in3); <-gate3; ran3.Add(1) }, nil))
	<-in3
	for i := 0; i < 10; i++ {
		require.True(t, m3.Post(func(any) { ran3.Add(1) }, nil))
	}
	fin3 := make(chan struct{})
	m3.Close(func() { finals3.Add(1); close(fin3) })
	closed3 := make(chan struct{})
	go func() { p3.Close(); close(closed3) }()
	require.Eventually(t, func() bool {
		q := p3.queues[0]
		q.mu.Lock()
		defer q.mu.Unlock()
		return q.closed
	}, waitTimeout, time.Millisecond)
	close(gate3)
	waitChan(t, fin3, "final")
	waitChan(t, closed3, "pool Close")
	require.EqualValues(t, 2, ran3.Load())
	require.EqualValues(t, 1, finals3.Load())
}

// Many concurrent posters racing Close: every accepted message runs, none concurrently, final once and last.
func TestMailboxConcurrentPostAndClose(t *testing.T) {
	p := NewPool(4, 2)
	defer p.Close()
	rounds := 50
	if raceEnabled {
		rounds = 20
	}
	for r := 0; r < rounds; r++ {
		m := NewMailbox(p, uint64(r), 8, 3)
		var accepted, ran, running atomic.Int64
		var bad atomic.Bool
		handler := func(any) {
			if running.Add(1) != 1 {
				bad.Store(true)
			}
			ran.Add(1)
			running.Add(-1)
		}
		var wg sync.WaitGroup
		for g := 0; g < 4; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for m.Post(handler, nil) {
					accepted.Add(1)
				}
			}()
		}
		time.Sleep(time.Millisecond)
		var finals atomic.Int32
		var atFinal int64
		fin := make(chan struct{})
		m.Close(func() {
			if running.Load() != 0 {
				bad.Store(true)
			}
			atFinal = ran.Load()
			finals.Add(1)
			close(fin)
		})
		wg.Wait()
		waitChan(t, fin, "final")
		require.False(t, bad.Load())
		require.EqualValues(t, 1, finals.Load())
		require.Equal(t, accepted.Load(), atFinal)
		require.Equal(t, accepted.Load(), ran.Load())
	}
}

func TestMailboxDrainHooks(t *testing.T) {
	p := NewPoolWithQueues(4, 1, 0) // shared queue: a yielded drain may resume on another worker
	defer p.Close()
	m := NewMailbox(p, 0, 16, 3)
	var inBatch, bad atomic.Bool
	var begins, ends, msgs atomic.Int32
	m.SetDrainHooks(func() {
		if inBatch.Swap(true) {
			bad.Store(true) // nested or concurrent begin
		}
		begins.Add(1)
	}, func() {
		if !inBatch.Swap(false) {
			bad.Store(true)
		}
		ends.Add(1)
	})
	const n = 5000
	for i := 0; i < n; i++ {
		require.True(t, m.Post(func(any) {
			if !inBatch.Load() {
				bad.Store(true)
			}
			msgs.Add(1)
		}, nil))
	}
	fin := make(chan struct{})
	m.Close(func() {
		if inBatch.Load() {
			bad.Store(true) // final must come after end
		}
		close(fin)
	})
	waitChan(t, fin, "final")
	require.False(t, bad.Load())
	require.EqualValues(t, n, msgs.Load())
	require.Equal(t, begins.Load(), ends.Load())
	require.GreaterOrEqual(t, begins.Load(), int32(n/3), "a batch never exceeds the budget")
}

func TestMailboxPanicsRecovered(t *testing.T) {
	p := NewPool(1, 0)
	defer p.Close()
	m := NewMailbox(p, 0, 8, 4)
	var mu sync.Mutex
	var panics []any
	m.SetPanicHandler(func(v any) { mu.Lock(); panics = append(panics, v); mu.Unlock() })
	var c seqChecker
	for i := 0; i < 100; i++ {
		require.True(t, m.Post(func(arg any) {
			c.handle(arg)
			if arg.(int)%10 == 0 {
				panic(arg)
			}
		}, i))
	}
	fin := make(chan struct{})
	m.Close(func() { close(fin); panic("final") })
	waitChan(t, fin, "final")
	require.Zero(t, c.bad.Load())
	require.Equal(t, 100, c.next)
	require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(panics) == 11 }, waitTimeout, time.Millisecond)
	mu.Lock()
	require.Equal(t, 0, panics[0])
	require.Equal(t, "final", panics[10])
	mu.Unlock()

	// Without a handler panics are logged and the mailbox (and the worker) keep going.
	m2 := NewMailbox(p, 0, 0, 0)
	require.True(t, m2.Post(func(any) { panic("logged") }, nil))
	fin2 := make(chan struct{})
	require.True(t, m2.Post(func(any) { close(fin2) }, nil))
	waitChan(t, fin2, "message after a panic")
	m2.Close(nil)
}

// An executor without non-blocking re-queue: the drain keeps going past its budget instead of blocking.
type plainExecutor struct{ p *Pool }

func (e plainExecutor) Execute(key uint64, task func()) bool { return e.p.Execute(key, task) }

func TestMailboxOnNonYieldingExecutor(t *testing.T) {
	p := NewPool(1, 1)
	defer p.Close()
	ex := plainExecutor{p}
	var c seqChecker
	m := NewMailbox(ex, 0, 8, 2)
	for i := 0; i < 1000; i++ {
		require.True(t, m.Post(c.handle, i))
	}
	fin := make(chan struct{})
	m.Close(func() { close(fin) })
	waitChan(t, fin, "final")
	require.Zero(t, c.bad.Load())
	require.Equal(t, 1000, c.next)
}

// A drain re-queues itself behind producers even when they have filled the queue to its limit: the yield goes
// past the limit (by at most one per worker) instead of blocking the worker on its own queue.
func TestMailboxYieldPastFullQueue(t *testing.T) {
	p := NewPool(1, 2)
	defer p.Close()
	var mu sync.Mutex
	var log []string
	record := func(arg any) { mu.Lock(); log = append(log, arg.(string)); mu.Unlock() }
	gate := make(chan struct{})
	started := make(chan struct{})
	require.True(t, p.Execute(0, func() { close(started); <-gate }))
	<-started

	a := NewMailbox(p, 0, 8, 1)
	// A's first message waits until the queue is back at its limit (B's drain + C's drain) before A yields.
	require.True(t, a.Post(func(any) {
		record("a")
		// On a pool worker: assert, not require (FailNow would Goexit the worker).
		assert.Eventually(t, func() bool { return p.Len() == 2 }, waitTimeout, time.Millisecond)
	}, nil))
	require.True(t, a.Post(record, "a"))
	b := NewMailbox(p, 1, 8, 1)
	require.True(t, b.Post(record, "b")) // queue now [A, B]: full
	c := NewMailbox(p, 2, 8, 1)
	cPosted := make(chan struct{})
	go func() { c.Post(record, "c"); close(cPosted) }() // blocks in Execute until A's drain is popped
	require.Eventually(t, func() bool {
		q := p.queues[0]
		q.mu.Lock()
		defer q.mu.Unlock()
		return q.blocked == 1
	}, waitTimeout, time.Millisecond)
	close(gate)
	waitChan(t, cPosted, "C's Post")
	fins := make(chan struct{}, 3)
	for _, m := range []*Mailbox{a, b, c} {
		m.Close(func() { fins <- struct{}{} })
	}
	for i := 0; i < 3; i++ {
		waitChan(t, fins, "final")
	}
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, []string{"a", "b", "c", "a"}, log)
}

// yieldingExecutor reports a full queue on every yield (the misuse case Pool guards against): the drain must
// keep its work rather than block or lose it.
type alwaysFullYielder struct{ *Pool }

func (alwaysFullYielder) yield(uint64, func()) yieldResult { return yieldFull }

func TestMailboxYieldFullKeepsDraining(t *testing.T) {
	p := NewPool(1, 1)
	defer p.Close()
	var c seqChecker
	m := NewMailbox(alwaysFullYielder{p}, 0, 8, 2)
	for i := 0; i < 500; i++ {
		require.True(t, m.Post(c.handle, i))
	}
	fin := make(chan struct{})
	m.Close(func() { close(fin) })
	waitChan(t, fin, "final")
	require.Zero(t, c.bad.Load())
	require.Equal(t, 500, c.next)

	// Pool.yield itself refuses rather than overflow its ring.
	q := p.queues[0]
	gate := make(chan struct{})
	started := make(chan struct{})
	require.True(t, p.Execute(0, func() { close(started); <-gate }))
	<-started
	require.True(t, p.Execute(0, func() {}))
	require.Equal(t, yieldOK, p.yield(0, func() {}))
	require.Equal(t, len(q.buf), p.Len())
	require.Equal(t, yieldFull, p.yield(0, func() {}))
	close(gate)
}

func TestNilCallbacksPanic(t *testing.T) {
	p := NewPool(1, 0)
	defer p.Close()
	require.Panics(t, func() { p.Execute(0, nil) })
	require.Panics(t, func() { NewMailbox(nil, 0, 0, 0) })
	m := NewMailbox(p, 0, 0, 0)
	require.Panics(t, func() { m.Post(nil, nil) })
	m.Close(nil)
	require.Panics(t, func() { NewGostExecutor(nil) })
}

func TestMailboxPostDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("race instrumentation allocates")
	}
	p := NewPool(2, 0)
	defer p.Close()
	m := NewMailbox(p, 0, 64, 16)
	arg := new(int)
	fn := func(any) {}
	for i := 0; i < 1000; i++ {
		m.Post(fn, arg)
	}
	allocs := testing.AllocsPerRun(10000, func() { m.Post(fn, arg) })
	require.Zero(t, allocs)
	fin := make(chan struct{})
	m.Close(func() { close(fin) })
	waitChan(t, fin, "final")
}

// A session commonly closes itself from inside OnMessage: Close from a handler must not deadlock, the messages
// queued behind it still run, and final comes after them on the drain goroutine.
func TestMailboxCloseFromOwnHandler(t *testing.T) {
	p := NewPool(1, 0)
	defer p.Close()
	m := NewMailbox(p, 0, 16, 4)
	var order []int // only touched by the drain
	fin := make(chan struct{})
	gate := make(chan struct{})
	require.True(t, m.Post(func(any) { <-gate; order = append(order, 0) }, nil))
	require.True(t, m.Post(func(any) {
		order = append(order, 1)
		m.Close(func() { order = append(order, -1); close(fin) })
		if m.Post(func(any) {}, nil) {
			t.Error("Post after Close accepted")
		}
	}, nil))
	for i := 2; i < 10; i++ {
		require.True(t, m.Post(func(arg any) { order = append(order, arg.(int)) }, i))
	}
	close(gate)
	waitChan(t, fin, "final")
	require.Equal(t, []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, -1}, order)
}
