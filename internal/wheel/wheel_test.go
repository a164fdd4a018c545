package wheel

import (
	"math"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// lateSlack bounds how late a timer may fire in tests. The design target is
// about one tick, but a loaded 2-core CI machine running -race can stall a
// goroutine for tens of milliseconds, and these tests must not be flaky.
const lateSlack = 200 * time.Millisecond

// waitTimeout bounds waits for events that must happen; it only matters when
// a test is about to fail.
const waitTimeout = 10 * time.Second

func recv[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitTimeout):
		t.Fatal("timed out waiting for a timer")
		panic("unreachable")
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func (w *Wheel) isRunning() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.running
}

// Where a timer is linked: disarmed, in pending, or in slot where-slotBase.
const (
	notArmed  int32 = 0
	inPending int32 = 1
	slotBase  int32 = 2
)

// where tells where t is linked, as the wheel reads it from expire (see
// Timer); under w.mu.
func (t *Timer) where() int32 {
	switch {
	case t.expire == 0:
		return notArmed
	case t.expire <= t.w.cur:
		return inPending
	}
	return slotBase + int32(t.expire&t.w.mask)
}

// checkInvariants walks the whole structure: links, slot membership, the
// occupancy bitmap, slot lower bounds and the armed count must all agree.
func checkInvariants(t *testing.T, w *Wheel) {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for i := range w.slots {
		sl := &w.slots[i]
		occ := w.occ[i>>6]&(1<<(uint(i)&63)) != 0
		require.Equal(t, sl.head != nil, occ, "bitmap for slot %d", i)
		var prev *Timer
		for tm := sl.head; tm != nil; tm = tm.next {
			require.Same(t, prev, tm.prev)
			require.Equal(t, slotBase+int32(i), tm.where())
			require.Equal(t, uint64(i), tm.expire&w.mask)
			require.Greater(t, tm.expire, w.cur)
			require.LessOrEqual(t, sl.min, tm.expire)
			prev = tm
			n++
		}
	}
	var prev *Timer
	for tm := w.pending.head; tm != nil; tm = tm.next {
		require.Same(t, prev, tm.prev)
		require.Equal(t, inPending, tm.where())
		prev = tm
		n++
	}
	require.Same(t, prev, w.pending.tail)
	require.Equal(t, n, w.count)
}

func TestFiresAfterDuration(t *testing.T) {
	w := New(5 * time.Millisecond)
	defer w.Stop()
	for _, d := range []time.Duration{-time.Second, 0, time.Millisecond, 7 * time.Millisecond, 30 * time.Millisecond, 80 * time.Millisecond} {
		ch := make(chan time.Duration, 1)
		start := time.Now()
		tm := w.NewTimer(func() { ch <- time.Since(start) })
		tm.Reset(d)
		got := recv(t, ch)
		assert.GreaterOrEqual(t, got, d, "d=%v fired early", d)
		assert.Less(t, got, max(d, 0)+lateSlack, "d=%v fired late", d)
	}
	assert.Equal(t, 0, w.Len())
}

func TestNonPositiveFiresNextTick(t *testing.T) {
	w := New(time.Hour) // a tick that never passes during the test...
	defer w.Stop()
	tm := w.NewTimer(func() {})
	tm.Reset(0)
	w.mu.Lock()
	e, now := tm.expire, w.nowTick()
	w.mu.Unlock()
	assert.Equal(t, now+1, e, "d<=0 must mean the next tick, not the current one")
	assert.True(t, tm.Stop())
}

func TestStopPreventsFiring(t *testing.T) {
	w := New(time.Millisecond)
	defer w.Stop()
	var fired atomic.Bool
	tm := w.NewTimer(func() { fired.Store(true) })
	tm.Reset(10 * time.Millisecond)
	assert.Equal(t, 1, w.Len())
	assert.True(t, tm.Stop())
	assert.False(t, tm.Stop(), "second Stop")
	assert.Equal(t, 0, w.Len())

	// Timers fire in expiry order on one goroutine, so once a later sentinel
	// has fired the stopped one would have fired too: no sleeping on a guess.
	tm.Reset(10 * time.Millisecond)
	tm.Stop()
	done := make(chan struct{}, 1)
	w.NewTimer(func() { done <- struct{}{} }).Reset(30 * time.Millisecond)
	recv(t, done)
	assert.False(t, fired.Load())
}

func TestZeroAndNilMisuse(t *testing.T) {
	var z Timer
	assert.False(t, z.Stop())
	assert.Panics(t, func() { z.Reset(time.Second) })
	w := New(time.Millisecond)
	defer w.Stop()
	assert.Panics(t, func() { w.NewTimer(nil) })
	assert.Panics(t, func() { Default().Stop() })
}

func TestResetFromCallbackPeriodic(t *testing.T) {
	w := New(time.Millisecond)
	defer w.Stop()
	const period, rounds = 5 * time.Millisecond, 10
	var (
		tm    *Timer
		n     int
		times []time.Time
		done  = make(chan struct{})
	)
	tm = w.NewTimer(func() {
		times = append(times, time.Now())
		if n++; n < rounds {
			tm.Reset(period)
		} else {
			close(done)
		}
	})
	start := time.Now()
	tm.Reset(period)
	recv(t, done)
	require.Len(t, times, rounds)
	prev := start
	for _, ts := range times {
		assert.GreaterOrEqual(t, ts.Sub(prev), period)
		prev = ts
	}
	assert.Equal(t, 0, w.Len())
}

func TestResetRearmsArmedTimer(t *testing.T) {
	w := New(time.Millisecond)
	defer w.Stop()

	// Pulling an armed timer in: fires once, at the new time.
	var n atomic.Int32
	ch := make(chan struct{}, 10)
	tm := w.NewTimer(func() { n.Add(1); ch <- struct{}{} })
	tm.Reset(time.Hour)
	tm.Reset(5 * time.Millisecond)
	assert.Equal(t, 1, w.Len())
	recv(t, ch)

	// Pushing an armed timer out: does not fire at the old time.
	tm.Reset(5 * time.Millisecond)
	tm.Reset(time.Hour)
	sentinel := make(chan struct{}, 1)
	w.NewTimer(func() { sentinel <- struct{}{} }).Reset(20 * time.Millisecond)
	recv(t, sentinel)
	assert.Equal(t, int32(1), n.Load())
	assert.Equal(t, 1, w.Len())
	checkInvariants(t, w)
	assert.True(t, tm.Stop())
}

func TestGoroutineExitsWhenEmptyAndRestarts(t *testing.T) {
	w := New(time.Millisecond)
	defer w.Stop()
	assert.False(t, w.isRunning(), "no goroutine before the first Reset")

	ch := make(chan struct{}, 1)
	tm := w.NewTimer(func() { ch <- struct{}{} })
	for range 3 {
		tm.Reset(time.Millisecond)
		recv(t, ch)
		waitFor(t, "goroutine exit after the last timer fired", func() bool { return !w.isRunning() })
		goleak.VerifyNone(t)
	}

	// A goroutine sleeping on a far timer leaves as soon as that timer is
	// stopped, not when it would have been due.
	tm.Reset(time.Hour)
	assert.True(t, w.isRunning())
	start := time.Now()
	tm.Stop()
	waitFor(t, "goroutine exit after Stop", func() bool { return !w.isRunning() })
	t.Logf("goroutine exited %v after Stop", time.Since(start))
	goleak.VerifyNone(t)
}

func TestPanicAndGoexitDoNotKillWheel(t *testing.T) {
	w := New(time.Millisecond)
	defer w.Stop()
	ok := make(chan struct{}, 1)
	w.NewTimer(func() { panic("boom") }).Reset(time.Millisecond)
	w.NewTimer(runtime.Goexit).Reset(2 * time.Millisecond)
	w.NewTimer(func() { ok <- struct{}{} }).Reset(10 * time.Millisecond)
	recv(t, ok)
	assert.Equal(t, uint64(1), w.panics.Load())

	// And it keeps working afterwards.
	w.NewTimer(func() { ok <- struct{}{} }).Reset(time.Millisecond)
	recv(t, ok)
}

func TestManyTimersFireExactlyOnce(t *testing.T) {
	w := New(time.Millisecond)
	defer w.Stop()
	const n = 10000
	counts := make([]atomic.Int32, n)
	var wg sync.WaitGroup
	wg.Add(n)
	for i := range n {
		tm := w.NewTimer(func() { counts[i].Add(1); wg.Done() })
		tm.Reset(time.Duration(rand.IntN(50)) * time.Millisecond)
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	recv(t, done)
	// Any double firing would have happened by the time a later timer fires.
	sentinel := make(chan struct{}, 1)
	w.NewTimer(func() { sentinel <- struct{}{} }).Reset(10 * time.Millisecond)
	recv(t, sentinel)
	for i := range counts {
		require.Equal(t, int32(1), counts[i].Load(), "timer %d", i)
	}
	assert.Equal(t, 0, w.Len())
	checkInvariants(t, w)
}

func TestConcurrentResetStop(t *testing.T) {
	w := New(time.Millisecond)
	defer w.Stop()
	const timers, workers, ops = 64, 16, 2000
	var fired atomic.Int64
	tms := make([]*Timer, timers)
	for i := range tms {
		tms[i] = w.NewTimer(func() {
			fired.Add(1)
			if rand.IntN(4) == 0 {
				tms[i].Reset(time.Duration(rand.IntN(3)) * time.Millisecond) // re-arm from the callback
			}
			if rand.IntN(8) == 0 {
				tms[(i+1)%timers].Stop() // and disarm a neighbour from it
			}
		})
	}
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Run until the wheel has really been firing alongside us, however
			// fast or slow the machine is.
			for i := 0; i < ops || fired.Load() < 500; i++ {
				tm := tms[rand.IntN(timers)]
				switch rand.IntN(3) {
				case 0:
					tm.Stop()
				case 1:
					tm.Reset(time.Duration(rand.IntN(3)) * time.Millisecond)
				default:
					tm.Reset(time.Duration(rand.IntN(10)) * time.Second)
				}
				if rand.IntN(500) == 0 {
					_ = w.Len()
				}
				if i%64 == 0 {
					runtime.Gosched()
				}
			}
		}()
	}
	wg.Wait()
	checkInvariants(t, w)
	for _, tm := range tms {
		tm.Stop()
	}
	// A callback that was already running may have re-armed its timer.
	waitFor(t, "all timers stopped", func() bool {
		for _, tm := range tms {
			tm.Stop()
		}
		return w.Len() == 0
	})
	checkInvariants(t, w)
	waitFor(t, "goroutine exit", func() bool { return !w.isRunning() })
	t.Logf("%d callbacks ran", fired.Load())
}

// TestStopResultAccounting checks the contract of Stop's result: every arming
// ends either in exactly one callback or in exactly one Stop that returned
// true, never both and never neither.
func TestStopResultAccounting(t *testing.T) {
	w := New(time.Millisecond)
	defer w.Stop()
	const timers, rounds = 32, 100
	var wg sync.WaitGroup
	for range timers {
		var fired atomic.Int64
		tm := w.NewTimer(func() { fired.Add(1) })
		wg.Add(1)
		go func() {
			defer wg.Done()
			var stopped int64
			for i := range rounds {
				tm.Reset(time.Duration(rand.IntN(3)) * time.Millisecond)
				if i%2 == 0 {
					time.Sleep(time.Duration(rand.IntN(3000)) * time.Microsecond)
				}
				if tm.Stop() {
					stopped++
				}
			}
			// A callback that lost the race with Stop may still be running;
			// it must finish with the total exact.
			// (waitFor cannot be used: FailNow is for the test goroutine only.)
			for deadline := time.Now().Add(waitTimeout); fired.Load()+stopped < rounds && time.Now().Before(deadline); {
				time.Sleep(time.Millisecond)
			}
			time.Sleep(5 * time.Millisecond)
			assert.Equal(t, int64(rounds), fired.Load()+stopped)
		}()
	}
	wg.Wait()
	assert.Equal(t, 0, w.Len())
}

func TestLongDurationManyRounds(t *testing.T) {
	// 64 slots of 1ms: a revolution is 64ms, so 300ms is almost 5 rounds.
	w := newWheel(time.Millisecond, 64)
	defer w.Stop()
	type ev struct {
		i  int
		at time.Duration
	}
	ch := make(chan ev, 10)
	ds := []time.Duration{300 * time.Millisecond, 65 * time.Millisecond, 130 * time.Millisecond, 10 * time.Millisecond, 200 * time.Millisecond}
	start := time.Now()
	for i, d := range ds {
		w.NewTimer(func() { ch <- ev{i, time.Since(start)} }).Reset(d)
	}
	var order []int
	for range ds {
		e := recv(t, ch)
		assert.GreaterOrEqual(t, e.at, ds[e.i], "timer %d early", e.i)
		assert.Less(t, e.at, ds[e.i]+lateSlack, "timer %d late", e.i)
		order = append(order, e.i)
	}
	assert.Equal(t, []int{3, 1, 2, 4, 0}, order)
}

func TestHoursAndHugeDurations(t *testing.T) {
	w := New(10 * time.Millisecond)
	defer w.Stop()
	var fired atomic.Bool
	hour := w.NewTimer(func() { fired.Store(true) })
	huge := w.NewTimer(func() { fired.Store(true) })
	before := w.nowTick()
	hour.Reset(3 * time.Hour)
	after := w.nowTick()
	huge.Reset(math.MaxInt64)
	checkInvariants(t, w)
	w.mu.Lock()
	const hourTicks = 3 * 3600 * 100
	assert.GreaterOrEqual(t, hour.expire, before+hourTicks)
	assert.LessOrEqual(t, hour.expire, after+hourTicks+1)
	assert.Greater(t, huge.expire, hour.expire)
	next := w.nextDue()
	w.mu.Unlock()
	assert.Equal(t, hour.expire, next, "the goroutine must sleep until the 3h timer, not tick")

	// A near timer still fires while the far ones sit in their slots.
	ch := make(chan struct{}, 1)
	w.NewTimer(func() { ch <- struct{}{} }).Reset(time.Millisecond)
	recv(t, ch)
	assert.False(t, fired.Load())
	assert.Equal(t, 2, w.Len())
	assert.True(t, hour.Stop())
	assert.True(t, huge.Stop())
}

func TestWheelStop(t *testing.T) {
	w := New(time.Millisecond)
	var fired atomic.Bool
	tms := make([]*Timer, 100)
	for i := range tms {
		tms[i] = w.NewTimer(func() { fired.Store(true) })
		tms[i].Reset(time.Duration(i+5) * time.Millisecond)
	}
	w.Stop()
	assert.False(t, w.isRunning())
	assert.Equal(t, 0, w.Len())
	assert.False(t, fired.Load())
	tms[0].Reset(time.Millisecond)
	assert.Equal(t, 0, w.Len(), "Reset after Wheel.Stop is a no-op")
	assert.False(t, tms[1].Stop())
	checkInvariants(t, w)
	goleak.VerifyNone(t)
}

func TestDefault(t *testing.T) {
	w := Default()
	require.Same(t, w, Default())
	assert.Equal(t, 10*time.Millisecond, w.tick)
	ch := make(chan struct{}, 1)
	w.NewTimer(func() { ch <- struct{}{} }).Reset(time.Millisecond)
	recv(t, ch)
	// TestMain's goleak check covers the Default goroutine going away.
}

func TestTickClamp(t *testing.T) {
	assert.Equal(t, defaultTick, New(0).tick)
	assert.Equal(t, defaultTick, New(-time.Second).tick)
	assert.Equal(t, minTick, New(time.Nanosecond).tick)
}

func TestZeroAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	w := New(time.Millisecond)
	defer w.Stop()
	tm := w.NewTimer(func() {})
	other := w.NewTimer(func() {})
	other.Reset(time.Hour) // keep the goroutine alive so its start is not counted
	assert.Zero(t, testing.AllocsPerRun(1000, func() {
		tm.Reset(time.Second)
		tm.Reset(2 * time.Second)
		tm.Stop()
	}))
	// Steady-state firing: a self re-arming timer.
	var n atomic.Int64
	var p *Timer
	p = w.NewTimer(func() { n.Add(1); p.Reset(0) })
	p.Reset(0)
	waitFor(t, "periodic timer warm-up", func() bool { return n.Load() > 5 })
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	before, n0 := ms.Mallocs, n.Load()
	waitFor(t, "periodic timer", func() bool { return n.Load() > n0+20 })
	runtime.ReadMemStats(&ms)
	// Other goroutines (the test framework) may allocate a little; firing
	// 20 times must not account for one allocation each.
	assert.Less(t, ms.Mallocs-before, uint64(20))
	p.Stop()
	other.Stop()
}

// ResetAt rounds its deadline up to a tick and never arms in the past.
func TestResetAtTicks(t *testing.T) {
	w := New(time.Hour) // never fires during the test
	defer w.Stop()
	tm := w.NewTimer(func() {})
	tm.ResetAt(w.start.Add(5*time.Hour + time.Nanosecond))
	assert.Equal(t, uint64(6), tm.expire)
	tm.ResetAt(w.start.Add(7 * time.Hour))
	assert.Equal(t, uint64(7), tm.expire)
	tm.ResetAt(w.start.Add(-time.Hour))
	assert.Equal(t, w.cur+1, tm.expire, "a deadline in the past fires at the next tick")
	checkInvariants(t, w)
}

// A periodic timer that re-arms at its last deadline plus the period fires
// on exact multiples of the period, however late each callback runs: its
// expiry ticks are evenly spaced, so there is no cumulative drift.
func TestResetAtKeepsPhase(t *testing.T) {
	w := New(time.Millisecond)
	defer w.Stop()
	const period, n = 3 * time.Millisecond, 20
	got := make(chan uint64, n)
	var tm *Timer
	next := w.start.Add(period)
	tm = w.NewTimer(func() {
		got <- tm.expire
		time.Sleep(2 * time.Millisecond) // late: lands in the next period
		if len(got) < n {
			next = next.Add(period)
			if late := time.Since(next); late >= 0 { // skip periods missed, as OnCron does
				next = next.Add(late/period*period + period)
			}
			tm.ResetAt(next)
		}
	})
	tm.ResetAt(next)
	first := recv(t, got)
	for i := 1; i < n; i++ {
		e := recv(t, got)
		assert.Zero(t, (e-first)%3, "expiry tick %d is off the period's grid", e)
	}
}
