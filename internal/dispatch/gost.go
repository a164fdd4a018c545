package dispatch

import (
	"errors"
	"reflect"
	"sync"
	"sync/atomic"

	gxsync "github.com/dubbogo/gost/sync"
)

// GostExecutor adapts a gxsync.GenericTaskPool (github.com/dubbogo/gost/sync) to Executor, for compatibility with
// servers configured the upstream getty way. A saturated pool pushes back on the caller: at most as many tasks as
// the pool has workers are in flight, and Execute blocks beyond that (upstream's AddTaskAlways would start a
// goroutine per task instead, without bound).
//
// Which worker runs a task matters on a pool made by gxsync.NewTaskPoolSimple(size): its AddTask picks at random
// between an idle worker and starting a new one, so a pool sized for its peak (dubbo-go uses 2000) soon keeps all
// its goroutines, and its idle workers then take tasks in turn, each one cold in the CPU's caches (at 100
// connections with one request each in flight, ~2,100 goroutines and a third more CPU per request than with ~100).
// For such a pool GostExecutor counts the tasks in flight and, below the pool's size, hands a task over with
// AddTaskAlways, which prefers a worker that waits and starts one only when none does; at the size it falls back to
// the blocking AddTask. A worker between two tasks may look busy to AddTaskAlways, which then runs that task on a
// goroutine of its own: the count still bounds the tasks running at once, so the goroutines stay under twice the
// pool's size. Other gost pools (gxsync.NewTaskPool: fixed workers, queues) get AddTask alone.
//
// gost pools panic with "send on closed channel" when AddTask races with (or follows) Close; every call into the
// pool is therefore guarded by recover, and a recovered panic is reported as a refusal (Execute returns false).
// The key is ignored: gost routes round-robin, so ordering must come from a Mailbox.
type GostExecutor struct {
	p gxsync.GenericTaskPool

	// size is the pool's worker bound when it is a gxsync.NewTaskPoolSimple pool, else 0; inflight counts
	// the tasks handed to such a pool that have not returned.
	size     int64
	inflight atomic.Int64
	tasks    sync.Pool // of *gostTask
}

// errNilPool is the panic value for constructor misuse; a nil pool is a programming error, not a runtime condition.
var errNilPool = errors.New("dispatch: NewGostExecutor with nil pool")

// NewGostExecutor wraps p. The caller keeps ownership of p and closes it; see GostExecutor for the caveats.
func NewGostExecutor(p gxsync.GenericTaskPool) *GostExecutor {
	if p == nil {
		panic(errNilPool)
	}
	g := &GostExecutor{p: p, size: int64(simplePoolSize(p))}
	g.tasks.New = func() any {
		t := &gostTask{g: g}
		t.fn = t.run
		return t
	}
	return g
}

// simplePoolSize is the worker bound of a pool made by gxsync.NewTaskPoolSimple, read from its semaphore's
// capacity (gost exports no accessor); 0 for any other pool, or if gost's layout changes
// (TestGostSimplePoolSizeFound pins it for the gost version in go.mod).
func simplePoolSize(p gxsync.GenericTaskPool) int {
	v := reflect.ValueOf(p)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return 0
	}
	st := v.Elem().Type()
	if st.Name() != "taskPoolSimple" || st.PkgPath() != "github.com/dubbogo/gost/sync" {
		return 0
	}
	sem := v.Elem().FieldByName("sem")
	if !sem.IsValid() || sem.Kind() != reflect.Chan {
		return 0
	}
	return sem.Cap()
}

// Execute hands task to the gost pool, blocking while it is saturated. It returns false (and task will not run)
// if the pool is closed or panics because it is being closed. The key is ignored.
//
// Caveat inherited from gost: gxsync.TaskPool.Close may discard tasks that were accepted but not yet started, and
// AddTask or AddTaskAlways may report success for (or silently drop) a task queued while Close is in progress.
// Close every Mailbox that uses the pool (and wait for its final callback) before closing the gost pool.
func (g *GostExecutor) Execute(_ uint64, task func()) (ok bool) {
	if g.size == 0 {
		return g.add(task, false)
	}
	t := g.tasks.Get().(*gostTask)
	t.task = task
	// At the pool's size the blocking AddTask; below it a waiting worker first.
	if ok = g.add(t.fn, g.inflight.Add(1) <= g.size); !ok {
		g.inflight.Add(-1)
		t.task = nil
		g.tasks.Put(t)
	}
	return ok
}

// add hands task to the pool, with AddTaskAlways when always (the caller's count keeps that from starting
// goroutines without bound) or else with the blocking AddTask; guarded against a pool being closed.
func (g *GostExecutor) add(task func(), always bool) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	if g.p.IsClosed() {
		return false
	}
	if always {
		g.p.AddTaskAlways(task)
		return true
	}
	return g.p.AddTask(task)
}

// gostTask carries a task to a counted pool; pooled, with its run's method value made once, so that counting
// allocates nothing per task.
type gostTask struct {
	g    *GostExecutor
	task func()
	fn   func() // t.run
}

func (t *gostTask) run() {
	g, task := t.g, t.task
	t.task = nil
	g.tasks.Put(t)
	defer g.inflight.Add(-1)
	task()
}
