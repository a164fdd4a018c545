// A running server process: start, events, stats, stop, and the CPU and
// memory figures read from /proc.

package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

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
	args := []string{"-impl", impl, "-workers", strconv.Itoa(o.workers), "-gost-workers", strconv.Itoa(o.gostWorkers),
		"-ants-workers", strconv.Itoa(o.antsWorkers)}
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

// serverStats is one answer to the server's "stats" request.
type serverStats struct {
	Goroutines int
	Mallocs    uint64
	// -work block only: handlers run, their summed wall time in ns, the
	// most running at once (cmd/echoserver/work.go).
	WorkN, WorkNs, WorkMax int64
}

func (sp *serverProc) stats() (st serverStats, ok bool) {
	if _, err := io.WriteString(sp.stdin, "stats\n"); err != nil {
		return st, false
	}
	ev, err := sp.waitEvent("stats", 5*time.Second)
	if err != nil {
		return st, false
	}
	num := func(k string) float64 { v, _ := ev[k].(float64); return v }
	st = serverStats{Goroutines: int(num("goroutines")), Mallocs: uint64(num("mallocs")),
		WorkN: int64(num("work_n")), WorkNs: int64(num("work_ns")), WorkMax: int64(num("work_max"))}
	return st, true
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
