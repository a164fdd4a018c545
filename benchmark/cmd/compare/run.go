// One run of one server in one scenario, and its result.

package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

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
	// -work block: handlers running at once on average over the window
	// (summed handler wall time / window), a handler's mean real length,
	// and the most ever running at once.
	WorkAtOnce   float64 `json:"work_at_once,omitempty"`
	WorkMs       float64 `json:"work_ms,omitempty"`
	WorkMax      int64   `json:"work_max,omitempty"`
	ServerStderr string  `json:"server_stderr,omitempty"`
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
	base, _ := sp.stats()
	r.GoroutinesBase = base.Goroutines

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
		st0, st1         serverStats
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
			st0, _ = sp.stats()
			sawStart = true
		case "@measure-end":
			t1, s1, c1, b1 = time.Now(), cpuSeconds(sp.pid), cpuSeconds(lg.Process.Pid), machineBusySeconds()
			p1 = threadCPUSeconds(sp.pid)
			r.RSSHeldKiB = statusKiB(sp.pid, "VmRSS")
			st1, _ = sp.stats()
			r.Goroutines = st1.Goroutines
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
		if st1.Mallocs >= st0.Mallocs && st0.Mallocs > 0 {
			r.AllocsPerReq = float64(st1.Mallocs-st0.Mallocs) / float64(r.Load.Requests)
		}
		if n := st1.WorkN - st0.WorkN; n > 0 && r.WindowS > 0 {
			ns := float64(st1.WorkNs - st0.WorkNs)
			r.WorkAtOnce, r.WorkMs, r.WorkMax = ns/1e9/r.WindowS, ns/1e6/float64(n), st1.WorkMax
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
	work := ""
	if r.WorkMs > 0 {
		work = fmt.Sprintf(", handlers at once %.1f (max %d), handler %.2f ms", r.WorkAtOnce, r.WorkMax, r.WorkMs)
	}
	return fmt.Sprintf("%.0f req/s, %.2f µs CPU/req, p99 %s, reordered %d, %.1f allocs/req, %d goroutines%s%s",
		r.Load.ReqPerS, r.CPUusPerReq, fmtUs(r.Load.P99us), r.Load.Reordered, r.AllocsPerReq, r.Goroutines, work, flag)
}
