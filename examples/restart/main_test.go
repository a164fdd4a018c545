//go:build unix

package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/getty-go/getty/internal/leakcheck"

	getty "github.com/getty-go/getty"
)

// The test binary doubles as the program: with this variable set it runs
// main, so the test and the copies the program starts on SIGHUP all run
// this example's code.
const envRunMain = "GETTY_RESTART_EXAMPLE_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(envRunMain) == "1" {
		main()
		return
	}
	// gost's default timer wheel lives for the whole process once getty
	// starts it at import (as upstream does); its goroutines are not leaks.
	goleak.VerifyTestMain(m, leakcheck.Options()...)
}

// program is the running example: its output lines and processes.
type program struct {
	lines chan string
	seen  []string // lines read so far
	first *exec.Cmd
}

func startProgram(t *testing.T) *program {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-addr", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), envRunMain+"=1")
	cmd.Stdout, cmd.Stderr = w, w // shared by every copy; EOF once all exit
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	p := &program{lines: make(chan string, 100), first: cmd}
	t.Cleanup(func() {
		if cmd.ProcessState == nil { // the test failed before it ended
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	go func() {
		defer close(p.lines)
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		r.Close()
	}()
	return p
}

// expect returns the first output line containing want and not except,
// waiting for it up to 15 s. Both processes write, so lines are matched in
// any order.
func (p *program) expect(t *testing.T, want, except string) string {
	t.Helper()
	match := func(l string) bool {
		return strings.Contains(l, want) && (except == "" || !strings.Contains(l, except))
	}
	for _, l := range p.seen {
		if match(l) {
			return l
		}
	}
	timeout := time.After(15 * time.Second)
	for {
		select {
		case l, ok := <-p.lines:
			if !ok {
				t.Fatalf("the program's output ended before %q", want)
			}
			t.Log(l)
			p.seen = append(p.seen, l)
			if match(l) {
				return l
			}
		case <-timeout:
			t.Fatalf("no %q from the program within 15s", want)
		}
	}
}

// pool sends echo requests from several goroutines over a client pool and
// counts what happens. A request whose session closes before its reply
// (the old process shutting down) is sent again on another session, as an
// RPC client resends an idempotent call; it fails only when that does not
// help within its attempts.
type pool struct {
	cli getty.Client

	mu      sync.Mutex
	pending map[string]pendingReq

	replies, retried, failed, dialFailures atomic.Int64
}

type pendingReq struct {
	s    getty.Session
	done chan bool // true: replied; false: its session closed
}

func (p *pool) OnOpen(getty.Session) error   { return nil }
func (p *pool) OnError(getty.Session, error) {}
func (p *pool) OnCron(getty.Session)         {}
func (p *pool) OnMessage(_ getty.Session, pkg any) {
	p.settle(string(pkg.(*getty.Frame).Payload), nil, true)
}
func (p *pool) OnClose(s getty.Session) { p.settle("", s, false) }

// settle ends the request named id, or every request on session s.
func (p *pool) settle(id string, s getty.Session, replied bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for k, r := range p.pending {
		if k == id || s != nil && r.s == s {
			r.done <- replied
			delete(p.pending, k)
		}
	}
}

// call sends one request and waits for its reply, resending it when its
// session closes or the write fails, as an RPC client resends an idempotent
// call within its timeout; false when it could not be completed in 5 s.
// Waiting for a session while all of them reconnect is not a resend.
func (p *pool) call(id string) bool {
	deadline := time.Now().Add(5 * time.Second)
	for sent := 0; time.Now().Before(deadline); {
		s, err := p.cli.Session()
		if err != nil {
			time.Sleep(20 * time.Millisecond) // all sessions reconnecting
			continue
		}
		if sent > 0 {
			p.retried.Add(1)
		}
		sent++
		done := make(chan bool, 1)
		p.mu.Lock()
		p.pending[id] = pendingReq{s: s, done: done}
		p.mu.Unlock()
		if _, _, err := s.WritePkg([]byte(id), time.Second); err != nil {
			p.settle(id, nil, false)
			time.Sleep(5 * time.Millisecond) // its session is closing
			continue
		}
		select {
		case ok := <-done:
			if ok {
				p.replies.Add(1)
				return true
			}
		case <-time.After(3 * time.Second):
			p.settle(id, nil, false)
		}
	}
	p.failed.Add(1)
	return false
}

// Restart the server under load: no dial is refused and no request fails.
func TestZeroDowntimeRestart(t *testing.T) {
	prog := startProgram(t)
	first := prog.expect(t, "serving on", "")
	var pid1 int
	var addr string
	fmt.Sscanf(first, "pid %d serving on %s", &pid1, &addr)

	p := &pool{pending: make(map[string]pendingReq)}
	p.cli = getty.NewTCPClient(getty.WithServerAddress(addr), getty.WithConnectionNumber(8),
		getty.WithReconnectInterval(int(10*time.Millisecond)), getty.WithMaxReconnectInterval(50*time.Millisecond),
		getty.WithDialContext(func(ctx context.Context, network, addr string) (net.Conn, error) {
			var d net.Dialer
			c, err := d.DialContext(ctx, network, addr)
			if err != nil {
				p.dialFailures.Add(1)
			}
			return c, err
		}))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.cli.RunEventLoopContext(ctx, func(s getty.Session) error {
		s.SetPkgHandler(&getty.LengthFieldCodec{})
		s.SetEventListener(p)
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	// Eight workers call in a loop until told to stop (at most 20 s).
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			deadline := time.Now().Add(20 * time.Second)
			for n := 0; time.Now().Before(deadline); n++ {
				select {
				case <-stop:
					return
				default:
				}
				p.call(fmt.Sprintf("w%d-%d", w, n))
			}
		}()
	}
	waitReplies := func(n int64) {
		deadline := time.Now().Add(10 * time.Second)
		for p.replies.Load() < n && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitReplies(500)
	before := p.replies.Load()

	if err := prog.first.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	prog.expect(t, fmt.Sprintf("pid %d: pid", pid1), "")
	second := prog.expect(t, "serving on", fmt.Sprintf("pid %d ", pid1)) // the new process
	var pid2 int
	fmt.Sscanf(second, "pid %d", &pid2)
	stopped2 := false
	t.Cleanup(func() {
		if pid2 > 0 && !stopped2 { // the test failed before it ended
			_ = syscall.Kill(pid2, syscall.SIGKILL)
		}
	})
	prog.expect(t, fmt.Sprintf("pid %d stopped", pid1), "")
	if err := prog.first.Wait(); err != nil {
		t.Errorf("the old process: %v", err)
	}
	atSwitch := p.replies.Load()
	waitReplies(atSwitch + 500) // served by the new process alone
	close(stop)
	wg.Wait()
	p.cli.Close()

	t.Logf("replies: %d before the switch, %d during, %d after; resent after a session closed: %d; failed: %d; refused dials: %d",
		before, atSwitch-before, p.replies.Load()-atSwitch, p.retried.Load(), p.failed.Load(), p.dialFailures.Load())
	if p.replies.Load() < atSwitch+500 {
		t.Errorf("the new process served %d requests, want 500", p.replies.Load()-atSwitch)
	}
	if n := p.failed.Load(); n != 0 {
		t.Errorf("%d requests failed", n)
	}
	if n := p.dialFailures.Load(); n != 0 {
		t.Errorf("%d dials failed: the socket was not open all along", n)
	}

	// Stop the new process and wait for its end (its output closes).
	if pid2 > 0 {
		_ = syscall.Kill(pid2, syscall.SIGTERM)
	}
	prog.expect(t, fmt.Sprintf("pid %d stopped", pid2), "")
	stopped2 = true
	for range prog.lines {
	}
}
