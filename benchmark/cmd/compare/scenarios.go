// The servers and scenarios, which server runs in which scenario, the options
// and the run-time estimate.

package main

import (
	"flag"
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
