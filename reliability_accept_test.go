package getty_test

// Accept errors (descriptor exhaustion, in a helper process) and the
// connection cap. See reliability_test.go.

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	getty "github.com/getty-go/getty"
)

const relHelperEnv = "GETTY_RELIAB_HELPER"

// TestReliabHelperProcess is the child of TestReliabAcceptErrors: an echo
// server with few descriptors. It serves until its stdin closes.
func TestReliabHelperProcess(t *testing.T) {
	if os.Getenv(relHelperEnv) != "accept" {
		t.Skip("the server child of TestReliabAcceptErrors")
	}
	lim := syscall.Rlimit{Cur: 64, Max: 64}
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &old); err == nil && old.Max < lim.Max {
		lim.Max = old.Max
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		fmt.Fprintf(os.Stderr, "setrlimit: %v\n", err)
		os.Exit(2)
	}
	getty.SetLogger(relStderrLog{})
	srv := getty.NewTCPServer(getty.WithLocalAddress("127.0.0.1:0"))
	srv.RunEventLoop(withCodec(newRecorder(true)))
	if srv.Addr() == nil {
		os.Exit(3)
	}
	fmt.Printf("ADDR %s\n", srv.Addr())
	_, _ = io.Copy(io.Discard, os.Stdin)
	srv.Close()
	os.Exit(0)
}

// relStderrLog writes one line per log call, for the parent to read.
type relStderrLog struct{}

func (relStderrLog) line(level, s string) {
	fmt.Fprintf(os.Stderr, "%s %s\n", level, strings.ReplaceAll(s, "\n", " "))
}
func (l relStderrLog) Info(a ...any)             { l.line("INFO", fmt.Sprint(a...)) }
func (l relStderrLog) Warn(a ...any)             { l.line("WARN", fmt.Sprint(a...)) }
func (l relStderrLog) Error(a ...any)            { l.line("ERROR", fmt.Sprint(a...)) }
func (l relStderrLog) Debug(a ...any)            {}
func (l relStderrLog) Infof(f string, a ...any)  { l.line("INFO", fmt.Sprintf(f, a...)) }
func (l relStderrLog) Warnf(f string, a ...any)  { l.line("WARN", fmt.Sprintf(f, a...)) }
func (l relStderrLog) Errorf(f string, a ...any) { l.line("ERROR", fmt.Sprintf(f, a...)) }
func (l relStderrLog) Debugf(f string, a ...any) {}

// relCPUTicks reads a process's user+system CPU time in clock ticks.
func relCPUTicks(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:]) // fields from 3 on
	if len(f) < 13 {
		return 0, fmt.Errorf("short stat %q", s)
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64) // field 14, utime
	k, err2 := strconv.ParseInt(f[12], 10, 64) // field 15, stime
	return u + k, errors.Join(err1, err2)
}

// A server out of descriptors logs its accept errors and backs off (no
// spinning: its CPU stays low), then serves again once descriptors free up.
func TestReliabAcceptErrors(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("needs /proc and RLIMIT_NOFILE")
	}
	// It mostly waits (2.5 s of it measuring the child's backoff), and what
	// it measures is the child process's own CPU and log: it overlaps the
	// other parallel tests, none of which counts descriptors.
	t.Parallel()
	cmd := exec.Command(os.Args[0], "-test.run=^TestReliabHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), relHelperEnv+"=accept")
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	var (
		logMu sync.Mutex
		logs  []string
		logAt []time.Time
	)
	var readers sync.WaitGroup
	readers.Add(1)
	go func() {
		defer readers.Done()
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			logMu.Lock()
			logs, logAt = append(logs, sc.Text()), append(logAt, time.Now())
			logMu.Unlock()
		}
	}()
	addrCh := make(chan string, 1)
	readers.Add(1)
	go func() {
		defer readers.Done()
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "ADDR "); ok {
				addrCh <- a
			}
		}
	}()
	defer func() {
		stdin.Close()
		select {
		case err := <-exited:
			assert.NoError(t, err, "child exit")
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
			t.Error("child did not exit within 10s of its stdin closing")
		}
	}()
	go func() {
		readers.Wait() // Wait must come after the pipes are drained
		exited <- cmd.Wait()
	}()
	var addr string
	select {
	case addr = <-addrCh:
	case <-time.After(20 * time.Second):
		t.Fatal("child server did not start")
	}
	acceptErrors := func() (n int, last time.Time, backoffs []string) {
		logMu.Lock()
		defer logMu.Unlock()
		for i, l := range logs {
			if strings.Contains(l, "accept") {
				n++
				last = logAt[i]
				if _, b, ok := strings.Cut(l, `retry_in="`); ok {
					b, _, _ = strings.Cut(b, `"`)
					backoffs = append(backoffs, b)
				}
			}
		}
		return
	}

	// More connections than the child has descriptors for.
	const extra = 100
	conns := make([]net.Conn, 0, extra)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := 0; i < extra; i++ {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		require.NoError(t, err, "connection %d (the kernel queues what is not accepted)", i)
		conns = append(conns, c)
	}
	eventually(t, "an accept error in the child's log", func() bool { n, _, _ := acceptErrors(); return n > 0 })
	time.Sleep(500 * time.Millisecond)

	// Over 2 s: CPU and accept errors logged.
	pid := cmd.Process.Pid
	n0, _, _ := acceptErrors()
	cpu0, err := relCPUTicks(pid)
	require.NoError(t, err)
	time.Sleep(2 * time.Second)
	cpu1, err := relCPUTicks(pid)
	require.NoError(t, err)
	n1, _, backoffs := acceptErrors()
	const hz = 100 // USER_HZ on Linux
	cpuShare := float64(cpu1-cpu0) / hz / 2
	t.Logf("child at its descriptor limit: %.1f%% of a CPU over 2 s, %d accept errors logged in that window (%d in all); backoffs %v",
		100*cpuShare, n1-n0, n1, backoffs)
	assert.Less(t, cpuShare, 0.2, "the accept loop spins")
	assert.LessOrEqual(t, n1-n0, 6, "accept errors retried faster than the backoff allows")
	if assert.NotEmpty(t, backoffs) {
		assert.Equal(t, "5ms", backoffs[0], "first backoff")
		assert.Contains(t, backoffs, "1s", "backoff reaches its 1 s cap")
	}
	logMu.Lock()
	assert.True(t, slicesContains(logs, "too many open files"), "the accept error says why")
	logMu.Unlock()

	// Free the descriptors: service resumes.
	for _, c := range conns {
		c.Close()
	}
	conns = conns[:0]
	start := time.Now()
	var served error
	for time.Since(start) < 10*time.Second {
		var c net.Conn
		if c, served = net.DialTimeout("tcp", addr, 5*time.Second); served == nil {
			served = func() error {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(3 * time.Second))
				if _, err := c.Write(frame("back")); err != nil {
					return err
				}
				var hdr [4]byte
				if _, err := io.ReadFull(c, hdr[:]); err != nil {
					return err
				}
				b := make([]byte, binary.BigEndian.Uint32(hdr[:]))
				_, err := io.ReadFull(c, b)
				if err == nil && string(b) != "back" {
					err = fmt.Errorf("echo %q", b)
				}
				return err
			}()
			if served == nil {
				break
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	require.NoError(t, served, "a new client is served once descriptors are free")
	t.Logf("served again %v after the extra connections closed", time.Since(start).Round(time.Millisecond))
}

func slicesContains(lines []string, sub string) bool {
	for _, l := range lines {
		if strings.Contains(l, sub) {
			return true
		}
	}
	return false
}

// WithServerMaxConnections(n): a connection beyond the cap is closed at
// once (refused with 503 by a WebSocket server) while the first n are
// served, and a slot frees up when one of them leaves.
func TestReliabMaxConnections(t *testing.T) {
	run(t, func(t *testing.T, tr transport) {
		const n = 4
		relSilence(t)
		rec := newRelErrRecorder(true)
		srv := startServer(t, tr.newServer(t, getty.WithServerMaxConnections(n)), withCodec(rec))
		tg := relTargetOf(t, tr, srv)
		var peers []*relPeer
		for i := 0; i < n; i++ {
			p := relConnect(t, tg)
			require.NoError(t, p.echo("in"))
			peers = append(peers, p)
		}
		refused := func() time.Duration {
			t.Helper()
			start := time.Now()
			p, err := tg.connect()
			if err == nil {
				defer p.Close()
				require.Falsef(t, tg.ws, "upgrade beyond the cap of %d succeeded", n)
				_, err = p.waitClosed(5 * time.Second)
				require.NoError(t, err, "connection beyond the cap of %d still open", n)
			} else if tg.ws {
				assert.Contains(t, err.Error(), "status 503")
			}
			return time.Since(start)
		}
		took := refused()
		t.Logf("connection %d refused after %v", n+1, took.Round(time.Microsecond))
		assert.Less(t, took, time.Second, "refusal not immediate")
		for i, p := range peers {
			require.NoError(t, p.echo("still "+strconv.Itoa(i)), "session %d under the cap", i)
		}
		peers[0].Close()
		var p *relPeer
		eventually(t, "a slot to free up", func() bool {
			var err error
			p, err = tg.connect()
			if err == nil && p.echo("new") != nil {
				p.Close()
				p, err = nil, errors.New("closed")
			}
			return err == nil
		})
		p.Close()
	}, connected)
}
