// The report: medians per server and scenario, ratios to the baseline, the
// markdown tables and the machine.

package main

import (
	"fmt"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"
)

// agg holds the medians of one server in one scenario.
type agg struct {
	n, bad                                  int
	reqs, cpu, p50, p99, p999, allocs, ccpu float64
	reordered, errors                       float64
	goroutines, peakRSS, kibConn, idleCPU   float64
	goroutinesBase, otherCPU                float64
	workAtOnce, workMs, workMax             float64
	rssBefore, rssHeld, alive, opened, lost float64
	failures                                []string
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	m := len(s) / 2
	if len(s)%2 == 1 {
		return s[m]
	}
	return (s[m-1] + s[m]) / 2
}

func aggregate(results []*runResult, sc scenario, impl string) *agg {
	a := &agg{}
	var reqs, cpu, p50, p99, p999, allocs, ccpu, reo, errs, gor, peak, kib, icpu, rb, rh, alive, opened, lost, gb, oc []float64
	var wOnce, wMs, wMax []float64
	for _, r := range results {
		if r.Scenario != sc.Name || r.Impl != impl {
			continue
		}
		if r.bad() {
			a.bad++
			msg := r.Failed
			if msg == "" {
				msg = fmt.Sprintf("errors=%d lost=%d dial_errors=%d: %s", r.Load.Errors, r.Load.Lost, r.Load.DialErrors, r.Load.FirstError)
			}
			a.failures = append(a.failures, fmt.Sprintf("run %d: %s", r.Run, firstLines(msg, 2)))
		}
		if r.Failed != "" && r.Load.Mode == "" {
			continue
		}
		a.n++
		reqs = append(reqs, r.Load.ReqPerS)
		cpu = append(cpu, r.CPUusPerReq)
		p50 = append(p50, r.Load.P50us)
		p99 = append(p99, r.Load.P99us)
		p999 = append(p999, r.Load.P999us)
		allocs = append(allocs, r.AllocsPerReq)
		if r.WindowS > 0 {
			ccpu = append(ccpu, 100*r.ClientCPUs/r.WindowS)
		}
		reo = append(reo, float64(r.Load.Reordered))
		errs = append(errs, float64(r.Load.Errors))
		gor = append(gor, float64(r.Goroutines))
		gb = append(gb, float64(r.GoroutinesBase))
		oc = append(oc, r.OtherCPUPct)
		peak = append(peak, float64(r.PeakRSSKiB))
		kib = append(kib, r.KiBPerConn)
		icpu = append(icpu, r.IdleCPUPct)
		rb = append(rb, float64(r.RSSBeforeKiB))
		rh = append(rh, float64(r.RSSHeldKiB))
		alive = append(alive, float64(r.Load.Alive))
		opened = append(opened, float64(r.Load.Opened))
		lost = append(lost, float64(r.Load.Lost))
		if r.WorkMs > 0 {
			wOnce, wMs, wMax = append(wOnce, r.WorkAtOnce), append(wMs, r.WorkMs), append(wMax, float64(r.WorkMax))
		}
	}
	a.workAtOnce, a.workMs, a.workMax = median(wOnce), median(wMs), median(wMax)
	a.reqs, a.cpu, a.p50, a.p99, a.p999 = median(reqs), median(cpu), median(p50), median(p99), median(p999)
	a.allocs, a.ccpu, a.reordered, a.errors = median(allocs), median(ccpu), median(reo), median(errs)
	a.goroutines, a.peakRSS, a.kibConn, a.idleCPU = median(gor), median(peak), median(kib), median(icpu)
	a.goroutinesBase, a.otherCPU = median(gb), median(oc)
	a.rssBefore, a.rssHeld, a.alive, a.opened, a.lost = median(rb), median(rh), median(alive), median(opened), median(lost)
	return a
}

func fmtUs(us float64) string {
	switch {
	case us >= 1e6:
		return fmt.Sprintf("%.2f s", us/1e6)
	case us >= 1e4:
		return fmt.Sprintf("%.0f ms", us/1e3)
	case us >= 1e3:
		return fmt.Sprintf("%.1f ms", us/1e3)
	default:
		return fmt.Sprintf("%.0f µs", us)
	}
}

func fmtRate(x float64) string {
	switch {
	case x >= 1e6:
		return fmt.Sprintf("%.2fM", x/1e6)
	case x >= 1e3:
		return fmt.Sprintf("%.1fk", x/1e3)
	default:
		return fmt.Sprintf("%.0f", x)
	}
}

func ratio(x, base float64) string {
	if base == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", x/base)
}

func commas(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func mib(kib float64) string { return fmt.Sprintf("%.1f", kib/1024) }

func report(o *options, results []*runResult, notes []string, elapsed time.Duration) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	aggs := map[string]map[string]*agg{}
	for _, sc := range o.scenarios {
		aggs[sc.Name] = map[string]*agg{}
		for _, impl := range o.impls {
			aggs[sc.Name][impl] = aggregate(results, sc, impl)
		}
	}

	w("# Echo benchmark\n\n")
	w("%s, %s, %d CPUs (%s), %s. Command: `%s` (%s).\n\n",
		time.Now().UTC().Format("2006-01-02 15:04 UTC"), runtime.Version(), runtime.NumCPU(), cpuModel(), kernel(),
		strings.TrimSpace("go run ./cmd/compare "+strings.Join(os.Args[1:], " ")), elapsed)
	pin := "server pinned to CPU 0, load generator to CPU 1"
	if !o.pin {
		pin = "no CPU pinning"
	}
	w("Medians of %d run(s) per server and scenario, servers alternating between runs, a fresh server process per run; %s; "+
		"warm-up %s, measured window %s (idle: %s); task pools: %s. Ratios are to the %s.\n\n",
		o.runs, pin, o.warmup, o.measure, o.idleHold, poolsOf(o), baselines(o))
	for _, n := range notes {
		w("- note: %s\n", n)
	}
	if len(notes) > 0 {
		w("\n")
	}

	// Summary, shaped like the table in the README's Performance section:
	// one table per kind of server (TCP, WebSocket).
	w("## Summary\n\n")
	for _, ws := range []bool{false, true} {
		var scens []scenario
		for _, sc := range o.scenarios {
			if sc.WS == ws {
				scens = append(scens, sc)
			}
		}
		if len(scens) > 0 && len(implsOf(o, scens[0])) > 0 {
			summary(w, o, aggs, scens)
		}
	}
	flagged := false
	for _, m := range aggs {
		for _, a := range m {
			flagged = flagged || a.bad > 0
		}
	}
	if flagged {
		w("(!) = at least one run had errors, lost replies or failed; see the details.\n\n")
	}
	worst := 0.0
	for _, m := range aggs {
		for _, a := range m {
			worst = max(worst, a.otherCPU)
		}
	}
	if worst > 10 {
		w("**Warning:** other processes on this machine used up to %.0f%% of a CPU during measured windows "+
			"(median per cell); treat small differences as noise.\n\n", worst)
	}

	w("## Details\n\n")
	for _, sc := range o.scenarios {
		base := baseOf(o, sc)
		w("### %s\n\n", sc.Title)
		if sc.Idle {
			w("| server | KiB per conn | ratio | idle CPU %% | goroutines (base) | RSS before MiB | RSS held MiB | peak RSS MiB | alive / opened | other CPU %% | runs ok |\n")
			w("|---|---|---|---|---|---|---|---|---|---|---|\n")
			for _, impl := range implsOf(o, sc) {
				a := aggs[sc.Name][impl]
				if a.n == 0 {
					w("| `%s` | failed | | | | | | | | 0/%d |\n", impl, o.runs)
					continue
				}
				w("| `%s` | %.1f | %s | %.2f | %.0f (%.0f) | %s | %s | %s | %.0f / %.0f | %.0f | %d/%d |\n", impl, a.kibConn,
					ratio(a.kibConn, aggs[sc.Name][base].kibConn), a.idleCPU, a.goroutines, a.goroutinesBase, mib(a.rssBefore),
					mib(a.rssHeld), mib(a.peakRSS), a.alive, a.opened, a.otherCPU, a.n-a.bad, o.runs)
			}
		} else {
			w("| server | req/s | ratio | CPU µs/req | ratio | p50 | p99 | p99.9 | reordered | allocs/req | goroutines (base) | peak RSS MiB | loadgen CPU %% | other CPU %% | runs ok |\n")
			w("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
			for _, impl := range implsOf(o, sc) {
				a := aggs[sc.Name][impl]
				if why := sitsOut(sc, impl); why != "" {
					w("| `%s` | %s | | | | | | | | | | | | - |\n", impl, why)
					continue
				}
				if a.n == 0 {
					w("| `%s` | failed | | | | | | | | | | | | 0/%d |\n", impl, o.runs)
					continue
				}
				ba := aggs[sc.Name][base]
				w("| `%s` | %s | %s | %.2f | %s | %s | %s | %s | %.0f | %.1f | %.0f (%.0f) | %s | %.0f | %.0f | %d/%d |\n", impl,
					fmtRate(a.reqs), ratio(a.reqs, ba.reqs), a.cpu, ratio(a.cpu, ba.cpu), fmtUs(a.p50), fmtUs(a.p99),
					fmtUs(a.p999), a.reordered, a.allocs, a.goroutines, a.goroutinesBase, mib(a.peakRSS), a.ccpu, a.otherCPU, a.n-a.bad, o.runs)
			}
		}
		w("\n")
		for _, impl := range o.impls {
			for _, f := range aggs[sc.Name][impl].failures {
				w("- `%s` %s\n", impl, strings.ReplaceAll(f, "\n", " "))
			}
		}
	}
	w("How to read this: see benchmark/README.md. CPU µs/req = server utime+stime over the measured window / replies " +
		"received in it. allocs/req = runtime Mallocs delta / requests (whole server process). Goroutines are sampled at the " +
		"end of the window; \"base\" is the count before any connection (the echoserver's own main, stdin-reader and signal " +
		"goroutines, plus the framework's). KiB per conn = " +
		"(VmRSS with the idle connections - VmRSS before) / connections. loadgen CPU near 100%% means the client, not the server, " +
		"was the limit. other CPU = CPU used on the machine by anything but the server and the load generator during the " +
		"window (%% of one CPU): above ~10%% the numbers are disturbed.\n")
	return b.String()
}

// poolsOf describes the pool sizes of the pooled servers.
func poolsOf(o *options) string {
	ants := "gnet's default goroutine pool (256Ki workers, non-blocking)"
	if o.antsWorkers > 0 {
		ants = fmt.Sprintf("ants.NewPool(%d)", o.antsWorkers)
	}
	return fmt.Sprintf("built-in WithServerWorkerPool(%d), gost NewTaskPoolSimple(%d), gnet-ants %s",
		o.workers, o.gostWorkers, ants)
}

// baselines names the servers the ratios are to.
func baselines(o *options) string {
	var tcp, ws string
	for _, sc := range o.scenarios {
		if sc.WS {
			ws = baseOf(o, sc)
		} else {
			tcp = baseOf(o, sc)
		}
	}
	switch {
	case tcp != "" && ws != "":
		return fmt.Sprintf("`%s` server (TCP) and the `%s` server (WebSocket)", tcp, ws)
	case ws != "":
		return fmt.Sprintf("`%s` server", ws)
	}
	return fmt.Sprintf("`%s` server", tcp)
}

// summary writes one summary table: scens (all of one kind) by the servers
// of that kind.
func summary(w func(string, ...any), o *options, aggs map[string]map[string]*agg, scens []scenario) {
	impls := implsOf(o, scens[0])
	w("| scenario |")
	for _, impl := range impls {
		w(" `%s` |", impl)
	}
	w("\n|---|")
	for range impls {
		w("---|")
	}
	w("\n")
	row := func(label string, cell func(a, baseA *agg) string, sc scenario) {
		w("| %s |", label)
		for _, impl := range impls {
			a := aggs[sc.Name][impl]
			c := "-"
			if a.n > 0 {
				c = cell(a, aggs[sc.Name][baseOf(o, sc)])
				if a.bad > 0 {
					c += " (!)"
				}
			}
			w(" %s |", c)
		}
		w("\n")
	}
	for _, sc := range scens {
		if sc.Idle {
			row(sc.Title+": KiB per conn / idle CPU", func(a, _ *agg) string {
				return fmt.Sprintf("%.1f / %.1f%%", a.kibConn, a.idleCPU)
			}, sc)
			row("same: goroutines", func(a, _ *agg) string { return fmt.Sprintf("%.0f", a.goroutines) }, sc)
			continue
		}
		row(sc.Title+": req/s", func(a, ba *agg) string {
			if a == ba {
				return fmt.Sprintf("1.00 (%s)", fmtRate(a.reqs))
			}
			return ratio(a.reqs, ba.reqs)
		}, sc)
		row("same: server CPU µs per request", func(a, _ *agg) string { return fmt.Sprintf("%.2f", a.cpu) }, sc)
		row("same: p99 latency", func(a, _ *agg) string { return fmtUs(a.p99) }, sc)
		if sc.Inflight > 1 {
			row("same: reordered replies", func(a, _ *agg) string { return fmt.Sprintf("%.0f", a.reordered) }, sc)
		}
		row("same: heap allocations per request", func(a, _ *agg) string { return fmt.Sprintf("%.1f", a.allocs) }, sc)
		if strings.HasPrefix(sc.Work, "block=") {
			row("same: handlers at once, mean (max) / real handler length", func(a, _ *agg) string {
				if a.workMs == 0 {
					return "-"
				}
				return fmt.Sprintf("%.0f (%.0f) / %.2f ms", a.workAtOnce, a.workMax, a.workMs)
			}, sc)
		}
	}
	w("\n")
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "model name") {
			if i := strings.IndexByte(line, ':'); i >= 0 {
				return strings.TrimSpace(line[i+1:])
			}
		}
	}
	return "unknown CPU"
}

func kernel() string {
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return "linux"
	}
	return "Linux " + strings.TrimSpace(string(b))
}
