package dispatch

import (
	"errors"

	gxsync "github.com/dubbogo/gost/sync"
)

// Executor runs tasks on goroutines it owns. It is the seam between a session and whatever pool runs its callbacks,
// so a server can share one pool among all sessions or plug in an upstream gxsync pool.
//
// Execute blocks while the executor is saturated — that blocking is the backpressure that eventually stops the
// connection's reader — and returns false if the executor is closed, in which case the task did not and will not
// run. key identifies the producer (typically the session id); executors may use it for routing and may ignore it.
type Executor interface {
	Execute(key uint64, task func()) bool
}

// yieldResult is the outcome of a non-blocking re-queue (see yielder).
type yieldResult uint8

const (
	yieldOK     yieldResult = iota // task queued
	yieldFull                      // no room without blocking; the caller keeps the work
	yieldClosed                    // executor closed; the task will never run
)

// yielder is implemented by executors that let a task running on them re-queue a follow-up task at the back of
// its queue without blocking. A Mailbox drain uses it to give up its worker after `budget` messages. A blocking
// Execute from inside a task could deadlock (the worker would wait for room in the queue only it drains), so for
// executors without yield the drain simply keeps running (order and liveness kept, fairness not).
type yielder interface {
	yield(key uint64, task func()) yieldResult
}

// lender is implemented by executors that can let a caller run a task on its own goroutine within the executor's
// concurrency bound: tryBorrow takes a run slot without blocking (false if none is free), giveBack returns it,
// and wanted reports that a worker waits for a slot (a holder that runs several tasks in a row gives its slot
// back then, for fairness). Mailbox.RunOrPost and Mailbox.Lease use it to skip the handoff to a worker when a
// session's mailbox is idle.
type lender interface {
	tryBorrow() bool
	giveBack()
	wanted() bool
}

// GostExecutor adapts a gxsync.GenericTaskPool (github.com/dubbogo/gost/sync) to Executor, for compatibility with
// servers configured the upstream getty way. It uses the pool's blocking AddTask, so a saturated pool still pushes
// back on the caller (AddTaskAlways/AddTaskBalance would spawn goroutines instead).
//
// gost pools panic with "send on closed channel" when AddTask races with (or follows) Close; every call into the
// pool is therefore guarded by recover, and a recovered panic is reported as a refusal (Execute returns false).
// The key is ignored: gost routes round-robin, so ordering must come from a Mailbox.
type GostExecutor struct {
	p gxsync.GenericTaskPool
}

// errNilPool is the panic value for constructor misuse; a nil pool is a programming error, not a runtime condition.
var errNilPool = errors.New("dispatch: NewGostExecutor with nil pool")

// NewGostExecutor wraps p. The caller keeps ownership of p and closes it; see GostExecutor for the caveats.
func NewGostExecutor(p gxsync.GenericTaskPool) *GostExecutor {
	if p == nil {
		panic(errNilPool)
	}
	return &GostExecutor{p: p}
}

// Execute hands task to the gost pool, blocking while it is saturated. It returns false (and task will not run)
// if the pool is closed or panics because it is being closed. The key is ignored.
//
// Caveat inherited from gost: gxsync.TaskPool.Close may discard tasks that were accepted but not yet started, and
// AddTask may report success for a task queued while Close is in progress. Close every Mailbox that uses the pool
// (and wait for its final callback) before closing the gost pool.
func (g *GostExecutor) Execute(_ uint64, task func()) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	if g.p.IsClosed() {
		return false
	}
	return g.p.AddTask(task)
}
