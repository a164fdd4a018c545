// Command loadgen is a neutral load generator for the echo benchmark. It
// speaks the benchmark protocol (4-byte big-endian length prefix + payload,
// the server echoes every frame) over plain net, so it favours no server.
//
// Every payload carries the connection's sequence number, the send time and a
// pattern derived from both: every echoed byte is verified, and so is the
// order of the replies. Latencies go into a log-bucket histogram without any
// per-request allocation.
//
// Progress goes to stderr once a second, and the markers "@measure-start"
// and "@measure-end" are printed there at the edges of the measured window
// (the compare driver samples the server's CPU at those moments). One JSON
// line with the results goes to stdout.
package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

const (
	hdrLen     = 4
	minPayload = 16 // seq (8) + send timestamp (8)
	maxPayload = 8 << 20
	maxConns   = 200000
	maxFlight  = 1 << 16
)

type config struct {
	addr      string
	conns     int
	inflight  int
	size      int
	duration  time.Duration
	warmup    time.Duration
	idle      bool
	dialPar   int
	drain     time.Duration
	quietProg bool
	ack       bool
	cpuprof   string
	ws        bool   // speak WebSocket: one binary message per frame
	wsOut     []byte // -ws: the header of every message sent (masked, zero key)
	wsIn      []byte // -ws: the header every reply must have
}

// wsHeaders returns the client's message header (masked with a zero key,
// so the payload goes as is) and the server's, for messages of n bytes.
func wsHeaders(n int) (out, in []byte) {
	in = []byte{0x82, 0}
	switch {
	case n < 126:
		in[1] = byte(n)
	case n < 1<<16:
		in[1] = 126
		in = binary.BigEndian.AppendUint16(in, uint16(n))
	default:
		in[1] = 127
		in = binary.BigEndian.AppendUint64(in, uint64(n))
	}
	out = append([]byte(nil), in...)
	out[1] |= 0x80
	return append(out, 0, 0, 0, 0), in
}

// wsUpgrade sends the upgrade request and reads the response up to its
// blank line (the server sends nothing more before our first message).
func wsUpgrade(nc net.Conn, host string) error {
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	defer nc.SetDeadline(time.Time{})
	_, err := io.WriteString(nc, "GET / HTTP/1.1\r\nHost: "+host+"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
	if err != nil {
		return err
	}
	var resp []byte
	var b [1]byte
	for !bytes.HasSuffix(resp, []byte("\r\n\r\n")) {
		if len(resp) > 8<<10 {
			return errors.New("websocket upgrade response too long")
		}
		if _, err := nc.Read(b[:]); err != nil {
			return err
		}
		resp = append(resp, b[0])
	}
	if !bytes.HasPrefix(resp, []byte("HTTP/1.1 101")) {
		return fmt.Errorf("websocket upgrade refused: %q", bytes.SplitN(resp, []byte("\r\n"), 2)[0])
	}
	return nil
}

// Phases of a run.
const (
	phaseWarmup int32 = iota
	phaseMeasure
	phaseDone
)

var (
	start    = time.Now()
	phase    atomic.Int32
	nErrors  atomic.Uint64
	errMu    sync.Mutex
	firstErr string
)

func nowNs() uint64 { return uint64(time.Since(start)) }

func recordErr(err error) {
	nErrors.Add(1)
	errMu.Lock()
	if firstErr == "" {
		firstErr = err.Error()
	}
	errMu.Unlock()
}

// ---- payload pattern -------------------------------------------------------

func mix(connID, seq, ts uint64) uint64 {
	z := connID*0x9E3779B97F4A7C15 ^ seq*0xBF58476D1CE4E5B9 ^ ts*0x94D049BB133111EB
	z ^= z >> 31
	z *= 0xBF58476D1CE4E5B9
	z ^= z >> 29
	return z | 1
}

func fillPayload(p []byte, connID, seq, ts uint64) {
	binary.BigEndian.PutUint64(p[0:8], seq)
	binary.BigEndian.PutUint64(p[8:16], ts)
	w := mix(connID, seq, ts)
	rest := p[16:]
	i := 0
	for ; i+8 <= len(rest); i += 8 {
		binary.LittleEndian.PutUint64(rest[i:], w)
		w = w*6364136223846793005 + 1442695040888963407
	}
	for j := 0; i < len(rest); i, j = i+1, j+1 {
		rest[i] = byte(w >> (8 * uint(j)))
	}
}

func verifyPayload(p []byte, connID uint64) (seq, ts uint64, ok bool) {
	seq = binary.BigEndian.Uint64(p[0:8])
	ts = binary.BigEndian.Uint64(p[8:16])
	w := mix(connID, seq, ts)
	rest := p[16:]
	i := 0
	for ; i+8 <= len(rest); i += 8 {
		if binary.LittleEndian.Uint64(rest[i:]) != w {
			return seq, ts, false
		}
		w = w*6364136223846793005 + 1442695040888963407
	}
	for j := 0; i < len(rest); i, j = i+1, j+1 {
		if rest[i] != byte(w>>(8*uint(j))) {
			return seq, ts, false
		}
	}
	return seq, ts, true
}

// ---- one loaded connection -------------------------------------------------

type lconn struct {
	id     uint64
	nc     net.Conn // *net.TCPConn, or *net.UnixConn for a unix: address
	tokens chan struct{}

	sent       atomic.Uint64 // frames handed to the socket (written by the writer)
	recv       atomic.Uint64 // replies received (written by the reader)
	reordered  atomic.Uint64
	writerDone atomic.Bool
	failed     atomic.Bool

	// owned by the reader; read by main after the reader has exited
	measured uint64
	h        hist
}

func (c *lconn) fail(err error) {
	if c.failed.CompareAndSwap(false, true) {
		recordErr(fmt.Errorf("conn %d: %w", c.id, err))
	}
	_ = c.nc.Close()
}

func (c *lconn) writeLoop(cfg *config, done <-chan struct{}) {
	defer c.writerDone.Store(true)
	bw := bufio.NewWriterSize(c.nc, 64<<10)
	msg := append(append([]byte(nil), cfg.wsOut...), make([]byte, hdrLen+cfg.size)...)
	frame := msg[len(cfg.wsOut):]
	binary.BigEndian.PutUint32(frame, uint32(cfg.size))
	var seq uint64
	for phase.Load() != phaseDone {
		select {
		case <-c.tokens:
		default:
			if bw.Buffered() > 0 {
				if err := bw.Flush(); err != nil {
					if !c.failed.Load() {
						c.fail(fmt.Errorf("write: %w", err))
					}
					return
				}
			}
			select {
			case <-c.tokens:
			case <-done:
				_ = bw.Flush()
				return
			}
		}
		if phase.Load() == phaseDone {
			break
		}
		fillPayload(frame[hdrLen:], c.id, seq, nowNs())
		seq++
		c.sent.Store(seq) // before the bytes can reach the server
		if _, err := bw.Write(msg); err != nil {
			if !c.failed.Load() {
				c.fail(fmt.Errorf("write: %w", err))
			}
			return
		}
	}
	if err := bw.Flush(); err != nil && !c.failed.Load() {
		c.fail(fmt.Errorf("write: %w", err))
	}
}

func (c *lconn) readLoop(cfg *config) {
	br := bufio.NewReaderSize(c.nc, 64<<10)
	var hdr [hdrLen]byte
	payload := make([]byte, cfg.size)
	wsHdr := make([]byte, len(cfg.wsIn))
	var received, maxSeq uint64
	haveMax := false
	for {
		if c.writerDone.Load() && received == c.sent.Load() {
			return
		}
		if len(wsHdr) > 0 {
			if _, err := io.ReadFull(br, wsHdr); err != nil {
				c.readErr(err, received)
				return
			}
			if !bytes.Equal(wsHdr, cfg.wsIn) {
				c.fail(fmt.Errorf("reply message header %x, want %x", wsHdr, cfg.wsIn))
				return
			}
		}
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			c.readErr(err, received)
			return
		}
		if n := binary.BigEndian.Uint32(hdr[:]); n != uint32(cfg.size) {
			c.fail(fmt.Errorf("reply length %d, want %d", n, cfg.size))
			return
		}
		if _, err := io.ReadFull(br, payload); err != nil {
			c.readErr(err, received)
			return
		}
		now := nowNs()
		seq, ts, ok := verifyPayload(payload, c.id)
		if !ok {
			c.fail(fmt.Errorf("corrupted reply (seq field %d)", seq))
			return
		}
		if seq >= c.sent.Load() {
			c.fail(fmt.Errorf("reply for seq %d that was never sent", seq))
			return
		}
		if haveMax && seq <= maxSeq {
			if seq == maxSeq {
				c.fail(fmt.Errorf("duplicate reply for seq %d", seq))
				return
			}
			c.reordered.Add(1)
		} else {
			maxSeq, haveMax = seq, true
		}
		received++
		c.recv.Store(received)
		if phase.Load() == phaseMeasure {
			c.measured++
			if now > ts {
				c.h.record(now - ts)
			} else {
				c.h.record(0)
			}
		}
		select {
		case c.tokens <- struct{}{}:
		default:
			c.fail(errors.New("more replies than requests in flight"))
			return
		}
	}
}

// syncLoop drives a connection with one request in flight: write a frame,
// read its echo, repeat, all on one goroutine (one wake-up per request).
func (c *lconn) syncLoop(cfg *config) {
	defer c.writerDone.Store(true)
	br := bufio.NewReaderSize(c.nc, 64<<10)
	msg := append(append([]byte(nil), cfg.wsOut...), make([]byte, hdrLen+cfg.size)...)
	frame := msg[len(cfg.wsOut):]
	binary.BigEndian.PutUint32(frame, uint32(cfg.size))
	whole := make([]byte, len(cfg.wsIn)+hdrLen+cfg.size)
	reply := whole[len(cfg.wsIn):]
	var seq uint64
	for phase.Load() != phaseDone {
		fillPayload(frame[hdrLen:], c.id, seq, nowNs())
		seq++
		c.sent.Store(seq)
		if _, err := c.nc.Write(msg); err != nil {
			c.fail(fmt.Errorf("write: %w", err))
			return
		}
		if _, err := io.ReadFull(br, whole); err != nil {
			if phase.Load() == phaseDone && isTimeout(err) {
				return // counted as lost by main
			}
			c.fail(fmt.Errorf("read: %w", err))
			return
		}
		now := nowNs()
		if !bytes.Equal(whole[:len(cfg.wsIn)], cfg.wsIn) {
			c.fail(fmt.Errorf("reply message header %x, want %x", whole[:len(cfg.wsIn)], cfg.wsIn))
			return
		}
		if n := binary.BigEndian.Uint32(reply); n != uint32(cfg.size) {
			c.fail(fmt.Errorf("reply length %d, want %d", n, cfg.size))
			return
		}
		rseq, ts, ok := verifyPayload(reply[hdrLen:], c.id)
		if !ok {
			c.fail(fmt.Errorf("corrupted reply (seq field %d)", rseq))
			return
		}
		if rseq != seq-1 {
			c.fail(fmt.Errorf("reply for seq %d, want %d", rseq, seq-1))
			return
		}
		c.recv.Store(seq)
		if phase.Load() == phaseMeasure {
			c.measured++
			if now > ts {
				c.h.record(now - ts)
			} else {
				c.h.record(0)
			}
		}
	}
}

func (c *lconn) readErr(err error, received uint64) {
	if c.failed.Load() {
		return
	}
	if c.writerDone.Load() && received == c.sent.Load() {
		return // drained; main unblocked us with a deadline
	}
	if c.writerDone.Load() && isTimeout(err) {
		return // lost replies are counted by main
	}
	c.fail(fmt.Errorf("read: %w", err))
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// ---- dialing ---------------------------------------------------------------

func dialAll(cfg *config) ([]net.Conn, uint64) {
	conns := make([]net.Conn, cfg.conns)
	network, addr := "tcp", cfg.addr
	if rest, ok := strings.CutPrefix(cfg.addr, "unix:"); ok {
		network, addr = "unix", rest
	}
	var dialErrs atomic.Uint64
	var next atomic.Int64
	var wg sync.WaitGroup
	par := cfg.dialPar
	if par > cfg.conns {
		par = cfg.conns
	}
	d := net.Dialer{Timeout: 5 * time.Second}
	deadline := time.Now().Add(60 * time.Second)
	for w := 0; w < par; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= cfg.conns {
					return
				}
				var lastErr error
				for attempt := 0; attempt < 5 && time.Now().Before(deadline); attempt++ {
					nc, err := d.Dial(network, addr)
					if err == nil && cfg.ws {
						if err = wsUpgrade(nc, addr); err != nil {
							nc.Close()
						}
					}
					if err == nil {
						conns[i] = nc
						lastErr = nil
						break
					}
					lastErr = err
					time.Sleep(time.Duration(attempt+1) * 50 * time.Millisecond)
				}
				if conns[i] == nil {
					dialErrs.Add(1)
					if lastErr == nil {
						lastErr = errors.New("dial deadline exceeded")
					}
					recordErr(fmt.Errorf("dial: %w", lastErr))
				}
			}
		}()
	}
	wg.Wait()
	return conns, dialErrs.Load()
}

// ---- results ---------------------------------------------------------------

type result struct {
	Mode       string  `json:"mode"`
	Addr       string  `json:"addr"`
	Conns      int     `json:"conns"`
	Opened     int     `json:"opened"`
	Inflight   int     `json:"inflight,omitempty"`
	Size       int     `json:"size"`
	WindowS    float64 `json:"window_s"`
	Requests   uint64  `json:"requests"`
	ReqPerS    float64 `json:"req_per_s"`
	MBPerS     float64 `json:"mb_per_s"`
	P50us      float64 `json:"p50_us"`
	P99us      float64 `json:"p99_us"`
	P999us     float64 `json:"p999_us"`
	MaxUs      float64 `json:"max_us"`
	MeanUs     float64 `json:"mean_us"`
	Errors     uint64  `json:"errors"`
	DialErrors uint64  `json:"dial_errors"`
	Reordered  uint64  `json:"reordered"`
	Lost       uint64  `json:"lost"`
	Alive      int     `json:"alive,omitempty"`
	FirstError string  `json:"first_error,omitempty"`
}

func emit(r *result) {
	errMu.Lock()
	r.FirstError = firstErr
	errMu.Unlock()
	r.Errors = nErrors.Load()
	b, _ := json.Marshal(r)
	fmt.Fprintln(os.Stdout, string(b))
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "loadgen: "+format+"\n", args...)
}

// ---- main ------------------------------------------------------------------

func main() {
	var cfg config
	flag.StringVar(&cfg.addr, "addr", "127.0.0.1:9000", "server address (loopback), or unix:/path for a Unix socket")
	flag.IntVar(&cfg.conns, "conns", 100, "number of connections")
	flag.IntVar(&cfg.inflight, "inflight", 1, "requests in flight per connection")
	flag.IntVar(&cfg.size, "size", 1024, "payload bytes per frame (min 16)")
	flag.DurationVar(&cfg.duration, "duration", 3*time.Second, "measured window (idle: how long connections are held)")
	flag.DurationVar(&cfg.warmup, "warmup", time.Second, "warm-up before the measured window")
	flag.BoolVar(&cfg.idle, "idle", false, "only open -conns connections and hold them for -duration, sending nothing")
	flag.IntVar(&cfg.dialPar, "dial-parallel", 128, "concurrent dials while connecting")
	flag.DurationVar(&cfg.drain, "drain", 3*time.Second, "how long to wait for outstanding replies at the end")
	flag.BoolVar(&cfg.quietProg, "quiet", false, "no per-second progress lines")
	flag.StringVar(&cfg.cpuprof, "cpuprofile", "", "write the load generator's own CPU profile to this file")
	flag.BoolVar(&cfg.ack, "ack-stdin", false, "after @measure-end keep the connections open until a line arrives on stdin (at most 10 s), so a driver can sample the server")
	flag.BoolVar(&cfg.ws, "ws", false, "speak WebSocket (GET / upgrade): each frame is one binary message (not with -idle)")
	flag.Parse()
	if cfg.ws {
		if cfg.idle {
			fatalf("-ws does not apply to -idle")
		}
		cfg.wsOut, cfg.wsIn = wsHeaders(hdrLen + cfg.size)
	}

	if cfg.conns < 1 || cfg.conns > maxConns {
		fatalf("-conns must be in [1, %d]", maxConns)
	}
	if cfg.inflight < 1 || cfg.inflight > maxFlight {
		fatalf("-inflight must be in [1, %d]", maxFlight)
	}
	if cfg.size < minPayload || cfg.size > maxPayload {
		fatalf("-size must be in [%d, %d]", minPayload, maxPayload)
	}
	if cfg.duration <= 0 || cfg.duration > 10*time.Minute || cfg.warmup < 0 || cfg.warmup > time.Minute {
		fatalf("-duration must be in (0, 10m], -warmup in [0, 1m]")
	}
	if cfg.dialPar < 1 {
		cfg.dialPar = 1
	}
	// Hard stop: every loop here is bounded, this is the safety net.
	limit := cfg.warmup + cfg.duration + cfg.drain + 90*time.Second
	time.AfterFunc(limit, func() {
		recordErr(fmt.Errorf("run exceeded its hard limit of %s", limit))
		emit(&result{Mode: "aborted", Addr: cfg.addr, Conns: cfg.conns})
		os.Exit(2)
	})

	if cfg.cpuprof != "" {
		f, err := os.Create(cfg.cpuprof)
		if err != nil {
			fatalf("%v", err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fatalf("%v", err)
		}
		defer func() { pprof.StopCPUProfile(); _ = f.Close() }()
	}
	if cfg.idle {
		runIdle(&cfg)
	} else {
		runLoad(&cfg)
	}
}

// waitAck holds the connections open after the window until the driver has
// sampled the server (a line on stdin), at most 10 s.
func waitAck(cfg *config) {
	if !cfg.ack {
		return
	}
	got := make(chan struct{})
	go func() {
		_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
		close(got)
	}()
	select {
	case <-got:
	case <-time.After(10 * time.Second):
		logf("no acknowledgement on stdin within 10s, going on")
	}
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "loadgen: "+format+"\n", args...)
	os.Exit(2)
}

// progress prints one line a second until stop is closed.
func progress(stop <-chan struct{}, sample func() string) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			logf("t=%4.1fs %s", time.Since(start).Seconds(), sample())
		}
	}
}

func phaseName() string {
	switch phase.Load() {
	case phaseWarmup:
		return "warmup "
	case phaseMeasure:
		return "measure"
	}
	return "done   "
}

func runLoad(cfg *config) {
	nconns, dialErrs := dialAll(cfg)
	conns := make([]*lconn, 0, len(nconns))
	for i, nc := range nconns {
		if nc == nil {
			continue
		}
		c := &lconn{id: uint64(i) + 1, nc: nc, tokens: make(chan struct{}, cfg.inflight)}
		for k := 0; k < cfg.inflight; k++ {
			c.tokens <- struct{}{}
		}
		conns = append(conns, c)
	}
	logf("connected %d/%d to %s (%d in flight x %d B)", len(conns), cfg.conns, cfg.addr, cfg.inflight, cfg.size)

	done := make(chan struct{})
	var wwg, rwg sync.WaitGroup
	for _, c := range conns {
		wwg.Add(1)
		if cfg.inflight == 1 {
			go func() { defer wwg.Done(); c.syncLoop(cfg) }()
			continue
		}
		rwg.Add(1)
		go func() { defer wwg.Done(); c.writeLoop(cfg, done) }()
		go func() { defer rwg.Done(); c.readLoop(cfg) }()
	}

	stopProg := make(chan struct{})
	var last uint64
	lastT := time.Now()
	go progress(stopProg, func() string {
		var total, reo uint64
		for _, c := range conns {
			total += c.recv.Load()
			reo += c.reordered.Load()
		}
		now := time.Now()
		rate := float64(total-last) / now.Sub(lastT).Seconds()
		last, lastT = total, now
		return fmt.Sprintf("%s req/s=%9.0f MB/s=%7.1f total=%d errors=%d reordered=%d",
			phaseName(), rate, rate*float64(cfg.size)/1e6, total, nErrors.Load(), reo)
	})
	if cfg.quietProg {
		close(stopProg)
	}

	time.Sleep(cfg.warmup)
	phase.Store(phaseMeasure)
	t0 := time.Now()
	fmt.Fprintln(os.Stderr, "@measure-start")
	time.Sleep(cfg.duration)
	phase.Store(phaseDone)
	window := time.Since(t0)
	fmt.Fprintln(os.Stderr, "@measure-end")
	close(done)
	// A writer blocked on a server that stopped reading gives up after
	// cfg.drain (an error); with 1 in flight each loop also finishes the
	// request it has in flight within cfg.drain (else it is lost).
	for _, c := range conns {
		_ = c.nc.SetWriteDeadline(time.Now().Add(cfg.drain))
		if cfg.inflight == 1 {
			_ = c.nc.SetReadDeadline(time.Now().Add(cfg.drain))
		}
	}
	wwg.Wait()

	// Drain: readers that already have every reply are unblocked at once,
	// the others get cfg.drain to receive what is still in flight.
	for _, c := range conns {
		if c.recv.Load() == c.sent.Load() {
			_ = c.nc.SetReadDeadline(time.Now())
		} else {
			_ = c.nc.SetReadDeadline(time.Now().Add(cfg.drain))
		}
	}
	rwg.Wait()
	if !cfg.quietProg {
		close(stopProg)
	}
	waitAck(cfg)

	var h hist
	res := result{Mode: "load", Addr: cfg.addr, Conns: cfg.conns, Opened: len(conns), Inflight: cfg.inflight,
		Size: cfg.size, WindowS: window.Seconds(), DialErrors: dialErrs}
	for _, c := range conns {
		h.merge(&c.h)
		res.Requests += c.measured
		res.Reordered += c.reordered.Load()
		if !c.failed.Load() {
			res.Lost += c.sent.Load() - c.recv.Load()
		}
		_ = c.nc.Close()
	}
	res.ReqPerS = float64(res.Requests) / window.Seconds()
	res.MBPerS = res.ReqPerS * float64(cfg.size) / 1e6
	res.P50us = float64(h.quantile(0.50)) / 1e3
	res.P99us = float64(h.quantile(0.99)) / 1e3
	res.P999us = float64(h.quantile(0.999)) / 1e3
	res.MaxUs = float64(h.max) / 1e3
	res.MeanUs = h.mean() / 1e3
	if res.Lost > 0 {
		recordErr(fmt.Errorf("%d replies not received within %s", res.Lost, cfg.drain))
	}
	emit(&res)
}

func runIdle(cfg *config) {
	nconns, dialErrs := dialAll(cfg)
	conns := nconns[:0:0]
	for _, nc := range nconns {
		if nc != nil {
			conns = append(conns, nc)
		}
	}
	logf("holding %d/%d idle connections to %s", len(conns), cfg.conns, cfg.addr)
	stopProg := make(chan struct{})
	go progress(stopProg, func() string {
		return fmt.Sprintf("%s idle conns=%d errors=%d", phaseName(), len(conns), nErrors.Load())
	})
	if cfg.quietProg {
		close(stopProg)
	}
	time.Sleep(cfg.warmup)
	phase.Store(phaseMeasure)
	t0 := time.Now()
	fmt.Fprintln(os.Stderr, "@measure-start")
	time.Sleep(cfg.duration)
	phase.Store(phaseDone)
	window := time.Since(t0)
	fmt.Fprintln(os.Stderr, "@measure-end")
	if !cfg.quietProg {
		close(stopProg)
	}
	waitAck(cfg)

	// After the window: check that every held connection still echoes.
	var alive atomic.Int64
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < 64 && w < len(conns); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			frame := make([]byte, hdrLen+cfg.size)
			reply := make([]byte, hdrLen+cfg.size)
			binary.BigEndian.PutUint32(frame, uint32(cfg.size))
			for {
				i := int(next.Add(1) - 1)
				if i >= len(conns) {
					return
				}
				nc := conns[i]
				id := uint64(i) + 1
				_ = nc.SetDeadline(time.Now().Add(5 * time.Second))
				fillPayload(frame[hdrLen:], id, 0, nowNs())
				if _, err := nc.Write(frame); err != nil {
					recordErr(fmt.Errorf("idle conn %d: write: %w", id, err))
					continue
				}
				if _, err := io.ReadFull(nc, reply); err != nil {
					recordErr(fmt.Errorf("idle conn %d: read: %w", id, err))
					continue
				}
				if _, _, ok := verifyPayload(reply[hdrLen:], id); !ok || binary.BigEndian.Uint32(reply) != uint32(cfg.size) {
					recordErr(fmt.Errorf("idle conn %d: corrupted echo", id))
					continue
				}
				alive.Add(1)
			}
		}()
	}
	wg.Wait()
	for _, nc := range conns {
		_ = nc.Close()
	}
	emit(&result{Mode: "idle", Addr: cfg.addr, Conns: cfg.conns, Opened: len(conns), Size: cfg.size,
		WindowS: window.Seconds(), DialErrors: dialErrs, Alive: int(alive.Load())})
}
