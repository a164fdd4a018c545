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
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

var allImpls = []string{"net", "net-bufio", "upstream", "upstream-pool", "gnet", "gnet-ants", "netpoll", "getty", "getty-pool", "getty-pool-unordered", "getty-gost", "getty-nogw", "getty-pool-nogw",
	"gorilla", "coder", "upstream-ws", "getty-ws", "getty-ws-pool", "getty-ws-gost"}

// wsImpls are the WebSocket servers (loadgen -ws). They run the WebSocket
// scenarios only, and the TCP servers the others; each kind has its own
// tables, with its own baseline (net, gorilla).
var wsImpls = map[string]bool{"gorilla": true, "coder": true, "upstream-ws": true, "getty-ws": true, "getty-ws-pool": true, "getty-ws-gost": true}

type scenario struct {
	Name     string `json:"name"`
	Title    string `json:"title"`
	Conns    int    `json:"conns"`
	Inflight int    `json:"inflight"`
	Size     int    `json:"size"`
	Idle     bool   `json:"idle"`
	Unix     bool   `json:"unix,omitempty"` // over a Unix socket instead of TCP loopback
	WS       bool   `json:"ws,omitempty"`   // WebSocket: each frame one binary message (loadgen -ws)
	// DialSerial dials the connections one at a time (loadgen
	// -dial-parallel 1), before the measured window: upstream's WebSocket
	// server panics with "timer queue is full" when its sessions start
	// in a burst, each on its own HTTP goroutine.
	DialSerial bool   `json:"dial_serial,omitempty"`
	Work       string `json:"work,omitempty"` // the server's -work: what the handler does per frame
}

// unixImpls are the servers that can listen on a Unix socket; the others
// sit out the Unix-socket scenarios.
var unixImpls = map[string]bool{"net": true, "net-bufio": true, "getty": true, "getty-pool": true, "getty-pool-unordered": true, "getty-gost": true}

// idleOnlyImpls only take part in the idle scenario: the getty servers built
// with -tags getty_nogostwheel, which differ from getty and getty-pool only in
// the idle CPU of gost's default timer wheel.
var idleOnlyImpls = map[string]bool{"getty-nogw": true, "getty-pool-nogw": true}

// sitsOut says why impl does not run in sc, or "" when it does.
func sitsOut(sc scenario, impl string) string {
	switch {
	case sc.Unix && !unixImpls[impl]:
		return "no Unix socket server in the harness"
	case idleOnlyImpls[impl] && !sc.Idle:
		return "idle scenario only"
	}
	return ""
}

type options struct {
	impls     []string
	scenarios []scenario
	runs      int
	warmup    time.Duration
	measure   time.Duration
	idleHold  time.Duration
	idleConns int
	workers   int
	pin       bool
	verbose   bool
	out       string
	getty     string
}

// runResult is what one server process did in one scenario run.
type runResult struct {
	Impl     string `json:"impl"`
	Scenario string `json:"scenario"`
	Run      int    `json:"run"`
	Failed   string `json:"failed,omitempty"`

	Load loadgenResult `json:"loadgen"`

	ServerCPUs     float64 `json:"server_cpu_s"` // over the measured window
	ClientCPUs     float64 `json:"client_cpu_s"`
	OtherCPUPct    float64 `json:"other_cpu_pct"` // busy CPU of the machine minus server and loadgen, % of one CPU
	WindowS        float64 `json:"window_s"`
	CPUusPerReq    float64 `json:"cpu_us_per_req"`
	AllocsPerReq   float64 `json:"allocs_per_req"`
	Goroutines     int     `json:"goroutines"`
	GoroutinesBase int     `json:"goroutines_base"`
	PeakRSSKiB     int64   `json:"peak_rss_kib"`
	RSSBeforeKiB   int64   `json:"rss_before_kib"`
	RSSHeldKiB     int64   `json:"rss_held_kib"`
	KiBPerConn     float64 `json:"kib_per_conn"`
	IdleCPUPct     float64 `json:"idle_cpu_pct"`
	ServerStderr   string  `json:"server_stderr,omitempty"`
}

type loadgenResult struct {
	Mode       string  `json:"mode"`
	Opened     int     `json:"opened"`
	WindowS    float64 `json:"window_s"`
	Requests   uint64  `json:"requests"`
	ReqPerS    float64 `json:"req_per_s"`
	MBPerS     float64 `json:"mb_per_s"`
	P50us      float64 `json:"p50_us"`
	P99us      float64 `json:"p99_us"`
	P999us     float64 `json:"p999_us"`
	MaxUs      float64 `json:"max_us"`
	Errors     uint64  `json:"errors"`
	DialErrors uint64  `json:"dial_errors"`
	Reordered  uint64  `json:"reordered"`
	Lost       uint64  `json:"lost"`
	Alive      int     `json:"alive"`
	FirstError string  `json:"first_error"`
}

func (r *runResult) bad() bool {
	return r.Failed != "" || r.Load.Errors > 0 || r.Load.Lost > 0 || r.Load.DialErrors > 0
}

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

// runs reports whether impl takes part in sc: a WebSocket server in the
// WebSocket scenarios, a TCP one in the others (over a Unix socket only if
// it can listen on one).
func runs(sc scenario, impl string) bool {
	return sc.WS == wsImpls[impl] && sitsOut(sc, impl) == ""
}

// implsOf is the servers of o that take part in sc's kind of scenario.
func implsOf(o *options, sc scenario) []string {
	var out []string
	for _, impl := range o.impls {
		if wsImpls[impl] == sc.WS {
			out = append(out, impl)
		}
	}
	return out
}

// baseOf is the baseline of sc's kind: net for TCP, gorilla for WebSocket,
// or the first server of that kind when the baseline is not run.
func baseOf(o *options, sc scenario) string {
	impls := implsOf(o, sc)
	want := "net"
	if sc.WS {
		want = "gorilla"
	}
	for _, impl := range impls {
		if impl == want {
			return want
		}
	}
	if len(impls) > 0 {
		return impls[0]
	}
	return want
}

func setIfDefault(name string, set func()) {
	explicit := false
	flag.Visit(func(f *flag.Flag) {
		if f.Name == name {
			explicit = true
		}
	})
	if !explicit {
		set()
	}
}

func estimate(o *options) time.Duration {
	var total time.Duration
	for _, s := range o.scenarios {
		per := o.warmup + o.measure + 1200*time.Millisecond
		if s.Idle {
			per = o.warmup + o.idleHold + time.Duration(s.Conns)*150*time.Microsecond + 1500*time.Millisecond
		}
		n := 0
		for _, impl := range o.impls {
			if runs(s, impl) {
				n++
			}
		}
		total += per * time.Duration(o.runs*n)
	}
	return total
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
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

// ---- build -----------------------------------------------------------------

func moduleDir() (string, error) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}").Output()
	if err != nil {
		return "", fmt.Errorf("go list -m (run this from the benchmark module): %w", err)
	}
	dir := strings.TrimSpace(string(out))
	if _, err := os.Stat(filepath.Join(dir, "cmd", "echoserver")); err != nil {
		return "", fmt.Errorf("%s is not the benchmark module (run from benchmark/)", dir)
	}
	return dir, nil
}

func goBuild(modDir, out, pkg, tags string) error {
	args := []string{"build", "-o", out}
	if tags != "" {
		args = append(args, "-tags", tags)
	}
	args = append(args, pkg)
	cmd := exec.Command("go", args...)
	cmd.Dir = modDir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, tail(stderr.String(), 1500))
	}
	return nil
}

// family maps a server to the echoserver build that holds it: one binary per
// framework (-tags "solo solo_FAMILY"), so no framework's init-time
// background goroutines run inside another's server.
func family(impl string) string {
	switch {
	case strings.HasPrefix(impl, "net-") || impl == "net":
		return "net"
	case strings.HasPrefix(impl, "upstream"):
		return "upstream"
	case strings.HasPrefix(impl, "gnet"):
		return "gnet"
	case strings.HasPrefix(impl, "getty") && strings.HasSuffix(impl, "-nogw"):
		return "getty-nogw"
	case strings.HasPrefix(impl, "getty"):
		return "getty"
	}
	return impl
}

func serverBin(binDir, impl string) string {
	return filepath.Join(binDir, "echoserver-"+family(impl))
}

// build compiles loadgen and one echoserver per framework into binDir and
// returns the servers that are available.
func build(modDir, binDir, gettyMode string, wanted []string) (map[string]bool, string) {
	logf("building in %s", modDir)
	if err := goBuild(modDir, filepath.Join(binDir, "loadgen"), "./cmd/loadgen", ""); err != nil {
		fatalf("%v", err)
	}
	note := ""
	avail := map[string]bool{}
	done := map[string]bool{}
	for _, impl := range wanted {
		fam := family(impl)
		if done[fam] {
			continue
		}
		done[fam] = true
		tags := "solo solo_" + fam
		switch fam {
		case "getty":
			tags += " getty"
		case "getty-nogw":
			tags = "solo solo_getty getty getty_nogostwheel"
		}
		bin := serverBin(binDir, impl)
		if err := goBuild(modDir, bin, "./cmd/echoserver", tags); err != nil {
			if strings.HasPrefix(fam, "getty") && gettyMode != "on" {
				note = "the getty servers did not compile (-tags getty) and were skipped: " +
					strings.ReplaceAll(firstLines(err.Error(), 4), "\n", " | ")
				logf("%s", note)
				continue
			}
			fatalf("%v", err)
		}
		out, err := exec.Command(bin, "-list").Output()
		if err != nil {
			fatalf("%s -list: %v", bin, err)
		}
		for _, line := range strings.Split(string(out), "\n") {
			if f := strings.Fields(line); len(f) > 0 {
				avail[f[0]] = true
			}
		}
	}
	return avail, note
}

func firstLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.Join(lines, "\n")
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

func raiseNoFile() (uint64, error) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0, err
	}
	const want = 1 << 18
	if rl.Cur >= want {
		return rl.Cur, nil
	}
	nl := syscall.Rlimit{Cur: want, Max: want}
	if rl.Max > want {
		nl.Max = rl.Max
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &nl); err != nil {
		// Not root: at least use the whole hard limit.
		nl = syscall.Rlimit{Cur: rl.Max, Max: rl.Max}
		if err2 := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &nl); err2 != nil {
			return rl.Cur, err
		}
		return rl.Max, nil
	}
	return nl.Cur, nil
}

// ---- one run ---------------------------------------------------------------

type serverProc struct {
	cmd    *exec.Cmd
	pid    int
	stdin  io.WriteCloser
	events chan map[string]any
	stderr *tailBuffer
	exited chan struct{}
}

type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > 8192 {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-4096:]...)
	}
	t.mu.Unlock()
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}

func pinned(o *options, cpu int, bin string, args ...string) *exec.Cmd {
	if o.pin {
		return exec.Command("taskset", append([]string{"-c", strconv.Itoa(cpu), bin}, args...)...)
	}
	return exec.Command(bin, args...)
}

func startServer(o *options, binDir, impl string, sc scenario) (*serverProc, string, error) {
	args := []string{"-impl", impl, "-workers", strconv.Itoa(o.workers)}
	if sc.Work != "" {
		args = append(args, "-work", sc.Work)
	}
	if sc.Unix {
		args = append(args, "-addr", "unix:"+filepath.Join(binDir, impl+".sock"))
	}
	cmd := pinned(o, 0, serverBin(binDir, impl), args...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, "", err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, "", err
	}
	sp := &serverProc{cmd: cmd, stdin: stdin, events: make(chan map[string]any, 16), stderr: &tailBuffer{},
		exited: make(chan struct{})}
	cmd.Stderr = sp.stderr
	if err := cmd.Start(); err != nil {
		return nil, "", err
	}
	sp.pid = cmd.Process.Pid // taskset execs the server: same pid
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Bytes()
			if len(line) == 0 || line[0] != '{' {
				continue
			}
			var ev map[string]any
			if json.Unmarshal(line, &ev) == nil {
				select {
				case sp.events <- ev:
				default: // nobody asked; drop
				}
			}
		}
		_ = cmd.Wait()
		close(sp.exited)
	}()
	ev, err := sp.waitEvent("listening", 15*time.Second)
	if err != nil {
		sp.stop()
		return nil, "", fmt.Errorf("%v; stderr: %s", err, tail(sp.stderr.String(), 600))
	}
	addr, _ := ev["addr"].(string)
	return sp, addr, nil
}

func (sp *serverProc) waitEvent(name string, timeout time.Duration) (map[string]any, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		select {
		case ev := <-sp.events:
			if ev["event"] == name {
				return ev, nil
			}
		case <-sp.exited:
			return nil, errors.New("server exited")
		case <-t.C:
			return nil, fmt.Errorf("no %q from the server within %s", name, timeout)
		}
	}
}

func (sp *serverProc) stats() (goroutines int, mallocs uint64, ok bool) {
	if _, err := io.WriteString(sp.stdin, "stats\n"); err != nil {
		return 0, 0, false
	}
	ev, err := sp.waitEvent("stats", 5*time.Second)
	if err != nil {
		return 0, 0, false
	}
	g, _ := ev["goroutines"].(float64)
	m, _ := ev["mallocs"].(float64)
	return int(g), uint64(m), true
}

func (sp *serverProc) stop() {
	_, _ = io.WriteString(sp.stdin, "quit\n")
	select {
	case <-sp.exited:
		return
	case <-time.After(6 * time.Second):
	}
	_ = sp.cmd.Process.Kill() // the process we started, by its pid
	<-sp.exited
}

// cpuSeconds is utime+stime of the process from /proc/PID/stat.
func cpuSeconds(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:]) // f[0] is field 3 (state)
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100 // USER_HZ is 100 on Linux
}

// threadCPUSeconds is the run time of all the process's threads from
// /proc/PID/task/*/schedstat (nanoseconds, unlike the 10 ms ticks of
// /proc/PID/stat), or -1 if unavailable.
func threadCPUSeconds(pid int) float64 {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return -1
	}
	var ns float64
	for _, t := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/schedstat", pid, t.Name()))
		if err != nil {
			continue
		}
		f := strings.Fields(string(b))
		if len(f) == 0 {
			return -1
		}
		x, _ := strconv.ParseFloat(f[0], 64)
		ns += x
	}
	return ns / 1e9
}

// machineBusySeconds is the non-idle CPU time of the whole machine (all
// CPUs) from /proc/stat.
func machineBusySeconds() float64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return 0
	}
	var busy float64
	for i, v := range f[1:8] { // user nice system idle iowait irq softirq
		if i == 3 || i == 4 {
			continue
		}
		x, _ := strconv.ParseFloat(v, 64)
		busy += x
	}
	if len(f) > 8 { // steal
		x, _ := strconv.ParseFloat(f[8], 64)
		busy += x
	}
	return busy / 100
}

// statusKiB reads a "VmXXX:  N kB" field of /proc/PID/status.
func statusKiB(pid int, field string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, field+":") {
			f := strings.Fields(line[len(field)+1:])
			if len(f) > 0 {
				n, _ := strconv.ParseInt(f[0], 10, 64)
				return n
			}
		}
	}
	return 0
}

func runOne(o *options, binDir string, sc scenario, impl string, run int) *runResult {
	r := &runResult{Impl: impl, Scenario: sc.Name, Run: run + 1}
	sp, addr, err := startServer(o, binDir, impl, sc)
	if err != nil {
		r.Failed = "start: " + err.Error()
		return r
	}
	defer func() {
		sp.stop()
		if r.bad() {
			r.ServerStderr = tail(sp.stderr.String(), 1000)
		}
	}()
	time.Sleep(200 * time.Millisecond) // let the server settle before the baseline RSS
	r.RSSBeforeKiB = statusKiB(sp.pid, "VmRSS")
	r.GoroutinesBase, _, _ = sp.stats()

	args := []string{"-addr", addr, "-conns", strconv.Itoa(sc.Conns), "-size", strconv.Itoa(sc.Size),
		"-warmup", o.warmup.String()}
	if sc.Idle {
		args = append(args, "-idle", "-duration", o.idleHold.String())
	} else {
		args = append(args, "-inflight", strconv.Itoa(sc.Inflight), "-duration", o.measure.String())
	}
	if sc.WS {
		args = append(args, "-ws")
	}
	if sc.DialSerial {
		args = append(args, "-dial-parallel", "1")
	}
	args = append(args, "-ack-stdin")
	lg := pinned(o, 1, filepath.Join(binDir, "loadgen"), args...)
	lgIn, err := lg.StdinPipe()
	if err != nil {
		r.Failed = err.Error()
		return r
	}
	defer lgIn.Close()
	var stdout bytes.Buffer
	lg.Stdout = &stdout
	lgErr, err := lg.StderrPipe()
	if err != nil {
		r.Failed = err.Error()
		return r
	}
	if err := lg.Start(); err != nil {
		r.Failed = "loadgen: " + err.Error()
		return r
	}
	var (
		t0, t1           time.Time
		s0, s1, c0, c1   float64
		b0, b1           float64
		p0, p1           float64
		m0, m1           uint64
		sawStart, sawEnd bool
		lgTail           tailBuffer
	)
	sc2 := bufio.NewScanner(lgErr)
	for sc2.Scan() {
		line := sc2.Text()
		switch line {
		case "@measure-start":
			t0, s0, c0, b0 = time.Now(), cpuSeconds(sp.pid), cpuSeconds(lg.Process.Pid), machineBusySeconds()
			p0 = threadCPUSeconds(sp.pid)
			_, m0, _ = sp.stats()
			sawStart = true
		case "@measure-end":
			t1, s1, c1, b1 = time.Now(), cpuSeconds(sp.pid), cpuSeconds(lg.Process.Pid), machineBusySeconds()
			p1 = threadCPUSeconds(sp.pid)
			r.RSSHeldKiB = statusKiB(sp.pid, "VmRSS")
			r.Goroutines, m1, _ = sp.stats()
			sawEnd = true
			_, _ = io.WriteString(lgIn, "sampled\n") // the loadgen may now close its connections
		default:
			_, _ = lgTail.Write([]byte(line + "\n"))
			if o.verbose {
				fmt.Fprintf(os.Stderr, "    [%s] %s\n", impl, line)
			}
		}
	}
	lgRunErr := lg.Wait()
	r.PeakRSSKiB = statusKiB(sp.pid, "VmHWM")
	if err := json.Unmarshal(bytes.TrimSpace(lastLine(stdout.Bytes())), &r.Load); err != nil {
		r.Failed = fmt.Sprintf("loadgen output: %v (%v); stderr: %s", err, lgRunErr, tail(lgTail.String(), 600))
		return r
	}
	if !sawStart || !sawEnd {
		r.Failed = "loadgen printed no measurement markers"
		return r
	}
	r.WindowS = t1.Sub(t0).Seconds()
	r.ServerCPUs = s1 - s0
	r.ClientCPUs = c1 - c0
	if r.WindowS > 0 && b1 > b0 {
		r.OtherCPUPct = max(0, 100*((b1-b0)-r.ServerCPUs-r.ClientCPUs)/r.WindowS)
	}
	if sc.Idle {
		if r.Load.Opened > 0 {
			r.KiBPerConn = float64(r.RSSHeldKiB-r.RSSBeforeKiB) / float64(r.Load.Opened)
		}
		if r.WindowS > 0 {
			idle := r.ServerCPUs
			if p0 >= 0 && p1 >= p0 {
				idle = p1 - p0 // precise; live threads only (Go threads rarely exit)
			}
			r.IdleCPUPct = 100 * idle / r.WindowS
		}
		if r.Load.Alive != r.Load.Opened && r.Failed == "" {
			r.Failed = fmt.Sprintf("only %d of %d idle connections still echoed", r.Load.Alive, r.Load.Opened)
		}
	} else if r.Load.Requests > 0 {
		r.CPUusPerReq = r.ServerCPUs * 1e6 / float64(r.Load.Requests)
		if m1 >= m0 && m0 > 0 {
			r.AllocsPerReq = float64(m1-m0) / float64(r.Load.Requests)
		}
	}
	return r
}

func lastLine(b []byte) []byte {
	b = bytes.TrimRight(b, "\n")
	if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
		return b[i+1:]
	}
	return b
}

func oneLine(sc scenario, r *runResult) string {
	if r.Failed != "" {
		return "FAILED: " + firstLines(r.Failed, 1)
	}
	flag := ""
	if r.bad() {
		flag = fmt.Sprintf(" ERRORS=%d lost=%d dial=%d (%s)", r.Load.Errors, r.Load.Lost, r.Load.DialErrors, r.Load.FirstError)
	}
	if sc.Idle {
		return fmt.Sprintf("%.1f KiB/conn, idle CPU %.2f%%, %d goroutines, alive %d/%d%s",
			r.KiBPerConn, r.IdleCPUPct, r.Goroutines, r.Load.Alive, r.Load.Opened, flag)
	}
	return fmt.Sprintf("%.0f req/s, %.2f µs CPU/req, p99 %s, reordered %d, %.1f allocs/req, %d goroutines%s",
		r.Load.ReqPerS, r.CPUusPerReq, fmtUs(r.Load.P99us), r.Load.Reordered, r.AllocsPerReq, r.Goroutines, flag)
}

// ---- report ----------------------------------------------------------------

// agg holds the medians of one server in one scenario.
type agg struct {
	n, bad                                  int
	reqs, cpu, p50, p99, p999, allocs, ccpu float64
	reordered, errors                       float64
	goroutines, peakRSS, kibConn, idleCPU   float64
	goroutinesBase, otherCPU                float64
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
	}
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
		"warm-up %s, measured window %s (idle: %s); task pools: %d workers. Ratios are to the %s.\n\n",
		o.runs, pin, o.warmup, o.measure, o.idleHold, o.workers, baselines(o))
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
