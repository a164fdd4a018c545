package dispatch

import "sync"

// Mailbox defaults, used when NewMailbox is given a non-positive value.
const (
	DefaultMailboxCapacity = 64
	DefaultMailboxBudget   = 32
)

// message is one posted callback, stored by value in the ring so that Post does not allocate.
type message struct {
	fn  func(arg any)
	arg any
}

// Mailbox is a per-session bounded FIFO of (fn, arg) messages drained by an Executor, with at most one drain in
// flight. That single rule gives the session guarantees: messages run one at a time in Post order; different
// sessions' mailboxes drain in parallel; the final callback of Close runs after the last message.
//
// Scheduling: posting to an idle mailbox schedules ONE drain task on the executor (key = the mailbox key). A drain
// runs up to `budget` messages and then, if more remain, re-queues itself at the back of its executor queue so a
// busy session cannot starve others on the same queue. Re-queueing must not block (the drain runs on the very
// worker that empties that queue), so it is only done on executors that support it (Pool); on other executors
// (GostExecutor, custom ones) the drain keeps running until the mailbox is empty — order and liveness hold,
// fairness between sessions is then up to the executor. RunOrPost is the other way in: on an idle mailbox whose
// executor lends a run slot (a Pool token) it runs the message on the caller instead of scheduling a drain; Lease
// (lease.go) does the same for several messages in a row under one claim and one slot.
//
// Backpressure: Post blocks while the mailbox is full, and the pool holds at most one task per mailbox, so memory
// is bounded by (mailboxes x capacity) messages regardless of how fast readers decode.
//
// Callbacks must not Post to a mailbox that may be full, nor Post to (or Close and wait on) a mailbox served by a
// saturated queue of the same pool: the worker would wait for itself. Handlers must not call runtime.Goexit (it
// cannot be recovered and would leave the mailbox marked as draining).
type Mailbox struct {
	cfg     *Mailboxes
	key     uint64
	drainFn func() // m.drain as a method value, created once so scheduling does not allocate
	hooks   Hooks  // set before use (not synchronized); nil: no hooks, panics logged

	mu        sync.Mutex
	notFull   sync.Cond  // Posts wait here while the ring is full
	ring      *[]message // borrowed from cfg.rings while messages are queued; nil when idle
	buf       []message  // *ring, or nil
	head, n   int
	waiters   int    // Posts waiting on notFull
	scheduled bool   // a drain is queued or running; owns the right to run messages, hooks and final
	closed    bool   // Close called: Post refused
	dead      bool   // the executor refused a drain: everything queued was dropped, Post refused
	finalDone bool   // final taken (it runs exactly once)
	final     func() // from the first Close
}

// Mailboxes holds what the mailboxes of one executor share, so that each mailbox (one per session) carries
// only its own state: an idle session costs less memory.
type Mailboxes struct {
	ex       Executor
	yielder  yielder // ex as a yielder, nil if it cannot re-queue without blocking
	lender   lender  // ex as a lender, nil if it cannot lend a run slot (RunOrPost then posts)
	capacity int     // ring size
	budget   int
	rings    *sync.Pool // rings of this size, shared by mailboxes
}

// Hooks are a mailbox owner's callbacks as one interface, so an owner can install them without a closure each:
// BeginBatch and EndBatch run on the drain goroutine around each batch of messages (see SetDrainHooks), Panicked
// receives the value of a panic recovered from a message or a hook (see SetPanicHandler).
type Hooks interface {
	BeginBatch()
	EndBatch()
	Panicked(v any)
}

// Abandoner is optionally implemented by Hooks: Abandoned runs once, outside the mailbox's lock, after the executor
// refused a drain and the mailbox dropped its queued messages (dropped of them, the refused one included), so the
// owner can end what those messages stood for instead of waiting for replies that will never be written.
type Abandoner interface {
	Abandoned(dropped int)
}

// funcHooks are Hooks from funcs (SetDrainHooks, SetPanicHandler); nil funcs are no-ops, a nil onPanic logs.
type funcHooks struct {
	begin, end func()
	onPanic    func(any)
}

func (f *funcHooks) BeginBatch() {
	if f.begin != nil {
		f.begin()
	}
}

func (f *funcHooks) EndBatch() {
	if f.end != nil {
		f.end()
	}
}

func (f *funcHooks) Panicked(v any) { reportPanic(f.onPanic, v) }

// NewMailboxes prepares mailboxes drained by ex. capacity <= 0 means DefaultMailboxCapacity, budget <= 0 means
// DefaultMailboxBudget. A mailbox's ring is borrowed from a pool while messages are queued and returned when the
// mailbox drains empty, so an idle mailbox holds none.
func NewMailboxes(ex Executor, capacity, budget int) *Mailboxes {
	if ex == nil {
		panic("dispatch: NewMailbox with nil Executor")
	}
	if capacity <= 0 {
		capacity = DefaultMailboxCapacity
	}
	if budget <= 0 {
		budget = DefaultMailboxBudget
	}
	c := &Mailboxes{ex: ex, budget: budget, capacity: capacity, rings: ringPool(capacity)}
	c.yielder, _ = ex.(yielder)
	c.lender, _ = ex.(lender)
	return c
}

// New creates a mailbox whose drains are submitted with the given key (sessions sharing a Pool queue share its
// worker; use the session id).
func (c *Mailboxes) New(key uint64) *Mailbox {
	m := &Mailbox{cfg: c, key: key}
	m.notFull.L = &m.mu
	m.drainFn = m.drain
	return m
}

// NewMailbox creates one mailbox drained by ex: NewMailboxes(ex, capacity, budget).New(key).
func NewMailbox(ex Executor, key uint64, capacity, budget int) *Mailbox {
	return NewMailboxes(ex, capacity, budget).New(key)
}

// SetHooks installs h (see Hooks). Must be set before the first Post.
func (m *Mailbox) SetHooks(h Hooks) { m.hooks = h }

// funcs returns the mailbox's funcHooks, installing them if it has other hooks or none.
func (m *Mailbox) funcs() *funcHooks {
	if f, ok := m.hooks.(*funcHooks); ok {
		return f
	}
	f := &funcHooks{}
	m.hooks = f
	return f
}

// SetDrainHooks installs begin and end, called on the drain goroutine around each batch of messages: begin before
// the first message of a batch, end after its last one (before the drain gives up the mailbox, so hooks never
// overlap and never run concurrently with a message). A session uses them to batch its writes per drain (open a
// write batch, flush it once). Either may be nil. Must be set before the first Post.
func (m *Mailbox) SetDrainHooks(begin, end func()) {
	f := m.funcs()
	f.begin, f.end = begin, end
}

// SetPanicHandler installs h to receive the value of a panic recovered from a message, a hook or the final
// callback; the mailbox keeps running either way. Without a handler the panic is logged with its stack. Must be
// set before the first Post.
func (m *Mailbox) SetPanicHandler(h func(v any)) {
	m.funcs().onPanic = h
}

// Len reports the number of messages waiting (not counting one that is running).
func (m *Mailbox) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.n
}

// Post appends fn(arg) to the mailbox, blocking while it is full until room appears or the mailbox is closed. It
// returns false if the mailbox is closed (before or while waiting) or its executor refused to run it; fn will
// then not run. Post does not allocate (pass pointer-shaped args to avoid boxing at the call site).
//
// A true result means accepted: fn runs unless the executor is closed before the mailbox drains it (then queued
// messages are dropped, see Close).
func (m *Mailbox) Post(fn func(arg any), arg any) bool {
	if fn == nil {
		panic("dispatch: Mailbox.Post with nil fn")
	}
	m.mu.Lock()
	for m.n == m.cfg.capacity && !m.closed && !m.dead {
		m.waiters++
		m.notFull.Wait()
		m.waiters--
	}
	if m.closed || m.dead {
		m.mu.Unlock()
		return false
	}
	if m.buf == nil {
		m.ring = m.cfg.rings.Get().(*[]message)
		m.buf = *m.ring
	}
	i := m.head + m.n
	if i >= len(m.buf) {
		i -= len(m.buf)
	}
	m.buf[i] = message{fn: fn, arg: arg}
	m.n++
	if m.scheduled {
		m.mu.Unlock()
		return true
	}
	m.scheduled = true
	m.mu.Unlock()
	// Outside the lock: Execute may block on a saturated executor, and meanwhile other Posts must still be able
	// to fill the mailbox (and then block), and the drain must be able to start.
	if m.cfg.ex.Execute(m.key, m.drainFn) {
		return true
	}
	m.abandon()
	return false
}

// RunOrPost runs fn(arg) on the calling goroutine when the mailbox is idle (nothing queued, no drain queued or
// running, not closed) and its executor lends a run slot without blocking — a Pool with a worker token free and
// no worker waiting for one. Otherwise it is Post. The inline run owns the mailbox exactly as a drain does: the
// begin and end hooks run around fn, later messages queue behind it, a final callback waits for it, and the
// executor's bound on concurrent tasks counts it. It saves the handoff to a worker (a wake-up and a scheduler
// round trip, about the cost of a short handler) whenever the pool has room; under saturation every message
// queues as with Post, in FIFO order behind work already waiting. The result is Post's.
//
// inBatch tells that the caller holds a batch of its own open around this call (a reader gathering the replies
// of several packages read together): a run on the caller then skips the begin and end hooks, which would only
// nest inside the caller's. A posted message gets its drain's hooks either way.
//
// Only a goroutine that may run the callbacks itself should call it (a session's reader does); a callback
// calling RunOrPost on another mailbox would nest that mailbox's message inside its own.
func (m *Mailbox) RunOrPost(fn func(arg any), arg any, inBatch bool) bool {
	if m.TryRun(fn, arg, inBatch) {
		return true
	}
	return m.Post(fn, arg)
}

// TryRun is RunOrPost without the Post: it runs fn(arg) on the calling goroutine under the same conditions and
// reports whether it did; on false nothing ran or was queued, and the caller may Post (order holds either way:
// a Post after a failed TryRun queues behind whatever made it fail). It lets a caller prepare a message for the
// queue (a reader takes a cork a queued message holds until it starts) only when the message is really queued,
// instead of preparing and undoing it for every message that runs on the caller.
func (m *Mailbox) TryRun(fn func(arg any), arg any, inBatch bool) bool {
	if fn == nil {
		panic("dispatch: Mailbox.TryRun with nil fn")
	}
	if !m.claim() {
		return false
	}
	m.runBorrowed(fn, arg, !inBatch)
	m.unclaim()
	return true
}

// runBorrowed runs one message on a borrowed run slot, as a batch of its own with hooks, and gives the slot
// back.
func (m *Mailbox) runBorrowed(fn func(any), arg any, hooks bool) {
	defer m.cfg.lender.giveBack()
	if hooks {
		m.hook(false)
	}
	m.invoke(fn, arg)
	if hooks {
		m.hook(true)
	}
}

// Close stops the mailbox accepting messages: later Posts, and Posts blocked on a full mailbox, return false.
// Messages already queued still run, in order; then final runs exactly once, after the last message finished and
// never concurrently with one — on the executor if a drain is active or pending, otherwise inline before Close
// returns. Close is idempotent; the final of any later call is ignored. If the executor refuses a drain (it was
// closed), queued messages are dropped and final still runs, inline in whichever goroutine observed the refusal.
func (m *Mailbox) Close(final func()) {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return
	}
	m.closed = true
	m.final = final
	if m.waiters > 0 {
		m.notFull.Broadcast()
	}
	var f func()
	if !m.scheduled {
		// Idle implies empty: a message is only ever queued with a drain scheduled (or dropped by abandon).
		f = m.takeFinalLocked()
	}
	m.mu.Unlock()
	if f != nil {
		m.runGuarded(f)
	}
}

// takeFinalLocked returns the final callback if it is due and not yet taken, marking it taken.
func (m *Mailbox) takeFinalLocked() func() {
	if !m.closed || m.finalDone {
		return nil
	}
	m.finalDone = true
	f := m.final
	m.final = nil
	return f
}

// drain is the single task a mailbox has in its executor at any time.
func (m *Mailbox) drain() {
	ran := 0 // messages run by this task, for the budget
	inBatch := false
	for {
		m.mu.Lock()
		if m.n > 0 && ran < m.cfg.budget {
			msg := m.buf[m.head]
			m.buf[m.head] = message{} // drop references for the GC
			m.head++
			if m.head == len(m.buf) {
				m.head = 0
			}
			m.n--
			if m.waiters > 0 {
				m.notFull.Signal()
			}
			m.mu.Unlock()
			if !inBatch {
				inBatch = true
				m.hook(false)
			}
			m.invoke(msg.fn, msg.arg)
			ran++
			continue
		}
		m.mu.Unlock()

		// Batch boundary (mailbox looked empty, or budget spent). end runs while this drain still owns the
		// mailbox so it cannot overlap a later drain's begin or messages.
		if inBatch {
			inBatch = false
			m.hook(true)
		}
		m.mu.Lock()
		if m.n == 0 {
			m.scheduled = false
			m.releaseRingLocked()
			f := m.takeFinalLocked()
			m.mu.Unlock()
			if f != nil {
				m.runGuarded(f)
			}
			return
		}
		m.mu.Unlock()
		if ran < m.cfg.budget {
			continue // messages arrived while end ran: start another batch in this drain
		}
		if m.cfg.yielder == nil {
			ran = 0 // executor cannot re-queue without blocking: keep draining here
			continue
		}
		switch m.cfg.yielder.yield(m.key, m.drainFn) {
		case yieldOK:
			return // the re-queued drain continues later, after what is ahead of it in the queue
		case yieldClosed:
			m.abandon()
			return
		default: // yieldFull: keep the work rather than block our own worker
			ran = 0
		}
	}
}

// abandon handles an executor refusal: drop what is queued, refuse further Posts, release blocked Posts, and run
// final if Close was already called (nobody else will).
func (m *Mailbox) abandon() {
	m.mu.Lock()
	m.dead = true
	dropped := m.n
	clear(m.buf)
	m.n = 0
	m.releaseRingLocked()
	m.scheduled = false
	if m.waiters > 0 {
		m.notFull.Broadcast()
	}
	f := m.takeFinalLocked()
	m.mu.Unlock()
	if a, ok := m.hooks.(Abandoner); ok {
		a.Abandoned(dropped)
	}
	if f != nil {
		m.runGuarded(f)
	}
}

// invoke runs one message, containing a panic so it kills neither the worker nor the rest of the mailbox.
func (m *Mailbox) invoke(fn func(any), arg any) {
	defer m.recoverPanic()
	fn(arg)
}

// hook runs the begin (end false) or end hook, if any, with the same panic containment as messages.
func (m *Mailbox) hook(end bool) {
	if m.hooks == nil {
		return
	}
	defer m.recoverPanic()
	if end {
		m.hooks.EndBatch()
	} else {
		m.hooks.BeginBatch()
	}
}

// runGuarded runs a final callback (nil is a no-op) with the same panic containment as messages.
func (m *Mailbox) runGuarded(f func()) {
	if f == nil {
		return
	}
	defer m.recoverPanic()
	f()
}

func (m *Mailbox) recoverPanic() {
	if r := recover(); r != nil {
		var h func(any)
		if m.hooks != nil {
			h = m.hooks.Panicked
		}
		reportPanic(h, r)
	}
}

// releaseRingLocked gives the (empty) ring back to its pool.
func (m *Mailbox) releaseRingLocked() {
	if m.ring == nil {
		return
	}
	m.cfg.rings.Put(m.ring)
	m.ring, m.buf, m.head = nil, nil, 0
}

// ringPools holds one pool of rings per mailbox capacity.
var ringPools sync.Map // int -> *sync.Pool

func ringPool(capacity int) *sync.Pool {
	if p, ok := ringPools.Load(capacity); ok {
		return p.(*sync.Pool)
	}
	p, _ := ringPools.LoadOrStore(capacity, &sync.Pool{New: func() any {
		r := make([]message, capacity)
		return &r
	}})
	return p.(*sync.Pool)
}
