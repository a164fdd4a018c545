// Command echoserver runs one echo server implementation for the benchmark:
// every frame (4-byte big-endian length prefix + payload) is echoed back.
//
//	echoserver -impl NAME [-addr 127.0.0.1:0] [-workers N] [-gost-workers N] [-ants-workers N]
//
// On start it prints one JSON line to stdout:
//
//	{"event":"listening","impl":"net","addr":"127.0.0.1:40123","pid":1234}
//
// Control, kept out of the measured path: each line "stats" written to its
// stdin is answered by one JSON line on stdout (goroutines, heap, mallocs);
// "quit" (or SIGINT/SIGTERM) closes the server and exits. With -stats-every
// the same stats line is also printed periodically.
//
// Built plainly it holds every server (handy by hand). The compare driver
// builds one binary per framework instead, with -tags "solo solo_NAME"
// (NAME: net, upstream, gnet, netpoll, getty), because some frameworks start
// background goroutines from init() (upstream's timer wheel ticks every
// 10 ms), which would otherwise cost CPU and memory in every server.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
)

const maxFrame = 8 << 20 // largest payload any server accepts

// server is what every implementation returns once it is listening.
type server interface {
	Addr() string
	Close() error
}

// pools are the task pool sizes of the pooled servers, one flag each, so
// every framework's pool is configured the way its users configure it.
type pools struct {
	Workers int // getty's built-in pool: WithServerWorkerPool(Workers)
	Gost    int // gost pools (getty-gost, upstream-pool): gxsync.NewTaskPoolSimple(Gost)
	Ants    int // gnet-ants: ants.NewPool(Ants); 0 = gnet's default goroutine pool
}

type factory struct {
	desc string
	new  func(addr string, p pools) (server, error)
}

var impls = map[string]factory{}

func register(name, desc string, f func(addr string, p pools) (server, error)) {
	impls[name] = factory{desc: desc, new: f}
}

func implNames() []string {
	names := make([]string, 0, len(impls))
	for n := range impls {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

type stats struct {
	Event      string `json:"event"`
	Goroutines int    `json:"goroutines"`
	Mallocs    uint64 `json:"mallocs"`
	HeapInuse  uint64 `json:"heap_inuse"`
	Sys        uint64 `json:"sys"`
	NumGC      uint32 `json:"num_gc"`
	WorkN      int64  `json:"work_n,omitempty"`   // handlers run (-work block)
	WorkNs     int64  `json:"work_ns,omitempty"`  // their summed wall time
	WorkMax    int64  `json:"work_max,omitempty"` // most running at once
}

var outMu sync.Mutex

func printJSON(v any) {
	b, _ := json.Marshal(v)
	outMu.Lock()
	fmt.Fprintln(os.Stdout, string(b))
	outMu.Unlock()
}

func printStats() {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	printJSON(stats{Event: "stats", Goroutines: runtime.NumGoroutine(), Mallocs: ms.Mallocs,
		HeapInuse: ms.HeapInuse, Sys: ms.Sys, NumGC: ms.NumGC,
		WorkN: workN.Load(), WorkNs: workNs.Load(), WorkMax: workMax.Load()})
}

func main() {
	impl := flag.String("impl", "", "implementation: one of "+strings.Join(implNames(), ", ")+" (or -list)")
	addr := flag.String("addr", "127.0.0.1:0", "listen address (loopback)")
	var p pools
	flag.IntVar(&p.Workers, "workers", 100, "getty's built-in pool size (getty-pool*, WithServerWorkerPool)")
	flag.IntVar(&p.Gost, "gost-workers", 2000, "gost pool size (getty-gost*, upstream-pool: gxsync.NewTaskPoolSimple), as dubbo-go and upstream's benchmark")
	flag.IntVar(&p.Ants, "ants-workers", 0, "gnet-ants pool size (ants.NewPool, blocking Submit); 0: gnet's default goroutine pool")
	statsEvery := flag.Duration("stats-every", 0, "also print a stats line this often (0: only on request)")
	list := flag.Bool("list", false, "list implementations and exit")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	workSpec := flag.String("work", "", `handler work per frame before the echo: "block=1ms" (waits) or "cpu=20us" (computes)`)
	flag.Parse()
	if err := parseWork(*workSpec); err != nil {
		fmt.Fprintln(os.Stderr, "echoserver:", err)
		os.Exit(2)
	}
	if *cpuprofile != "" {
		pf, err := os.Create(*cpuprofile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "echoserver:", err)
			os.Exit(1)
		}
		if err := pprof.StartCPUProfile(pf); err != nil {
			fmt.Fprintln(os.Stderr, "echoserver:", err)
			os.Exit(1)
		}
		defer func() { pprof.StopCPUProfile(); pf.Close() }()
	}

	if *list {
		for _, n := range implNames() {
			fmt.Printf("%-14s %s\n", n, impls[n].desc)
		}
		return
	}
	f, ok := impls[*impl]
	if !ok {
		fmt.Fprintf(os.Stderr, "echoserver: unknown -impl %q; built in: %s", *impl, strings.Join(implNames(), ", "))
		if strings.HasPrefix(*impl, "getty") {
			fmt.Fprint(os.Stderr, " (the getty servers need: go build -tags getty)")
		}
		fmt.Fprintln(os.Stderr)
		os.Exit(2)
	}
	p.Workers, p.Gost = max(p.Workers, 1), max(p.Gost, 1)
	srv, err := f.new(*addr, p)
	if err != nil {
		fmt.Fprintf(os.Stderr, "echoserver: %s: %v\n", *impl, err)
		os.Exit(1)
	}
	printJSON(map[string]any{"event": "listening", "impl": *impl, "addr": srv.Addr(), "pid": os.Getpid(),
		"gomaxprocs": runtime.GOMAXPROCS(0)})

	quit := make(chan struct{})
	var once sync.Once
	stop := func() { once.Do(func() { close(quit) }) }

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	go func() { <-sig; stop() }()

	go func() {
		sc := bufio.NewScanner(os.Stdin)
		for sc.Scan() {
			switch strings.TrimSpace(sc.Text()) {
			case "stats":
				printStats()
			case "quit":
				stop()
				return
			}
		}
		// EOF on stdin: keep serving until a signal (handy for manual runs).
	}()
	if *statsEvery > 0 {
		go func() {
			t := time.NewTicker(*statsEvery)
			defer t.Stop()
			for {
				select {
				case <-quit:
					return
				case <-t.C:
					printStats()
				}
			}
		}()
	}

	<-quit
	done := make(chan struct{})
	go func() { _ = srv.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		fmt.Fprintln(os.Stderr, "echoserver: close did not finish within 5s, exiting anyway")
	}
	printJSON(map[string]any{"event": "closed"})
}

// freeLoopbackPort returns an address with a currently free port, for the
// frameworks that cannot report the port they bound to.
func freeLoopbackPort(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", err
	}
	if port != "0" && port != "" {
		return addr, nil
	}
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return "", err
	}
	a := l.Addr().String()
	_ = l.Close()
	return a, nil
}

// listen listens on addr, a Unix socket for "unix:/path".
func listen(addr string) (net.Listener, error) {
	if path, ok := strings.CutPrefix(addr, "unix:"); ok {
		return net.Listen("unix", path)
	}
	return net.Listen("tcp", addr)
}

// addrOf is the -addr form of a listener's address: "unix:/path" for a
// Unix socket, so the load generator knows to dial one.
func addrOf(a net.Addr) string {
	if a.Network() == "unix" {
		return "unix:" + a.String()
	}
	return a.String()
}
