package main

import (
	"fmt"
	"strings"
	"sync/atomic"
	"time"
)

// handlerWork is what every server does per frame before echoing it, set by
// -work: nothing (the echo scenarios), "block=D" (the handler waits D, as
// one that calls another service) or "cpu=D" (it computes for D). Each
// server runs it where its handler runs: inline on the read goroutine or
// event loop, or on its task pool.
var handlerWork func()

// parseWork sets handlerWork from the -work flag.
func parseWork(spec string) error {
	if spec == "" {
		return nil
	}
	kind, val, ok := strings.Cut(spec, "=")
	d, err := time.ParseDuration(val)
	if !ok || err != nil || d <= 0 {
		return fmt.Errorf("-work %q: want block=DURATION or cpu=DURATION", spec)
	}
	switch kind {
	case "block":
		handlerWork = func() { blockFor(d) }
	case "cpu":
		handlerWork = func() { burn(d) }
	default:
		return fmt.Errorf("-work %q: want block=DURATION or cpu=DURATION", spec)
	}
	return nil
}

// work runs the handler's work, if any.
func work() {
	if handlerWork != nil {
		handlerWork()
	}
}

var burnSink uint64

// burn keeps the CPU busy for about d of wall time (the server has a CPU of
// its own in the benchmark, so wall time is CPU time).
func burn(d time.Duration) {
	x := burnSink
	for start := time.Now(); time.Since(start) < d; {
		for i := 0; i < 64; i++ {
			x = x*6364136223846793005 + 1442695040888963407
		}
	}
	burnSink = x
}

// Handler accounting for -work block (in the stats line): how many handlers
// ran, their summed wall time (so the mean number running at once over a
// window is the delta of workNs / the window, Little's law on measured
// durations) and the most that ever ran at once.
var workN, workNs, workCur, workMax atomic.Int64

// blockFor sleeps d and accounts for it.
func blockFor(d time.Duration) {
	if c := workCur.Add(1); c > workMax.Load() {
		workMax.Store(c) // racy max: good enough for a gauge
	}
	start := time.Now()
	time.Sleep(d)
	workNs.Add(int64(time.Since(start)))
	workN.Add(1)
	workCur.Add(-1)
}
