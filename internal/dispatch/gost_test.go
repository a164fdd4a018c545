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
			var finals sync.WaitGroup
			for s := 0; s < sessions; s++ {
				c := &seqChecker{}
				checkers[s] = c
				m := NewMailbox(ex, uint64(s), 16, 8)
				finals.Add(1)
				go func() {
					for i := 0; i < per; i++ {
						if !m.Post(c.handle, i) {
							t.Error("Post refused")
						}
					}
					m.Close(finals.Done)
				}()
			}
			// gost TaskPool.Close may discard queued tasks: wait for every final before closing it.
			finals.Wait()
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
	for i := 0; ex.inflight.Load() != 0 && i < 1000; i++ {
		time.Sleep(time.Millisecond) // the count drops just after a task's Done
	}
	require.Zero(t, ex.inflight.Load())
}

// executeFromMany runs task producers*per times, Executed by producers goroutines at once, and returns once every
// task has run (a refused Execute is an error).
func executeFromMany(t *testing.T, ex Executor, producers, per int, task func()) {
	var wg sync.WaitGroup
	wg.Add(producers * per)
	counted := func() { task(); wg.Done() }
	for p := 0; p < producers; p++ {
		go func() {
			for i := 0; i < per; i++ {
				if !ex.Execute(0, counted) {
					t.Error("Execute refused")
					wg.Done()
				}
			}
		}()
	}
	wg.Wait()
}
