package dispatch

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
