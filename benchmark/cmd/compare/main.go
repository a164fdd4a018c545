// Command compare runs every echo server against the same load generator and
// prints a table of medians with ratios to the plain `net` server.
//
//	cd benchmark && go run ./cmd/compare            # full run, a few minutes
//	cd benchmark && go run ./cmd/compare -quick     # smoke run, about a minute
//	go run ./cmd/compare -impls net,gnet -scenarios c100x128x16
//
// The server is pinned to CPU 0 and the load generator to CPU 1 (taskset),
// each scenario runs -runs times with the order of the servers alternating,
// and each run starts a fresh server process. Results go to stdout and, as
// markdown, to results/latest.md (raw numbers in results/latest.json).
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

func main() {
	start := time.Now()
	var (
		implsFlag = flag.String("impls", strings.Join(allImpls, ","), "comma-separated servers to run")
		scenFlag  = flag.String("scenarios", "c100x1k,c100x128x16,c1000x1k,c10x64kx4,c4x8m,idle,c100x1k-unix,c10x16-block1ms,c100x16-cpu20us,ws-c100x1k,ws-c100x128x16", "comma-separated scenarios: c100x1k, c100x128x16, c1000x1k, c10x64kx4, c4x8m, idle, handlers that work c10x16-block1ms and c100x16-cpu20us, over a Unix socket c100x1k-unix, c100x128x16-unix (net, net-bufio and getty servers only), and over WebSocket ws-c100x1k, ws-c100x128x16 (the WebSocket servers only)")
		quick     = flag.Bool("quick", false, "smoke run, about a minute: 1 run, 0.25 s warm-up, 0.75 s windows, 2,000 idle conns held 1 s")
		o         options
	)
	flag.IntVar(&o.runs, "runs", 2, "runs per scenario and server (servers alternate between runs)")
	flag.DurationVar(&o.warmup, "warmup", time.Second, "warm-up before each measured window")
	flag.DurationVar(&o.measure, "measure", 3*time.Second, "measured window of the load scenarios")
	flag.DurationVar(&o.idleHold, "idle-hold", 5*time.Second, "how long the idle connections are held (measured window)")
	flag.IntVar(&o.idleConns, "idle-conns", 10000, "connections in the idle scenario")
	flag.IntVar(&o.workers, "workers", 100, "task pool size for the *-pool/*-gost servers")
	flag.BoolVar(&o.pin, "pin", true, "pin the server to CPU 0 and the load generator to CPU 1 with taskset")
	flag.BoolVar(&o.verbose, "v", false, "show the load generator's progress lines")
	flag.StringVar(&o.out, "out", "results/latest.md", "markdown report (raw numbers go next to it as .json); empty: none")
	flag.StringVar(&o.getty, "getty", "auto", `the getty servers: "auto" runs them if they compile, "on" fails if they do not`)
	flag.Parse()

	if *quick {
		setIfDefault("runs", func() { o.runs = 1 })
		setIfDefault("warmup", func() { o.warmup = 250 * time.Millisecond })
		setIfDefault("measure", func() { o.measure = 750 * time.Millisecond })
		setIfDefault("idle-hold", func() { o.idleHold = time.Second })
		setIfDefault("idle-conns", func() { o.idleConns = 2000 })
	}
	if o.runs < 1 || o.runs > 20 || o.measure <= 0 || o.measure > time.Minute || o.idleHold <= 0 ||
		o.idleHold > time.Minute || o.idleConns < 1 || o.idleConns > 100000 {
		fatalf("flag out of range (runs 1..20, measure and idle-hold in (0, 1m], idle-conns 1..100000)")
	}

	scens := map[string]scenario{
		"c100x1k":          {Name: "c100x1k", Title: "100 conns x 1 KiB x 1 in flight", Conns: 100, Inflight: 1, Size: 1024},
		"c100x128x16":      {Name: "c100x128x16", Title: "100 conns x 128 B x 16 in flight", Conns: 100, Inflight: 16, Size: 128},
		"c1000x1k":         {Name: "c1000x1k", Title: "1,000 conns x 1 KiB x 1 in flight", Conns: 1000, Inflight: 1, Size: 1024},
		"c10x64kx4":        {Name: "c10x64kx4", Title: "10 conns x 64 KiB x 4 in flight", Conns: 10, Inflight: 4, Size: 64 << 10},
		"c4x8m":            {Name: "c4x8m", Title: "4 conns x 8 MiB x 1 in flight", Conns: 4, Inflight: 1, Size: 8 << 20},
		"c100x1k-unix":     {Name: "c100x1k-unix", Title: "100 conns x 1 KiB x 1 in flight, Unix socket", Conns: 100, Inflight: 1, Size: 1024, Unix: true},
		"c100x128x16-unix": {Name: "c100x128x16-unix", Title: "100 conns x 128 B x 16 in flight, Unix socket", Conns: 100, Inflight: 16, Size: 128, Unix: true},
		"ws-c100x1k":       {Name: "ws-c100x1k", Title: "WebSocket: 100 conns x 1 KiB x 1 in flight", Conns: 100, Inflight: 1, Size: 1024, WS: true, DialSerial: true},
		"ws-c100x128x16":   {Name: "ws-c100x128x16", Title: "WebSocket: 100 conns x 128 B x 16 in flight", Conns: 100, Inflight: 16, Size: 128, WS: true, DialSerial: true},
		"idle":             {Name: "idle", Conns: o.idleConns, Size: 64, Idle: true},
		// Handlers that do work, the case a pool exists for.
		"c10x16-block1ms": {Name: "c10x16-block1ms", Title: "10 conns x 128 B x 16 in flight, handler blocks 1 ms", Conns: 10, Inflight: 16, Size: 128, Work: "block=1ms"},
		"c100x16-cpu20us": {Name: "c100x16-cpu20us", Title: "100 conns x 128 B x 16 in flight, handler computes 20 us", Conns: 100, Inflight: 16, Size: 128, Work: "cpu=20us"},
	}
	scens["idle"] = scenario{Name: "idle", Title: fmt.Sprintf("%s idle conns held %s", commas(o.idleConns), o.idleHold),
		Conns: o.idleConns, Size: 64, Idle: true}
	for _, n := range splitList(*scenFlag) {
		s, ok := scens[n]
		if !ok {
			fatalf("unknown scenario %q", n)
		}
		o.scenarios = append(o.scenarios, s)
	}
	o.impls = splitList(*implsFlag)
	if len(o.impls) == 0 || len(o.scenarios) == 0 {
		fatalf("nothing to run")
	}

	modDir, err := moduleDir()
	if err != nil {
		fatalf("%v", err)
	}
	binDir, err := os.MkdirTemp("", "getty-bench-")
	if err != nil {
		fatalf("%v", err)
	}
	tmpDir = binDir
	defer os.RemoveAll(binDir)

	var notes []string
	available, buildNote := build(modDir, binDir, o.getty, o.impls)
	if buildNote != "" {
		notes = append(notes, buildNote)
	}
	var impls []string
	for _, i := range o.impls {
		if available[i] {
			impls = append(impls, i)
		} else {
			notes = append(notes, fmt.Sprintf("server %q is not available in this build: skipped", i))
			logf("server %q is not available in this build: skipped", i)
		}
	}
	o.impls = impls
	if len(o.impls) == 0 {
		fatalf("no server to run")
	}

	if o.pin {
		if _, err := exec.LookPath("taskset"); err != nil || runtime.NumCPU() < 2 {
			o.pin = false
			notes = append(notes, "taskset or a second CPU is missing: processes are not pinned")
		}
	}
	if !o.pin {
		notes = append(notes, "server and load generator were NOT pinned to separate CPUs")
	}
	if n, err := raiseNoFile(); err != nil {
		notes = append(notes, fmt.Sprintf("could not raise RLIMIT_NOFILE (%v); it is %d", err, n))
	} else if need := uint64(o.idleConns) + 100; n < need {
		notes = append(notes, fmt.Sprintf("RLIMIT_NOFILE is %d, below the %d the idle scenario needs", n, need))
	}

	logf("servers: %s", strings.Join(o.impls, ", "))
	logf("scenarios: %d x %d runs, estimated %s", len(o.scenarios), o.runs, estimate(&o).Round(time.Second))

	var results []*runResult
	for _, sc := range o.scenarios {
		for run := 0; run < o.runs; run++ {
			order := append([]string(nil), o.impls...)
			if run%2 == 1 {
				for i, j := 0, len(order)-1; i < j; i, j = i+1, j-1 {
					order[i], order[j] = order[j], order[i]
				}
			}
			for _, impl := range order {
				if !runs(sc, impl) {
					continue
				}
				r := runOne(&o, binDir, sc, impl, run)
				results = append(results, r)
				logf("%-13s %-12s run %d: %s", impl, sc.Name, run+1, oneLine(sc, r))
			}
		}
	}

	elapsed := time.Since(start).Round(time.Second)
	md := report(&o, results, notes, elapsed)
	fmt.Println(md)
	if o.out != "" {
		out := o.out
		if !filepath.IsAbs(out) {
			out = filepath.Join(modDir, out)
		}
		if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
			fatalf("%v", err)
		}
		if err := os.WriteFile(out, []byte(md), 0o644); err != nil {
			fatalf("%v", err)
		}
		raw, _ := json.MarshalIndent(map[string]any{"scenarios": o.scenarios, "impls": o.impls, "runs": results}, "", "  ")
		jsonOut := strings.TrimSuffix(out, filepath.Ext(out)) + ".json"
		if err := os.WriteFile(jsonOut, raw, 0o644); err != nil {
			fatalf("%v", err)
		}
		logf("wrote %s and %s (%s in all)", out, jsonOut, elapsed)
	}
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "compare: "+format+"\n", args...)
}

// tmpDir is removed by fatalf too (os.Exit skips deferred calls).
var tmpDir string

func fatalf(format string, args ...any) {
	logf(format, args...)
	if tmpDir != "" {
		_ = os.RemoveAll(tmpDir)
	}
	os.Exit(1)
}
