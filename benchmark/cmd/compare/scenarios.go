// The servers and scenarios, which server runs in which scenario, the options
// and the run-time estimate.

package main

import (
	"flag"
	"fmt"
	"strings"
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
	impls       []string
	scenarios   []scenario
	runs        int
	warmup      time.Duration
	measure     time.Duration
	idleHold    time.Duration
	idleConns   int
	workers     int // getty's built-in pool
	gostWorkers int // gost pools (getty-gost*, upstream-pool)
	antsWorkers int // gnet-ants; 0 = gnet's default goroutine pool
	pin         bool
	verbose     bool
	out         string
	getty       string
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

// parseOptions reads the flags: the servers, the scenarios and how to run
// them.
func parseOptions() *options {
	var (
		implsFlag = flag.String("impls", strings.Join(allImpls, ","), "comma-separated servers to run")
		scenFlag  = flag.String("scenarios", "c100x1k,c100x128x16,c1000x1k,c10x64kx4,c4x8m,idle,c100x1k-unix,c10x16-block1ms,c100x16-cpu20us,ws-c100x1k,ws-c100x128x16", "comma-separated scenarios: c100x1k, c100x128x16, c1000x1k, c10x64kx4, c4x8m, idle, handlers that work c10x16-block1ms and c100x16-cpu20us, over a Unix socket c100x1k-unix, c100x128x16-unix (net, net-bufio and getty servers only), and over WebSocket ws-c100x1k, ws-c100x128x16 (the WebSocket servers only)")
		quick     = flag.Bool("quick", false, "smoke run, about a minute: 1 run, 0.25 s warm-up, 0.75 s windows, 2,000 idle conns held 1 s")
		o         = new(options)
	)
	flag.IntVar(&o.runs, "runs", 2, "runs per scenario and server (servers alternate between runs)")
	flag.DurationVar(&o.warmup, "warmup", time.Second, "warm-up before each measured window")
	flag.DurationVar(&o.measure, "measure", 3*time.Second, "measured window of the load scenarios")
	flag.DurationVar(&o.idleHold, "idle-hold", 5*time.Second, "how long the idle connections are held (measured window)")
	flag.IntVar(&o.idleConns, "idle-conns", 10000, "connections in the idle scenario")
	flag.IntVar(&o.workers, "workers", 100, "getty's built-in pool size (getty-pool*: WithServerWorkerPool)")
	flag.IntVar(&o.gostWorkers, "gost-workers", 2000, "gost pool size (getty-gost*, upstream-pool: gxsync.NewTaskPoolSimple), dubbo-go's and upstream's benchmark's")
	flag.IntVar(&o.antsWorkers, "ants-workers", 0, "gnet-ants pool size (ants.NewPool, blocking Submit); 0: gnet's default goroutine pool, effectively unbounded")
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

	scens := scenariosFor(o)
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
	return o
}

// scenariosFor returns the scenarios by name (the idle one sized by o).
func scenariosFor(o *options) map[string]scenario {
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
	return scens
}
