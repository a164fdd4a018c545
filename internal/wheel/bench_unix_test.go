//go:build unix

package wheel

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// sessionWindow is the wall time each session benchmark is measured over:
// long enough for 1s-period sessions to fire twice each, short enough that a
// run (setup included) stays under ~5s.
const sessionWindow = 2 * time.Second

type benchSession struct {
	fires   atomic.Int64
	period  time.Duration
	stopped *atomic.Bool
	wt      *Timer
	at      *time.Timer
	next    time.Time // wheel-at: the deadline armed
}

// The callbacks mimic OnCron: note the tick, re-arm for the next period.
func (s *benchSession) onWheel() {
	s.fires.Add(1)
	if !s.stopped.Load() {
		s.wt.Reset(s.period)
	}
}

// onWheelAt re-arms from the deadline, not from now, as OnCron does.
func (s *benchSession) onWheelAt() {
	s.fires.Add(1)
	if !s.stopped.Load() {
		s.next = s.next.Add(s.period)
		s.wt.ResetAt(s.next)
	}
}

func (s *benchSession) onAfterFunc() {
	s.fires.Add(1)
	if !s.stopped.Load() {
		s.at.Reset(s.period)
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		panic(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkSessions compares the process CPU spent keeping n periodic
// sessions ticking with the wheel against one time.AfterFunc per session.
// The figure that matters is cpu-ms/s (CPU milliseconds per wall second, all
// threads, GC included); ns/op is meaningless here and is zeroed.
//
//	go test -run x -bench Sessions -benchtime 1x ./internal/wheel/
func BenchmarkSessions(b *testing.B) {
	// What the idle test process costs by itself, to subtract.
	b.Run("n=0/baseline", func(b *testing.B) { benchSessions(b, "wheel", 0, time.Second) })
	for _, n := range []int{10_000, 100_000} {
		for _, period := range []time.Duration{time.Second, time.Minute} {
			for _, impl := range []string{"wheel", "wheel-at", "afterfunc"} {
				b.Run(fmt.Sprintf("n=%dk/period=%v/%s", n/1000, period, impl), func(b *testing.B) {
					benchSessions(b, impl, n, period)
				})
			}
		}
	}
}

// benchSessions measures impl: "wheel" (Reset from now), "wheel-at"
// (ResetAt from the last deadline) or "afterfunc".
func benchSessions(b *testing.B, impl string, n int, period time.Duration) {
	useWheel := impl != "afterfunc"
	var stopped atomic.Bool
	w := New(defaultTick)
	sessions := make([]*benchSession, n)
	for i := range sessions {
		s := &benchSession{period: period, stopped: &stopped}
		// Sessions connect at random moments, so their phases are spread.
		phase := time.Duration(rand.Int64N(int64(period))) + 1
		switch impl {
		case "wheel":
			s.wt = w.NewTimer(s.onWheel)
			s.wt.Reset(phase)
		case "wheel-at":
			s.wt = w.NewTimer(s.onWheelAt)
			s.next = time.Now().Add(phase)
			s.wt.ResetAt(s.next)
		default:
			s.at = time.AfterFunc(phase, s.onAfterFunc)
		}
		sessions[i] = s
	}
	defer func() {
		stopped.Store(true)
		for _, s := range sessions {
			if useWheel {
				s.wt.Stop()
			} else {
				s.at.Stop()
			}
		}
		w.Stop()
	}()
	runtime.GC()
	time.Sleep(100 * time.Millisecond) // let setup garbage and GC settle

	count := func() (sum int64) {
		for _, s := range sessions {
			sum += s.fires.Load()
		}
		return sum
	}
	fires0, cpu0, t0 := count(), cpuTime(), time.Now()
	for range b.N {
		time.Sleep(sessionWindow)
	}
	cpu, wall, fires := cpuTime()-cpu0, time.Since(t0), count()-fires0

	b.ReportMetric(0, "ns/op")
	b.ReportMetric(float64(cpu)/float64(time.Millisecond)/wall.Seconds(), "cpu-ms/s")
	b.ReportMetric(float64(fires)/wall.Seconds(), "fires/s")
	if fires > 0 {
		b.ReportMetric(float64(cpu)/float64(fires), "cpu-ns/fire")
	}
}
