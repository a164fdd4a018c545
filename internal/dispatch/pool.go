package dispatch

import (
	"log"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
)

// DefaultQueueLen is the per-queue capacity used when NewPool is given queueLen <= 0. A Mailbox puts at most one
// drain task into the pool at a time, so this is roughly "sessions with pending work per queue" before readers
// start to block, not a message count.
const DefaultQueueLen = 256

// Pool is the built-in bounded M:N executor: M bounded FIFO queues served by N worker goroutines, with task routing
// by key % M so that all work for one key lands on one queue.
//
// With NewPool there is one queue per worker (M == N), which gives a useful extra guarantee: raw Execute calls with
// the same key run in submission order, one at a time. The price is head-of-line blocking: a task that blocks
// holds up every key that maps to its queue. NewPoolWithQueues lets several workers share a queue (M < N) to
// soften that, at the cost of per-key order for raw Execute (a Mailbox keeps its order on any executor).
//
// Memory is bounded: nothing here allocates per task, workers are started once, and Execute blocks while the
// target queue is full.
//
// Concurrency is bounded by tokens, one per worker (tokens.go): a worker holds one while it runs a task, and a
// Mailbox may borrow one to run a message on its caller's goroutine (RunOrPost). At most `workers` tasks and
// borrowed runs execute at once; a worker that finds every token borrowed waits for one.
type Pool struct {
	queues  []*poolQueue
	workers int
	wg      sync.WaitGroup
	once    sync.Once
	onPanic atomic.Pointer[func(any)]
	tok     tokens // one per worker: at most `workers` tasks and borrowed runs at once (tokens.go)
}

// poolQueue is a bounded ring of tasks guarded by a mutex. A channel cannot express the one thing needed beyond a
// plain bounded queue: a running task must be able to re-queue itself past the producer limit without blocking
// (see yield), otherwise a Mailbox drain giving up its worker could wait on a queue only its own worker empties.
type poolQueue struct {
	mu       sync.Mutex
	notEmpty sync.Cond // idle workers wait here
	notFull  sync.Cond // producers wait here while n >= limit
	buf      []func()  // len(buf) = limit + workers serving this queue (room for yields, see yield)
	head, n  int
	limit    int // producer capacity
	idle     int // workers waiting on notEmpty
	blocked  int // producers waiting on notFull
	closed   bool
}

// NewPool starts a pool with one bounded queue per worker. workers <= 0 means runtime.GOMAXPROCS(0);
// queueLen <= 0 means DefaultQueueLen. Call Close to stop the workers.
func NewPool(workers, queueLen int) *Pool {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	return NewPoolWithQueues(workers, workers, queueLen)
}

// NewPoolWithQueues starts a pool of `workers` goroutines sharing `queues` bounded queues (worker i serves queue
// i % queues). queues <= 0 or queues > workers means one queue per worker; workers and queueLen defaults are as in
// NewPool. Sharing a queue among several workers means one blocked task does not stall the other keys of its
// queue, but raw Execute no longer preserves per-key order.
func NewPoolWithQueues(workers, queues, queueLen int) *Pool {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	if queues <= 0 || queues > workers {
		queues = workers
	}
	if queueLen <= 0 {
		queueLen = DefaultQueueLen
	}
	p := &Pool{queues: make([]*poolQueue, queues), workers: workers}
	p.tok.init(workers)
	for i := range p.queues {
		serving := workers / queues
		if i < workers%queues {
			serving++
		}
		q := &poolQueue{buf: make([]func(), queueLen+serving), limit: queueLen}
		q.notEmpty.L = &q.mu
		q.notFull.L = &q.mu
		p.queues[i] = q
	}
	p.wg.Add(workers)
	for i := 0; i < workers; i++ {
		go p.work(p.queues[i%queues])
	}
	return p
}

// Workers reports the number of worker goroutines.
func (p *Pool) Workers() int { return p.workers }

// Len reports the number of tasks waiting in the pool's queues (not counting running ones); useful for metrics
// and tests.
func (p *Pool) Len() int {
	n := 0
	for _, q := range p.queues {
		q.mu.Lock()
		n += q.n
		q.mu.Unlock()
	}
	return n
}

// SetPanicHandler installs h to receive the value of any panic recovered from a task run by the pool. Without a
// handler the panic and its stack are logged; either way the worker survives. Safe to call at any time.
func (p *Pool) SetPanicHandler(h func(v any)) {
	if h == nil {
		p.onPanic.Store(nil)
		return
	}
	p.onPanic.Store(&h)
}

func (p *Pool) queue(key uint64) *poolQueue {
	return p.queues[key%uint64(len(p.queues))]
}

// Execute queues task on queue key % M, blocking while that queue is full. It returns false without running task
// if the pool is closed, including when Close is called while Execute is blocked.
//
// Do not call Execute from inside a task of the same pool when the queue may be full: the worker would wait for
// room that only it can make.
func (p *Pool) Execute(key uint64, task func()) bool {
	if task == nil {
		panic("dispatch: Pool.Execute with nil task")
	}
	q := p.queue(key)
	q.mu.Lock()
	for q.n >= q.limit && !q.closed {
		q.blocked++
		q.notFull.Wait()
		q.blocked--
	}
	if q.closed {
		q.mu.Unlock()
		return false
	}
	q.pushLocked(task)
	q.mu.Unlock()
	return true
}

// yield re-queues task at the back of queue key % M without blocking. It is only used by a task running on that
// queue (a Mailbox drain giving up its worker), and may exceed the producer limit by at most one task per worker
// serving the queue: each worker can yield at most once per task it popped, so len <= limit + workers. If that
// bound would be exceeded (misuse) it reports yieldFull and the caller keeps the work instead of blocking.
func (p *Pool) yield(key uint64, task func()) yieldResult {
	q := p.queue(key)
	q.mu.Lock()
	defer q.mu.Unlock()
	switch {
	case q.closed:
		return yieldClosed
	case q.n >= len(q.buf):
		return yieldFull
	}
	q.pushLocked(task)
	return yieldOK
}

func (q *poolQueue) pushLocked(task func()) {
	i := q.head + q.n
	if i >= len(q.buf) {
		i -= len(q.buf)
	}
	q.buf[i] = task
	q.n++
	if q.idle > 0 {
		q.notEmpty.Signal()
	}
}

// take pops the next task, waiting while the queue is empty; ok is false once the queue is closed and empty.
func (q *poolQueue) take() (task func(), ok bool) {
	q.mu.Lock()
	for q.n == 0 {
		if q.closed {
			q.mu.Unlock()
			return nil, false
		}
		q.idle++
		q.notEmpty.Wait()
		q.idle--
	}
	task = q.buf[q.head]
	q.buf[q.head] = nil // let the closure be collected
	q.head++
	if q.head == len(q.buf) {
		q.head = 0
	}
	q.n--
	if q.blocked > 0 && q.n < q.limit {
		q.notFull.Signal()
	}
	q.mu.Unlock()
	return task, true
}

func (p *Pool) work(q *poolQueue) {
	normal := false
	defer func() {
		if !normal {
			// A task called runtime.Goexit (e.g. t.FailNow): replace this worker so its queue keeps being served.
			p.wg.Add(1)
			go p.work(q)
		}
		p.wg.Done()
	}()
	for {
		task, ok := q.take()
		if !ok {
			normal = true
			return
		}
		p.tok.acquire()
		p.run(task)
	}
}

func (p *Pool) run(task func()) {
	defer p.tok.release()
	defer p.recoverPanic()
	task()
}

// tryBorrow takes one of the workers' tokens for a run on the caller's goroutine, without blocking: false when
// every token is held or a worker waits for one. A true result must be paired with giveBack.
func (p *Pool) tryBorrow() bool { return p.tok.tryBorrow() }

// giveBack returns a token taken by tryBorrow.
func (p *Pool) giveBack() { p.tok.release() }

// wanted reports that a worker waits for a token: a borrower running several messages in a row gives its token
// back then (Mailbox.RunLeased).
func (p *Pool) wanted() bool { return p.tok.waiting.Load() > 0 }

func (p *Pool) recoverPanic() {
	if r := recover(); r != nil {
		var h func(any)
		if hp := p.onPanic.Load(); hp != nil {
			h = *hp
		}
		reportPanic(h, r)
	}
}

// Close stops accepting tasks (Execute returns false, and Executes blocked on a full queue return false at
// once), runs every task already queued, and waits until every worker has exited. It is idempotent and safe to
// call concurrently with Execute and with itself; every call returns only after the workers are gone. It must not
// be called from a task running on the pool (it would wait for itself).
func (p *Pool) Close() {
	p.once.Do(func() {
		for _, q := range p.queues {
			q.mu.Lock()
			q.closed = true
			q.notFull.Broadcast()
			q.notEmpty.Broadcast()
			q.mu.Unlock()
		}
	})
	p.wg.Wait()
}

// reportPanic hands a recovered value to h, or logs it when h is nil. A panicking handler is itself contained:
// the goroutines running it belong to the pool and to mailboxes that must keep going.
func reportPanic(h func(any), v any) {
	if h == nil {
		log.Printf("dispatch: recovered panic: %v\n%s", v, debug.Stack())
		return
	}
	defer func() {
		if r := recover(); r != nil {
			log.Printf("dispatch: panic handler panicked: %v (handling %v)", r, v)
		}
	}()
	h(v)
}

var (
	_ Executor = (*Pool)(nil)
	_ yielder  = (*Pool)(nil)
	_ lender   = (*Pool)(nil)
	_ Executor = (*GostExecutor)(nil)
)
