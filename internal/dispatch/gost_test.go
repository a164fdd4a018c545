package dispatch

import (
	"sync"
	"sync/atomic"
	"testing"

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
			var wg sync.WaitGroup
			wg.Add(producers * per)
			task := func() { ran.Add(1); wg.Done() }
			for g := 0; g < producers; g++ {
				go func() {
					for i := 0; i < per; i++ {
						if !ex.Execute(0, task) {
							t.Error("Execute refused")
							wg.Done()
						}
					}
				}()
			}
			wg.Wait()
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
