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
	o := parseOptions()

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

	notes := prepare(o, modDir, binDir)
	logf("servers: %s", strings.Join(o.impls, ", "))
	logf("scenarios: %d x %d runs, estimated %s", len(o.scenarios), o.runs, estimate(o).Round(time.Second))
	results := runAll(o, binDir)

	elapsed := time.Since(start).Round(time.Second)
	md := report(o, results, notes, elapsed)
	fmt.Println(md)
	writeResults(o, modDir, md, results, elapsed)
}

// prepare builds the servers, drops those not available, pins the
// processes if it can and raises the open-file limit; it returns the notes
// for the report.
func prepare(o *options, modDir, binDir string) []string {
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
	return notes
}

// runAll runs every scenario o.runs times, the servers in alternating
// order, each run in a fresh server process.
func runAll(o *options, binDir string) []*runResult {
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
				r := runOne(o, binDir, sc, impl, run)
				results = append(results, r)
				logf("%-13s %-12s run %d: %s", impl, sc.Name, run+1, oneLine(sc, r))
			}
		}
	}
	return results
}

// writeResults writes the markdown report to o.out and the raw numbers
// next to it as .json.
func writeResults(o *options, modDir, md string, results []*runResult, elapsed time.Duration) {
	if o.out == "" {
		return
	}
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
