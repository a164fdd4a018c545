package dispatch

import (
	"errors"
	"reflect"
	"sync"

	gxsync "github.com/dubbogo/gost/sync"
)

// GostExecutor adapts a gxsync.GenericTaskPool (github.com/dubbogo/gost/sync) to Executor, for compatibility with
// servers configured the upstream getty way. A saturated pool pushes back on the caller: at most as many tasks as
// the pool has workers are in flight, and Execute blocks beyond that (upstream's AddTaskAlways would start a
// goroutine per task instead, without bound).
//
// On a pool made by gxsync.NewTaskPoolSimple(size) the tasks wait in the executor's own queue and are served first
// in, first out. Handing each task to a worker of its own would leave the order to the Go scheduler, which runs
// readied goroutines in no fair order (the one a channel handoff just woke runs next): with hundreds of tasks
// waiting for one CPU, some waited behind all the others (at 100 connections x 16 requests of 20 µs CPU each, a
// p99 three times gnet's). So the pool's workers run drainers instead: a drainer takes the oldest task, runs it,
// and goes on while tasks wait, then returns its worker to the pool. Whichever drainer gets the CPU serves the
// oldest task. Execute starts a drainer only when the tasks waiting outnumber the drainers free to take one, so a
// task never waits behind a handler that blocks (each task still gets a goroutine of its own when all the others
// block, as before), and only as many drainers run as the load needs. A drainer starts with AddTaskAlways, which
// prefers a worker that waits to a new one: gost's AddTask picks at random between the two, and a pool sized for
// its peak (dubbo-go uses 2000) would soon keep all its goroutines, each one cold in the CPU's caches. A worker
// between two drainers may look busy to AddTaskAlways, which then runs that drainer on a goroutine of its own;
// the drainers never outnumber the pool's size, so the goroutines stay under twice that.
// Other gost pools (gxsync.NewTaskPool: fixed workers, queues) get AddTask alone.
//
// gost pools panic with "send on closed channel" when AddTask races with (or follows) Close; every call into the
// pool is therefore guarded by recover, and a recovered panic is reported as a refusal (Execute returns false).
// The key is ignored: ordering among one producer's tasks must come from a Mailbox.
type GostExecutor struct {
	p gxsync.GenericTaskPool

	// size is the pool's worker bound when it is a gxsync.NewTaskPoolSimple pool, else 0 (no queue here).
	size    int
	drainFn func() // g.drain, made once

	mu      sync.Mutex
	room    sync.Cond // signalled when a task ends while Execute callers wait for room
	queue   taskRing
	running int    // drainers running a task
	idle    int    // drainers started and not running a task: each takes a task before it ends
	waiting int    // Execute callers blocked at the bound
	ids     uint64 // numbers the queued tasks, so that a refused Execute can take its own back
}

// errNilPool is the panic value for constructor misuse; a nil pool is a programming error, not a runtime condition.
var errNilPool = errors.New("dispatch: NewGostExecutor with nil pool")

// NewGostExecutor wraps p. The caller keeps ownership of p and closes it; see GostExecutor for the caveats.
func NewGostExecutor(p gxsync.GenericTaskPool) *GostExecutor {
	if p == nil {
		panic(errNilPool)
	}
	g := &GostExecutor{p: p, size: simplePoolSize(p)}
	g.drainFn = g.drain
	g.room.L = &g.mu
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

// Execute queues task for the gost pool, blocking while the pool's size of tasks are in flight. It returns false
// (and task will not run) if the pool is closed or panics because it is being closed. The key is ignored. It is
// safe for concurrent use, also from inside a task (which then holds its place in flight while it blocks).
//
// Caveat inherited from gost: gxsync.TaskPool.Close may discard tasks that were accepted but not yet started, and
// AddTask or AddTaskAlways may report success for (or silently drop) a task queued while Close is in progress.
// Close every Mailbox that uses the pool (and wait for its final callback) before closing the gost pool. A task
// may run before its Execute returns (a drainer already running may take it): that a task ran does not mean its
// Execute is done with the pool.
func (g *GostExecutor) Execute(_ uint64, task func()) bool {
	if g.size == 0 {
		return g.add(task, false)
	}
	if g.p.IsClosed() {
		return false
	}
	g.mu.Lock()
	if !g.waitRoom() {
		g.mu.Unlock()
		return false
	}
	g.ids++
	id := g.ids
	g.queue.push(task, id)
	start := g.queue.len() > g.idle
	if start {
		g.idle++
	}
	g.mu.Unlock()
	if !start {
		return true
	}
	if !g.add(g.drainFn, true) {
		return g.unstart(id)
	}
	if g.p.IsClosed() {
		g.wakeWaiting() // gost may have dropped the drainer: nothing else might wake a caller waiting for room
	}
	return true
}

// waitRoom waits, with g.mu held, until fewer than the pool's size of tasks are in flight; false if the pool is
// closed and the caller had to wait (the task is then refused, not queued behind tasks that may never end).
func (g *GostExecutor) waitRoom() bool {
	waited := false
	for g.full() && !g.p.IsClosed() {
		g.waiting++
		g.room.Wait()
		g.waiting--
		waited = true
	}
	if (waited || g.full()) && g.p.IsClosed() {
		g.room.Broadcast() // the others waiting learn it too
		return false
	}
	return true
}

// full reports, with g.mu held, that the pool's size of tasks are queued or running.
func (g *GostExecutor) full() bool { return g.queue.len()+g.running >= g.size }

// unstart undoes a drainer's start that the pool refused (it is closed): the task numbered id is taken back if
// no drainer has taken it yet, and with no drainer left the tasks still queued are dropped, as gost's Close
// drops the tasks it has not started. It reports whether the task runs after all.
func (g *GostExecutor) unstart(id uint64) (runs bool) {
	g.mu.Lock()
	g.idle--
	runs = !g.queue.remove(id)
	if g.idle == 0 && g.running == 0 {
		g.queue.clear()
	}
	g.mu.Unlock()
	g.wakeWaiting()
	return runs
}

// wakeWaiting wakes every Execute caller waiting for room, to look again at the pool being closed.
func (g *GostExecutor) wakeWaiting() {
	g.mu.Lock()
	g.room.Broadcast()
	g.mu.Unlock()
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

// drain runs on a pool worker: it runs the oldest queued task, and the next, until none waits. A task that
// panics ends its drainer (the pool's worker reports the panic); the others go on.
func (g *GostExecutor) drain() {
	inTask := false
	defer func() {
		if inTask {
			g.mu.Lock()
			g.running--
			if g.waiting > 0 {
				g.room.Signal()
			}
			g.mu.Unlock()
		}
	}()
	g.mu.Lock()
	for {
		task, ok := g.queue.pop()
		if !ok {
			g.idle--
			g.mu.Unlock()
			return
		}
		g.idle--
		g.running++
		g.mu.Unlock()
		inTask = true
		task()
		inTask = false
		g.mu.Lock()
		g.running--
		g.idle++
		if g.waiting > 0 {
			g.room.Signal()
		}
	}
}

// taskRing is a FIFO of tasks in a ring that doubles when full and is reused, so that queueing allocates nothing
// once it has grown to the load.
type taskRing struct {
	buf        []queuedTask // len is 0 or a power of two
	head, tail uint64       // pop at head, push at tail
}

type queuedTask struct {
	fn func()
	id uint64
}

func (r *taskRing) len() int { return int(r.tail - r.head) }

func (r *taskRing) at(i uint64) *queuedTask { return &r.buf[i&uint64(len(r.buf)-1)] }

func (r *taskRing) push(fn func(), id uint64) {
	if r.len() == len(r.buf) {
		r.grow()
	}
	*r.at(r.tail) = queuedTask{fn, id}
	r.tail++
}

func (r *taskRing) pop() (func(), bool) {
	if r.head == r.tail {
		return nil, false
	}
	q := r.at(r.head)
	fn := q.fn
	*q = queuedTask{} // the ring keeps no task alive
	r.head++
	return fn, true
}

// remove takes the task numbered id out of the queue, keeping the others' order; false if it is not queued.
// Linear, for the rare refusal only.
func (r *taskRing) remove(id uint64) bool {
	for i := r.tail; i > r.head; i-- {
		if r.at(i-1).id != id {
			continue
		}
		for j := i - 1; j+1 < r.tail; j++ {
			*r.at(j) = *r.at(j + 1)
		}
		r.tail--
		*r.at(r.tail) = queuedTask{}
		return true
	}
	return false
}

func (r *taskRing) clear() {
	for r.head != r.tail {
		r.pop()
	}
}

func (r *taskRing) grow() {
	n := 2 * len(r.buf)
	if n == 0 {
		n = 64
	}
	buf := make([]queuedTask, n)
	queued := r.len()
	for i := range buf[:queued] {
		buf[i] = *r.at(r.head + uint64(i))
	}
	r.head, r.tail, r.buf = 0, uint64(queued), buf
}
