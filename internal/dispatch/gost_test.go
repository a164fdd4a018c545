package dispatch

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gxsync "github.com/dubbogo/gost/sync"
	"github.com/stretchr/testify/require"
)

func gostPools() map[string]func() gxsync.GenericTaskPool {
	return map[string]func() gxsync.GenericTaskPool{
		"TaskPoolSimple": func() gxsync.GenericTaskPool { return gxsync.NewTaskPoolSimple(4) },
		"TaskPool": func() gxsync.GenericTaskPool {
			return gxsync.NewTaskPool(
				gxsync.WithTaskPoolTaskPoolSize(8),
				gxsync.WithTaskPoolTaskQueueNumber(4),
				gxsync.WithTaskPoolTaskQueueLength(16),
			)
		},
	}
}

func TestGostExecutorOrderedViaMailbox(t *testing.T) {
	sessions, per := 50, 2000
	if raceEnabled {
		per = 500
	}
	for name, newPool := range gostPools() {
		t.Run(name, func(t *testing.T) {
			gp := newPool()
			ex := NewGostExecutor(gp)
			checkers := make([]*seqChecker, sessions)
			var finals, producers sync.WaitGroup
			for s := 0; s < sessions; s++ {
				c := &seqChecker{}
				checkers[s] = c
				m := NewMailbox(ex, uint64(s), 16, 8)
				finals.Add(1)
				producers.Add(1)
				go func() {
					defer producers.Done()
					for i := 0; i < per; i++ {
						if !m.Post(c.handle, i) {
							t.Error("Post refused")
						}
					}
					m.Close(finals.Done)
				}()
			}
			// gost TaskPool.Close may discard queued tasks: wait for every final before closing it, and for every
			// Execute to return (a task may run before its Execute returns).
			finals.Wait()
			producers.Wait()
			gp.Close()
			for s, c := range checkers {
				require.Zero(t, c.bad.Load(), "session %d", s)
				require.Equal(t, per, c.next, "session %d", s)
			}
		})
	}
}

func TestGostExecutorUnorderedLosesNothing(t *testing.T) {
	const producers, per = 8, 2000
	for name, newPool := range gostPools() {
		t.Run(name, func(t *testing.T) {
			gp := newPool()
			ex := NewGostExecutor(gp)
			var ran atomic.Int64
			executeFromMany(t, ex, producers, per, func() { ran.Add(1) })
			gp.Close()
			require.EqualValues(t, producers*per, ran.Load())
		})
	}
}

func TestGostExecutorAfterClose(t *testing.T) {
	for name, newPool := range gostPools() {
		t.Run(name, func(t *testing.T) {
			gp := newPool()
			gp.Close()
			ex := NewGostExecutor(gp)
			require.NotPanics(t, func() {
				require.False(t, ex.Execute(1, func() { t.Error("ran after Close") }))
			})
			m := NewMailbox(ex, 1, 0, 0)
			require.False(t, m.Post(func(any) { t.Error("ran after Close") }, nil))
			fin := false
			m.Close(func() { fin = true })
			require.True(t, fin)
		})
	}
}

// fakeGostPool lets a test reach the failure modes of a gost pool racing Close deterministically (and without the
// data race inside gost, send vs close on its channels, that the race detector would report in a real
// reproduction). GenericTaskPool cannot be implemented outside gxsync (AddTask takes an unexported type), so the
// fake embeds one and only overrides IsClosed: with a nil embedded pool AddTask panics, with a closed real pool
// AddTask itself refuses.
type fakeGostPool struct {
	gxsync.GenericTaskPool
}

func (*fakeGostPool) IsClosed() bool { return false }

func TestGostExecutorRecoversPoolPanics(t *testing.T) {
	ex := NewGostExecutor(&fakeGostPool{}) // AddTask panics (nil pool)
	require.NotPanics(t, func() { require.False(t, ex.Execute(0, func() { t.Error("ran") })) })

	closed := gxsync.NewTaskPoolSimple(1)
	closed.Close()
	ex = NewGostExecutor(&fakeGostPool{closed}) // gets past IsClosed, AddTask returns false
	require.False(t, ex.Execute(0, func() { t.Error("ran") }))

	// A Mailbox whose drain is refused by a panicking pool drops the message and still runs final.
	m := NewMailbox(NewGostExecutor(&fakeGostPool{}), 0, 0, 0)
	require.False(t, m.Post(func(any) { t.Error("ran") }, nil))
	fin := false
	m.Close(func() { fin = true })
	require.True(t, fin)
}

// The executor finds the size of a gxsync.NewTaskPoolSimple pool in gost's unexported fields: a gost upgrade that
// moves them must fail here, not quietly lose the idle-worker preference.
func TestGostSimplePoolSizeFound(t *testing.T) {
	require.Equal(t, 37, simplePoolSize(gxsync.NewTaskPoolSimple(37)))
	queued := gostPools()["TaskPool"]()
	defer queued.Close()
	require.Zero(t, simplePoolSize(queued))
	require.Zero(t, simplePoolSize(&fakeGostPool{gxsync.NewTaskPoolSimple(3)}))
}

// Tasks handed over one at a time reuse the worker that waits instead of starting new ones up to the pool's size
// (gost's AddTask picks at random between the two, and a pool of 2000 soon keeps 2000 goroutines).
func TestGostExecutorPrefersIdleWorkers(t *testing.T) {
	gp := gxsync.NewTaskPoolSimple(2000)
	defer gp.Close()
	ex := NewGostExecutor(gp)
	before := runtime.NumGoroutine()
	done := make(chan struct{})
	for i := 0; i < 1000; i++ {
		require.True(t, ex.Execute(0, func() { done <- struct{}{} }))
		<-done
	}
	grown := runtime.NumGoroutine() - before
	t.Logf("goroutines after 1000 tasks one at a time: %d more", grown)
	require.Less(t, grown, 100, "a worker per task")
}

// Below the pool's size a task may run on a goroutine of its own, but the tasks running at once never exceed the
// size, and every task runs.
func TestGostExecutorBoundsTasksInFlight(t *testing.T) {
	const size, producers, per = 4, 16, 50
	gp := gxsync.NewTaskPoolSimple(size)
	defer gp.Close()
	ex := NewGostExecutor(gp)
	var running, most, ran atomic.Int64
	executeFromMany(t, ex, producers, per, func() {
		n := running.Add(1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		runtime.Gosched()
		running.Add(-1)
		ran.Add(1)
	})
	require.EqualValues(t, producers*per, ran.Load())
	require.LessOrEqual(t, most.Load(), int64(size), "tasks at once")
	waitDrainersGone(t, ex)
}

// waitDrainersGone waits until ex has no task queued or running and no drainer left (the counts drop just after
// a task's Done).
func waitDrainersGone(t *testing.T, ex *GostExecutor) {
	t.Helper()
	waitGost(t, ex, "no drainer left", func() bool { return ex.queue.len()+ex.running+ex.idle == 0 })
}

// waitGost polls until cond, called with ex.mu held, is true.
func waitGost(t *testing.T, ex *GostExecutor, what string, cond func() bool) {
	t.Helper()
	holds := func() bool {
		ex.mu.Lock()
		defer ex.mu.Unlock()
		return cond()
	}
	for deadline := time.Now().Add(waitTimeout); !holds(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// executeFromMany runs task producers*per times, Executed by producers goroutines at once, and returns once every
// task has run and every Execute has returned (a refused Execute is an error).
func executeFromMany(t *testing.T, ex Executor, producers, per int, task func()) {
	var wg, returned sync.WaitGroup
	wg.Add(producers * per)
	returned.Add(producers)
	counted := func() { task(); wg.Done() }
	for p := 0; p < producers; p++ {
		go func() {
			defer returned.Done()
			for i := 0; i < per; i++ {
				if !ex.Execute(0, counted) {
					t.Error("Execute refused")
					wg.Done()
				}
			}
		}()
	}
	wg.Wait()
	returned.Wait()
}

// Tasks that queue while others run start in the order they were queued, whichever drainer the scheduler runs
// first. On one P the scheduler runs the goroutine a handoff has just woken before the others, so handing each
// task to a worker of its own started the newest first.
func TestGostExecutorServesFirstInFirstOut(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	const size, blockers, queued = 64, 4, 50
	gp := gxsync.NewTaskPoolSimple(size)
	defer gp.Close()
	ex := NewGostExecutor(gp)
	gate := make(chan struct{})
	var started sync.WaitGroup
	started.Add(blockers)
	for i := 0; i < blockers; i++ {
		require.True(t, ex.Execute(0, func() { started.Done(); <-gate }))
	}
	started.Wait() // the tasks below queue behind these, each with a drainer of its own

	var mu sync.Mutex
	var order []int
	var done sync.WaitGroup
	done.Add(queued)
	for i := 0; i < queued; i++ {
		i := i
		require.True(t, ex.Execute(0, func() {
			mu.Lock()
			order = append(order, i)
			mu.Unlock()
			done.Done()
		}))
	}
	done.Wait()
	close(gate)
	for i := range order {
		require.Equal(t, i, order[i], "start order %v", order)
	}
	waitDrainersGone(t, ex)
}

// Many producers, a pool far smaller than the tasks in flight: each task runs exactly once.
func TestGostExecutorRunsEachTaskOnce(t *testing.T) {
	const size, producers, per = 4, 8, 500
	gp := gxsync.NewTaskPoolSimple(size)
	defer gp.Close()
	ex := NewGostExecutor(gp)
	runs := make([]atomic.Int32, producers*per)
	var wg, returned sync.WaitGroup
	wg.Add(producers * per)
	returned.Add(producers)
	for p := 0; p < producers; p++ {
		p := p
		go func() {
			defer returned.Done()
			for i := 0; i < per; i++ {
				n := p*per + i
				task := func() {
					runs[n].Add(1)
					if n%7 == 0 {
						runtime.Gosched() // a drainer between two tasks, others queueing meanwhile
					}
					wg.Done()
				}
				if !ex.Execute(0, task) {
					t.Error("Execute refused")
					wg.Done()
				}
			}
		}()
	}
	wg.Wait()
	returned.Wait()
	for n := range runs {
		require.EqualValues(t, 1, runs[n].Load(), "runs of task %d", n)
	}
	waitDrainersGone(t, ex)
}

// A caller blocked at the bound when the pool is closed is refused once a task ends, and its task never runs.
func TestGostExecutorWaitingRefusedOnClose(t *testing.T) {
	const size = 4
	gp := gxsync.NewTaskPoolSimple(size)
	ex := NewGostExecutor(gp)
	gate := make(chan struct{})
	for i := 0; i < size; i++ {
		require.True(t, ex.Execute(0, func() { <-gate }))
	}
	refused := make(chan struct{})
	go func() {
		if !ex.Execute(0, func() { t.Error("ran after Close") }) {
			close(refused)
		}
	}()
	waitGost(t, ex, "a caller waiting for room", func() bool { return ex.waiting == 1 })
	closed := make(chan struct{})
	go func() { gp.Close(); close(closed) }() // Close waits for the tasks running
	for deadline := time.Now().Add(waitTimeout); !gp.IsClosed(); time.Sleep(time.Millisecond) {
		require.False(t, time.Now().After(deadline), "pool not closed")
	}
	close(gate)
	waitChan(t, refused, "the waiting Execute refused")
	waitChan(t, closed, "Close")
	waitDrainersGone(t, ex)
}

// When the pool refuses to start a drainer for a queued task (it panics here, as a closing gost pool may), Execute
// takes its task back and reports the refusal.
func TestGostExecutorTakesBackRefusedTask(t *testing.T) {
	ex := NewGostExecutor(&fakeGostPool{}) // AddTaskAlways panics (nil pool)
	ex.size = 4                            // as if it were a NewTaskPoolSimple pool
	require.False(t, ex.Execute(0, func() { t.Error("ran") }))
	require.Zero(t, ex.queue.len())
	require.Zero(t, ex.idle)
}

// Once a drainer waits for the next task, queueing one allocates nothing.
func TestGostExecutorAllocatesNothing(t *testing.T) {
	gp := gxsync.NewTaskPoolSimple(8)
	defer gp.Close()
	ex := NewGostExecutor(gp)
	done := make(chan struct{})
	task := func() { done <- struct{}{} }
	round := func() {
		if !ex.Execute(0, task) {
			t.Error("Execute refused")
		}
		<-done
	}
	for i := 0; i < 100; i++ {
		round()
	}
	require.Zero(t, testing.AllocsPerRun(1000, round))
	waitDrainersGone(t, ex)
}

// The ring keeps first-in first-out order across growth and wrap-around, and remove keeps the others' order.
func TestTaskRingOrder(t *testing.T) {
	var r taskRing
	var got []int
	next := uint64(0)
	push := func(n int) {
		for i := 0; i < n; i++ {
			next++
			id := next
			r.push(func() { got = append(got, int(id)) }, id)
		}
	}
	pop := func(n int) {
		for i := 0; i < n; i++ {
			fn, ok := r.pop()
			require.True(t, ok)
			fn()
		}
	}
	push(50)
	pop(40) // the head moves on, so the pushes below wrap around
	push(100)
	require.True(t, r.remove(60))
	require.False(t, r.remove(60))
	require.False(t, r.remove(3)) // popped already
	pop(r.len())
	_, ok := r.pop()
	require.False(t, ok)
	want := []int{}
	for id := 1; id <= 150; id++ {
		if id != 60 {
			want = append(want, id)
		}
	}
	require.Equal(t, want, got)
}
