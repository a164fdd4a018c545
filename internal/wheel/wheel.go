// Package wheel is the process-wide hashed timing wheel that drives every
// session's periodic work (OnCron heartbeats, idle checks, WebSocket pings).
//
// Why not one time.AfterFunc per session: every AfterFunc expiry starts a
// new goroutine, and with 100k sessions that churn dominates an otherwise idle
// server. The wheel runs all callbacks on one goroutine, re-arming is a few
// pointer writes under a short lock, and nothing allocates in steady state.
//
// # Callbacks
//
// A callback runs on the wheel goroutine, so it must be short and must never
// block: a slow callback delays every other timer in the process. Callbacks
// that have real work to do (writing a heartbeat, closing a session) hand it
// to an executor and return. A panicking callback is recovered and counted so
// one bad session cannot stop the clock for everybody else.
//
// # Periodic timers and Close
//
// A callback re-arms its own Timer by calling Reset. Stop cannot cancel a
// firing that has already begun, so a Stop racing with a callback that is
// about to re-arm itself could be undone by that Reset. The race-free pattern:
//
//	// closing side             // callback
//	closed.Store(true)          if closed.Load() { return }
//	t.Stop()                    t.Reset(period)
//	                            if closed.Load() { t.Stop() }
//
// The re-check after Reset is what closes the window: Stop and Reset are
// ordered by the wheel's lock, so either the callback sees closed, or Stop
// runs after the Reset and disarms it.
//
// # Lifecycle
//
// A Wheel owns at most one goroutine. It is started by the first Reset and
// exits as soon as no timer is armed, so a process (or a test with goleak)
// that has stopped all its timers has no wheel goroutine left.
package wheel

import (
	"math/bits"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// defaultTick is the resolution of Default() and of New(tick) for tick<=0.
	// 10ms is far finer than any heartbeat or idle timeout needs, and coarse
	// enough that a wheel busy with many timers still sleeps between ticks.
	defaultTick = 10 * time.Millisecond

	// minTick keeps a caller from asking for a resolution that Go's runtime
	// timers cannot deliver and that would only make the goroutine spin.
	minTick = 100 * time.Microsecond

	// defaultSlots covers 40.96s at the default tick, so the common 1s..60s
	// periods wait at most about one extra round, and the slot array
	// (16 B per slot, 64 KiB) stays small enough for one process-wide wheel.
	defaultSlots = 4096

	// maxDelay keeps elapsed+d far from int64 overflow; ~146 years.
	maxDelay = time.Duration(1 << 62)
)

// Wheel is a hashed timing wheel: timers live in one of a power-of-two number
// of slots by expiry tick, each slot an intrusive doubly linked list, so
// arming and disarming are O(1) and allocation free. Timers further away than
// one revolution simply stay in their slot until their absolute expiry tick
// comes round; no per-round bookkeeping is needed.
//
// All methods are safe for concurrent use.
type Wheel struct {
	tick      time.Duration
	start     time.Time // monotonic origin for tick numbers
	mask      uint64    // len(slots)-1
	isDefault bool

	// panics counts recovered callback panics; read by tests.
	panics atomic.Uint64

	mu      sync.Mutex
	slots   []slot
	occ     []uint64 // bit per slot: non-empty; lets the goroutine skip empty slots
	pending struct{ head, tail *Timer }
	count   int    // armed timers, including those in pending
	cur     uint64 // every tick <= cur has been collected; new expiries must be > cur
	wakeAt  uint64 // tick the sleeping goroutine will wake at; 0 while it is awake
	running bool   // a wheel goroutine exists (or is being started)
	closed  bool
	done    chan struct{} // closed when the current goroutine exits
	wake    chan struct{} // cap 1: Reset/Stop nudge a sleeping goroutine
	sleeper *time.Timer
}

type slot struct {
	head *Timer
	// min is a lower bound of the expiry ticks in the slot (exact after the
	// goroutine has scanned it; may be stale-low after a Stop, which costs at
	// most one spurious wake-up). It lets the goroutine sleep until the next
	// due timer instead of waking for every occupied slot each round.
	min uint64
}

// Timer is one callback scheduled on a Wheel. Create it with Wheel.NewTimer
// or Wheel.NewTimerFor and keep it for the lifetime of its owner: Reset and
// Stop reuse it without allocating. The zero Timer is not usable.
//
// A Timer is 48 bytes, one per session: it keeps no field saying where it is
// linked, since expire tells (0: disarmed; at most the wheel's cur: pending,
// collected to fire; above cur: in slot expire&mask).
type Timer struct {
	w          *Wheel
	cb         Callback
	next, prev *Timer
	expire     uint64 // absolute tick; 0 while disarmed
}

// Callback is what a timer calls. A type that owns a timer can implement it
// and pass itself to NewTimerFor, so the timer needs no method value (an
// object of its own) to find its owner.
type Callback interface {
	Fire()
}

// funcCallback adapts a func; a func is pointer-shaped, so the conversion
// to Callback allocates nothing.
type funcCallback func()

func (f funcCallback) Fire() { f() }

var defaultWheel = sync.OnceValue(func() *Wheel {
	w := New(defaultTick)
	w.isDefault = true
	return w
})

// Default returns the process-wide wheel (10ms tick) shared by all sessions.
// Its goroutine only exists while some timer is armed, so it is never stopped
// explicitly.
func Default() *Wheel { return defaultWheel() }

// New returns a wheel with the given resolution. Timers fire on tick
// boundaries, so tick trades accuracy against wake-ups; tick<=0 means
// 10ms and ticks below 100µs are raised to 100µs. Most code should use
// Default; a private wheel is mainly for tests.
func New(tick time.Duration) *Wheel { return newWheel(tick, defaultSlots) }

// newWheel lets tests use a few slots so that multi-round expiries are cheap
// to exercise. nslots must be a power of two and a multiple of 64.
func newWheel(tick time.Duration, nslots int) *Wheel {
	if tick <= 0 {
		tick = defaultTick
	}
	if tick < minTick {
		tick = minTick
	}
	if nslots < 64 || nslots&(nslots-1) != 0 {
		panic("wheel: slot count must be a power of two >= 64")
	}
	s := time.NewTimer(time.Hour)
	s.Stop()
	return &Wheel{
		tick:    tick,
		start:   time.Now(),
		mask:    uint64(nslots - 1),
		slots:   make([]slot, nslots),
		occ:     make([]uint64, nslots/64),
		wake:    make(chan struct{}, 1),
		sleeper: s,
	}
}

// NewTimer returns a disarmed timer that calls f on the wheel goroutine each
// time it expires. f must be short and non-blocking (see the package doc).
func (w *Wheel) NewTimer(f func()) *Timer {
	if f == nil {
		panic("wheel: NewTimer with nil func")
	}
	return &Timer{w: w, cb: funcCallback(f)}
}

// NewTimerFor is NewTimer calling cb.Fire.
func (w *Wheel) NewTimerFor(cb Callback) *Timer {
	if cb == nil {
		panic("wheel: NewTimerFor with nil callback")
	}
	return &Timer{w: w, cb: cb}
}

// Reset arms t to fire once, d from now (rounded up to the next tick, so never
// early); d<=0 means the next tick. An armed timer is moved, not duplicated.
// Reset is O(1), allocation free and may be called from any goroutine,
// including from t's own callback to make it periodic. After Wheel.Stop it
// does nothing.
func (t *Timer) Reset(d time.Duration) {
	w := t.w
	if w == nil {
		panic("wheel: Reset on a Timer not created by Wheel.NewTimer")
	}
	if d > maxDelay {
		d = maxDelay
	}
	if d < 0 {
		d = 0
	}
	// Reading the clock before locking keeps the critical section short; a
	// delay in acquiring the lock only makes the timer later, never early.
	t.arm(w.ticksAt(time.Since(w.start) + d))
}

// ResetAt arms t to fire once at the first tick at or after at, or at the
// next tick if at has passed. A periodic timer that re-arms at its previous
// deadline plus the period, rather than at now plus the period, keeps its
// phase: how late one firing ran does not delay the next, so the mean period
// is the setting with no cumulative drift. Otherwise as Reset.
func (t *Timer) ResetAt(at time.Time) {
	w := t.w
	if w == nil {
		panic("wheel: ResetAt on a Timer not created by Wheel.NewTimer")
	}
	d := at.Sub(w.start)
	if d > maxDelay {
		d = maxDelay
	}
	t.arm(w.ticksAt(d))
}

// ticksAt is the tick of an offset from the wheel's start, rounded up so
// that a timer never fires early.
func (w *Wheel) ticksAt(d time.Duration) uint64 {
	if d < 0 {
		return 0
	}
	return uint64((d + w.tick - 1) / w.tick)
}

// arm links t for expiry tick e (raised to the next tick if e has passed).
func (t *Timer) arm(e uint64) {
	w := t.w
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return
	}
	if e <= w.cur {
		e = w.cur + 1
	}
	if t.expire == e {
		// Pushed out again within the same tick (an idle timer re-armed on
		// every read, say): it is already where it belongs.
		w.mu.Unlock()
		return
	}
	if t.expire != 0 {
		w.unlink(t)
	} else {
		w.count++
	}
	w.insert(t, e)
	if !w.running {
		w.startLocked()
	} else if e < w.wakeAt {
		// The goroutine sleeps past this expiry; wake it to re-plan.
		w.wakeAt = e
		w.nudge()
	}
	w.mu.Unlock()
}

// Stop disarms t in O(1) and reports whether it was armed. Once Stop returns,
// the callback will not be started for the disarmed expiry; it may still be
// running if the wheel had already taken it to fire, in which case Stop
// returns false. Stop is safe from any goroutine, including the callback.
func (t *Timer) Stop() bool {
	w := t.w
	if w == nil {
		return false
	}
	w.mu.Lock()
	if t.expire == 0 {
		w.mu.Unlock()
		return false
	}
	w.unlink(t)
	w.count--
	if w.count == 0 && w.wakeAt != 0 {
		// Let the idle goroutine exit now rather than at its next due tick,
		// so that goroutine leak checks see it gone within milliseconds.
		w.nudge()
	}
	w.mu.Unlock()
	return true
}

// Len returns the number of armed timers, including any the wheel is about to
// fire. Useful for tests and metrics.
func (w *Wheel) Len() int {
	w.mu.Lock()
	n := w.count
	w.mu.Unlock()
	return n
}

// Stop disarms every timer, permanently turns later Resets into no-ops, and
// waits for the wheel goroutine to exit. It exists for tests that own a
// private wheel. It must not be called from a callback (it would wait for
// itself) and panics on Default(), whose timers belong to the whole process.
func (w *Wheel) Stop() {
	if w.isDefault {
		panic("wheel: Stop on Default()")
	}
	w.mu.Lock()
	w.closed = true
	for i := range w.slots {
		for t := w.slots[i].head; t != nil; {
			next := t.next
			w.unlink(t)
			t = next
		}
	}
	for w.pending.head != nil {
		w.unlink(w.pending.head)
	}
	w.count = 0
	var done chan struct{}
	if w.running {
		done = w.done
		w.nudge()
	}
	w.mu.Unlock()
	if done != nil {
		<-done
	}
}

// nudge wakes the goroutine without blocking; a pending nudge is enough.
func (w *Wheel) nudge() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *Wheel) startLocked() {
	w.running = true
	w.wakeAt = 0
	w.done = make(chan struct{})
	go w.run(w.done)
}

// nowTick is the last tick boundary that has passed: a timer with expire <=
// nowTick has waited at least its full duration.
func (w *Wheel) nowTick() uint64 { return uint64(time.Since(w.start) / w.tick) }

func (w *Wheel) run(done chan struct{}) {
	clean := false
	defer func() {
		if !clean {
			// A callback called runtime.Goexit (t.FailNow in a test, say).
			// Hand over to a fresh goroutine so the wheel keeps ticking.
			w.mu.Lock()
			w.running = false
			if w.count > 0 && !w.closed {
				w.startLocked()
			}
			w.mu.Unlock()
		}
		close(done)
	}()

	w.mu.Lock()
	for {
		if now := w.nowTick(); now > w.cur {
			w.collect(now)
			w.firePending() // unlocks around each callback
			continue        // the callbacks took time; look again before sleeping
		}
		if w.count == 0 {
			w.running = false
			w.wakeAt = 0
			// Under the lock: once it is released a new goroutine may
			// already be using the sleeper.
			w.sleeper.Stop()
			w.mu.Unlock()
			clean = true
			return
		}
		next := w.nextDue()
		if next == ^uint64(0) { // cannot happen with count > 0; never sleep on garbage
			next = w.cur + 1
		}
		sleep := time.Duration(next)*w.tick - time.Since(w.start)
		if sleep <= 0 {
			continue
		}
		w.wakeAt = next
		w.mu.Unlock()
		w.sleeper.Reset(sleep)
		select {
		case <-w.sleeper.C:
		case <-w.wake:
		}
		w.mu.Lock()
		w.wakeAt = 0
	}
}

// collect moves every timer due by tick now into pending, visiting only the
// occupied slots for ticks cur+1..now (all slots if a full round passed).
func (w *Wheel) collect(now uint64) {
	span := now - w.cur
	if n := w.mask + 1; span > n {
		span = n
	}
	pos := w.cur + 1
	for span > 0 {
		k, ok := w.nextOccupied(pos, span)
		if !ok {
			break
		}
		w.collectSlot((pos+k)&w.mask, now)
		pos += k + 1
		span -= k + 1
	}
	w.cur = now
}

func (w *Wheel) collectSlot(s, now uint64) {
	sl := &w.slots[s]
	min := ^uint64(0)
	for t := sl.head; t != nil; {
		next := t.next
		if e := t.expire; e <= now {
			w.unlink(t)
			// expire stays: once collect has set cur to now, it says
			// pending.
			t.expire = e
			t.prev = w.pending.tail
			if w.pending.tail != nil {
				w.pending.tail.next = t
			} else {
				w.pending.head = t
			}
			w.pending.tail = t
		} else if t.expire < min {
			min = t.expire
		}
		t = next
	}
	if sl.head != nil {
		sl.min = min
	}
}

// firePending runs the collected callbacks one at a time, taking each timer
// off the list under the lock so that a concurrent Stop either wins (and the
// callback never starts) or sees the timer already disarmed.
func (w *Wheel) firePending() {
	for {
		t := w.pending.head
		if t == nil {
			return
		}
		w.unlink(t)
		w.count--
		cb := t.cb
		w.mu.Unlock()
		w.call(cb)
		w.mu.Lock()
	}
}

func (w *Wheel) call(cb Callback) {
	defer func() {
		if recover() != nil {
			w.panics.Add(1)
		}
	}()
	cb.Fire()
}

// nextDue returns the earliest tick at which some slot may hold a due timer.
// Walking occupied slots in tick order, the first whose lower bound equals
// its tick in the current round is the answer, since every later slot's timers
// are later and every skipped slot's are at least a round away.
func (w *Wheel) nextDue() uint64 {
	best := ^uint64(0)
	pos, span := w.cur+1, w.mask+1
	for span > 0 {
		k, ok := w.nextOccupied(pos, span)
		if !ok {
			break
		}
		tick := pos + k
		m := w.slots[tick&w.mask].min
		if m <= tick {
			return tick
		}
		if m < best {
			best = m
		}
		pos = tick + 1
		span -= k + 1
	}
	return best
}

// nextOccupied returns the smallest k < n such that the slot of tick from+k is
// non-empty.
func (w *Wheel) nextOccupied(from, n uint64) (uint64, bool) {
	for k := uint64(0); k < n; {
		idx := (from + k) & w.mask
		bit := idx & 63
		if x := w.occ[idx>>6] >> bit; x != 0 {
			k += uint64(bits.TrailingZeros64(x))
			return k, k < n
		}
		k += 64 - bit
	}
	return 0, false
}

func (w *Wheel) insert(t *Timer, e uint64) {
	s := e & w.mask
	sl := &w.slots[s]
	t.expire = e
	t.prev = nil
	t.next = sl.head
	if sl.head != nil {
		sl.head.prev = t
		if e < sl.min {
			sl.min = e
		}
	} else {
		w.occ[s>>6] |= 1 << (s & 63)
		sl.min = e
	}
	sl.head = t
}

func (w *Wheel) unlink(t *Timer) {
	if t.next != nil {
		t.next.prev = t.prev
	}
	if t.expire <= w.cur {
		if t.prev != nil {
			t.prev.next = t.next
		} else {
			w.pending.head = t.next
		}
		if w.pending.tail == t {
			w.pending.tail = t.prev
		}
	} else {
		s := t.expire & w.mask
		if t.prev != nil {
			t.prev.next = t.next
		} else {
			w.slots[s].head = t.next
			if t.next == nil {
				w.occ[s>>6] &^= 1 << (s & 63)
			}
		}
	}
	t.next, t.prev = nil, nil
	t.expire = 0
}
