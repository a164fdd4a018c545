// Command soak runs getty under mixed load for a long time on loopback:
// TCP and WebSocket client pools pipeline numbered messages of random sizes
// to echo servers, while the servers are restarted (Close or Shutdown) and
// client pools are closed and replaced. It prints messages, goroutines and
// memory over time and fails (exit status 1) on any loss, duplicate,
// reordering or leaked goroutine.
//
//	go run ./test/soak -duration 10m     (make soak)
//
// What counts, per message (one id, written on one client session S):
//
//	sent       WritePkg returned nil.
//	acked      its echo came back on S.
//	abandoned  S ended (OnClose) before the echo came: the message was in
//	           flight when the connection went (server restart, pool
//	           closed). Whether the server got it is unknowable, and it is
//	           never retried, so it is not a loss.
//	lost       no echo within -reply-timeout while S stayed open all that
//	           time. Over TCP and WebSocket a live session must not drop a
//	           message: lost must be 0.
//	dup        an echo for an id that was already acked (or already counted
//	           lost): must be 0.
//	reordered  an echo older than one already received on S (the servers
//	           dispatch in order): must be 0.
//
// Each registered message ends in exactly one of acked, abandoned, lost or
// "write failed"; the final report checks that the books balance.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	getty "github.com/getty-go/getty"
)

var (
	duration     = flag.Duration("duration", 10*time.Minute, "how long to run")
	report       = flag.Duration("report", 10*time.Second, "report interval")
	pools        = flag.Int("pools", 8, "client pools (half TCP, half WebSocket)")
	conns        = flag.Int("conns", 4, "sessions per pool")
	window       = flag.Int("window", 16, "messages in flight per session")
	maxSize      = flag.Int("max-size", 8<<10, "largest payload, bytes")
	restartEvery = flag.Duration("restart", 30*time.Second, "restart one server this often")
	replaceEvery = flag.Duration("replace", 7*time.Second, "close and replace one client pool this often")
	replyTimeout = flag.Duration("reply-timeout", 5*time.Second, "an echo later than this on a live session is a loss")
)

// counters of the whole run
var (
	registered, sent, writeFailed         atomic.Int64
	acked, abandoned, lost, dups, reorder atomic.Int64
	restarts, replaced                    atomic.Int64
	liveSessions                          atomic.Int64
)

// ---- servers ----------------------------------------------------------------

type echo struct{ getty.BaseListener }

func (echo) OnMessage(s getty.Session, pkg any) { _, _, _ = s.WritePkg(pkg, 5*time.Second) }

func setup(l getty.EventListener) getty.NewSessionCallback {
	return func(s getty.Session) error {
		s.SetPkgHandler(&getty.LengthFieldCodec{})
		s.SetEventListener(l)
		s.SetMaxMsgLen(*maxSize + 64)
		s.SetReadTimeout(5 * time.Second)
		return nil
	}
}

// server is one restartable echo server on a fixed address.
type server struct {
	ws   bool
	addr string
	gen  int
	srv  getty.Server
}

func (s *server) start() error {
	opts := []getty.ServerOption{getty.WithLocalAddress(s.addr)}
	if s.gen%2 == 1 {
		opts = append(opts, getty.WithServerWorkerPool(4)) // alternate inline and pool dispatch
	}
	s.gen++
	var srv getty.Server
	if s.ws {
		srv = getty.NewWSServer(opts...)
	} else {
		srv = getty.NewTCPServer(opts...)
	}
	var err error
	for i := 0; i < 50; i++ { // the port may be briefly busy after a restart
		srv.RunEventLoop(setup(echo{}))
		if srv.Addr() != nil {
			break
		}
		err = fmt.Errorf("listen on %s failed", s.addr)
		time.Sleep(100 * time.Millisecond)
		if s.ws {
			srv = getty.NewWSServer(opts...)
		} else {
			srv = getty.NewTCPServer(opts...)
		}
	}
	if srv.Addr() == nil {
		return err
	}
	s.addr = srv.Addr().String()
	s.srv = srv
	return nil
}

func (s *server) stop(graceful bool) {
	if graceful {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		_ = s.srv.Shutdown(ctx)
		cancel()
	}
	s.srv.Close()
}

// ---- clients ----------------------------------------------------------------

// track is a client session's books: the ids in flight on it.
type track struct {
	mu       sync.Mutex
	inflight map[int64]time.Time
	lastEcho int64
	closed   bool
}

type trackKey struct{}

type clientListener struct{ getty.BaseListener }

func (clientListener) OnOpen(s getty.Session) error {
	s.SetAttribute(trackKey{}, &track{inflight: map[int64]time.Time{}, lastEcho: -1})
	liveSessions.Add(1)
	return nil
}

func (clientListener) OnClose(s getty.Session) {
	liveSessions.Add(-1)
	tr := trackOf(s)
	if tr == nil {
		return
	}
	tr.mu.Lock()
	tr.closed = true
	abandoned.Add(int64(len(tr.inflight)))
	clear(tr.inflight)
	tr.mu.Unlock()
}

func (clientListener) OnMessage(s getty.Session, pkg any) {
	p := pkg.(*getty.Frame).Payload
	i := 0
	for i < len(p) && p[i] != ':' {
		i++
	}
	id, err := strconv.ParseInt(string(p[:i]), 10, 64)
	tr := trackOf(s)
	if err != nil || tr == nil {
		return
	}
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if _, ok := tr.inflight[id]; !ok {
		dups.Add(1) // acked before, or counted lost: a late or duplicate echo
		return
	}
	delete(tr.inflight, id)
	acked.Add(1)
	if id < tr.lastEcho {
		reorder.Add(1)
	}
	tr.lastEcho = id
}

func trackOf(s getty.Session) *track {
	tr, _ := s.GetAttribute(trackKey{}).(*track)
	return tr
}

var nextID atomic.Int64

// pool is one client pool and the goroutine feeding it.
type pool struct {
	cli  getty.Client
	stop chan struct{}
	done chan struct{}
}

func newPool(srv *server) *pool {
	var cli getty.Client
	opts := []getty.ClientOption{
		getty.WithConnectionNumber(*conns),
		getty.WithReconnectInterval(int(50 * time.Millisecond)),
		getty.WithMaxReconnectInterval(time.Second),
	}
	if srv.ws {
		cli = getty.NewWSClient(append(opts, getty.WithServerAddress("ws://"+srv.addr+"/"))...)
	} else {
		cli = getty.NewTCPClient(append(opts, getty.WithServerAddress(srv.addr))...)
	}
	cli.Start(setup(clientListener{}))
	p := &pool{cli: cli, stop: make(chan struct{}), done: make(chan struct{})}
	go p.feed()
	return p
}

func (p *pool) feed() {
	defer close(p.done)
	r := rand.New(rand.NewPCG(rand.Uint64(), 0))
	buf := make([]byte, 0, *maxSize+32)
	for {
		select {
		case <-p.stop:
			return
		default:
		}
		s, err := p.cli.Session()
		if err != nil {
			time.Sleep(10 * time.Millisecond)
			continue
		}
		tr := trackOf(s)
		if tr == nil {
			time.Sleep(time.Millisecond)
			continue
		}
		id := nextID.Add(1)
		tr.mu.Lock()
		if tr.closed || len(tr.inflight) >= *window {
			tr.mu.Unlock()
			time.Sleep(200 * time.Microsecond)
			continue
		}
		tr.inflight[id] = time.Now()
		tr.mu.Unlock()
		registered.Add(1)

		buf = strconv.AppendInt(buf[:0], id, 10)
		buf = append(buf, ':')
		for n := r.IntN(*maxSize - 24); n > 0; n-- {
			buf = append(buf, byte('a'+n%26))
		}
		if _, _, err := s.WritePkg(buf, time.Second); err != nil {
			tr.mu.Lock()
			if _, ok := tr.inflight[id]; ok {
				delete(tr.inflight, id)
				writeFailed.Add(1)
			} // else acked already, or abandoned with the session
			tr.mu.Unlock()
			continue
		}
		sent.Add(1)
	}
}

func (p *pool) close() {
	close(p.stop)
	<-p.done
	p.cli.Close()
}

// checkLost counts the messages older than the reply timeout on sessions
// still open.
func checkLost(all []*pool) {
	now := time.Now()
	for _, p := range all {
		for _, s := range p.cli.Sessions() {
			tr := trackOf(s)
			if tr == nil {
				continue
			}
			tr.mu.Lock()
			for id, at := range tr.inflight {
				if now.Sub(at) > *replyTimeout && !tr.closed {
					delete(tr.inflight, id)
					lost.Add(1)
					fmt.Fprintf(os.Stderr, "LOST message %d on open session %s after %v\n", id, s.Stat(), now.Sub(at).Round(time.Millisecond))
				}
			}
			tr.mu.Unlock()
		}
	}
}

// ---- measures ---------------------------------------------------------------

func rssKiB() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return -1
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return -1
}

func line(start time.Time) string {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return fmt.Sprintf("%7s sent %9d acked %9d abandoned %6d lost %d dup %d reordered %d write-failed %6d | sessions %3d restarts %3d pools replaced %4d | goroutines %5d rss %6d KiB heap %6d KiB",
		time.Since(start).Round(time.Second), sent.Load(), acked.Load(), abandoned.Load(), lost.Load(), dups.Load(), reorder.Load(),
		writeFailed.Load(), liveSessions.Load(), restarts.Load(), replaced.Load(), runtime.NumGoroutine(), rssKiB(), ms.HeapInuse>>10)
}

func main() {
	flag.Parse()
	if *pools < 2 || *conns < 1 || *window < 1 || *maxSize < 64 {
		fmt.Fprintln(os.Stderr, "soak: need -pools >= 2, -conns >= 1, -window >= 1, -max-size >= 64")
		os.Exit(2)
	}
	getty.SetLogger(nil) // restarts make getty log every dropped connection
	baseG := runtime.NumGoroutine()
	start := time.Now()

	servers := []*server{{addr: "127.0.0.1:0"}, {ws: true, addr: "127.0.0.1:0"}}
	for _, s := range servers {
		if err := s.start(); err != nil {
			fmt.Fprintln(os.Stderr, "soak:", err)
			os.Exit(2)
		}
	}
	all := make([]*pool, *pools)
	for i := range all {
		all[i] = newPool(servers[i%2])
	}
	fmt.Printf("soak: %v, %d pools x %d sessions (TCP %s, WebSocket %s), window %d, payloads up to %d B\n",
		*duration, *pools, *conns, servers[0].addr, servers[1].addr, *window, *maxSize)

	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	end := time.After(*duration)
	lastReport, lastRestart, lastReplace := start, start, start
	peakG, peakRSS := 0, int64(0)
loop:
	for n := 0; ; n++ {
		select {
		case <-end:
			break loop
		case <-tick.C:
		}
		checkLost(all)
		peakG, peakRSS = max(peakG, runtime.NumGoroutine()), max(peakRSS, rssKiB())
		now := time.Now()
		if now.Sub(lastRestart) >= *restartEvery {
			lastRestart = now
			s := servers[restarts.Load()%2]
			s.stop(restarts.Load()%4 >= 2) // Close, Close, Shutdown, Shutdown per server
			if err := s.start(); err != nil {
				fmt.Fprintln(os.Stderr, "soak: restart:", err)
				os.Exit(2)
			}
			restarts.Add(1)
		}
		if now.Sub(lastReplace) >= *replaceEvery {
			lastReplace = now
			i := rand.IntN(len(all))
			all[i].close()
			all[i] = newPool(servers[i%2])
			replaced.Add(1)
		}
		if now.Sub(lastReport) >= *report {
			lastReport = now
			fmt.Println(line(start))
		}
	}

	// Let the last echoes come back, then close everything.
	time.Sleep(*replyTimeout / 5)
	for _, p := range all {
		close(p.stop)
		<-p.done
	}
	deadline := time.Now().Add(*replyTimeout + time.Second)
	for time.Now().Before(deadline) && registered.Load() != acked.Load()+abandoned.Load()+lost.Load()+writeFailed.Load()+inflight(all) {
		time.Sleep(50 * time.Millisecond)
	}
	for time.Now().Before(deadline) && inflight(all) > 0 {
		time.Sleep(50 * time.Millisecond)
	}
	checkLost(all)
	for _, p := range all {
		p.cli.Close()
	}
	for _, s := range servers {
		s.stop(false)
	}
	fmt.Println(line(start))

	var leaked int
	for i := 0; i < 100; i++ {
		if leaked = runtime.NumGoroutine() - baseG; leaked <= 0 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	books := registered.Load() - (acked.Load() + abandoned.Load() + lost.Load() + writeFailed.Load())
	fmt.Printf("soak: done after %v: %d messages registered, %d sent, %d acked, %d abandoned at a disconnect, %d write failures;\n"+
		"      lost %d, duplicated %d, reordered %d, unaccounted %d; peak %d goroutines, peak RSS %d KiB; %d goroutines left over the start\n",
		time.Since(start).Round(time.Second), registered.Load(), sent.Load(), acked.Load(), abandoned.Load(), writeFailed.Load(),
		lost.Load(), dups.Load(), reorder.Load(), books, peakG, peakRSS, max(leaked, 0))
	var bad []string
	if lost.Load() != 0 {
		bad = append(bad, "messages lost")
	}
	if dups.Load() != 0 {
		bad = append(bad, "duplicate echoes")
	}
	if reorder.Load() != 0 {
		bad = append(bad, "reordered echoes")
	}
	if books != 0 {
		bad = append(bad, "books do not balance")
	}
	if leaked > 0 {
		buf := make([]byte, 1<<20)
		fmt.Fprintf(os.Stderr, "%s\n", buf[:runtime.Stack(buf, true)])
		bad = append(bad, "goroutines leaked")
	}
	if acked.Load() == 0 {
		bad = append(bad, "nothing was echoed")
	}
	if len(bad) > 0 {
		fmt.Println("soak: FAIL:", strings.Join(bad, ", "))
		os.Exit(1)
	}
	fmt.Println("soak: PASS")
}

func inflight(all []*pool) (n int64) {
	for _, p := range all {
		for _, s := range p.cli.Sessions() {
			if tr := trackOf(s); tr != nil {
				tr.mu.Lock()
				n += int64(len(tr.inflight))
				tr.mu.Unlock()
			}
		}
	}
	return n
}
