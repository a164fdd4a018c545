package getty_test

import (
	"io"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	getty "github.com/getty-go/getty"
)

// idleSessions is how many idle connections BenchmarkIdleSession holds:
// two descriptors each (both ends live in this process).
const idleSessions = 5000

// BenchmarkIdleSession measures what an idle TCP session costs the server,
// with a read timeout and a cron period set (issue 14's idle scenario). It
// opens idleSessions connections once, whatever b.N is, so run it with
// -benchtime=1x:
//
//	go test -run '^$' -bench IdleSession -benchtime=1x .
//
// The clients are raw sockets (descriptors, no Go objects), so every byte
// counted is the server's. Reported per session:
//   - alloc-B/accept: bytes allocated from accepting to the session's
//     reader being parked (garbage included: what RSS sees before a GC);
//   - heap-B/session: live heap after a GC;
//   - stack-B/session: goroutine stacks in use;
//   - rss-B/session: VmRSS growth before a GC, what the benchmark/ idle
//     scenario measures across processes.
//
// The "net" case is the floor: a goroutine per connection parked in Read.
// Run one case per process (-bench 'IdleSession/inline$'): goroutines and
// stack spans left over from an earlier case are reused and hide costs.
func BenchmarkIdleSession(b *testing.B) {
	cases := []struct {
		name  string
		serve func(b *testing.B, opened func()) (addr string, stop func())
	}{
		{"net", serveNetIdle},
		{"inline", func(b *testing.B, opened func()) (string, func()) { return serveGettyIdle(b, opened) }},
		{"workerpool", func(b *testing.B, opened func()) (string, func()) {
			return serveGettyIdle(b, opened, getty.WithServerWorkerPool(100))
		}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) { measureIdle(b, c.serve) })
	}
}

func measureIdle(b *testing.B, serve func(*testing.B, func()) (string, func())) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil || lim.Cur < 2*idleSessions+100 {
		b.Skipf("needs RLIMIT_NOFILE >= %d", 2*idleSessions+100)
	}
	opened := make(chan struct{}, idleSessions)
	addr, stop := serve(b, func() { opened <- struct{}{} })
	defer stop()
	port := addrPort(b, addr)

	before := memStats(true)
	rss0 := vmRSS()
	fds := make([]int, 0, idleSessions)
	defer func() {
		for _, fd := range fds {
			_ = syscall.Close(fd)
		}
	}()
	for i := 0; i < idleSessions; i++ {
		fd, err := rawConnect(port)
		if err != nil {
			b.Fatalf("connection %d: %v", i, err)
		}
		fds = append(fds, fd)
	}
	timeout := time.NewTimer(10 * time.Second)
	defer timeout.Stop()
	for i := 0; i < idleSessions; i++ {
		select {
		case <-opened:
		case <-timeout.C:
			b.Fatalf("%d of %d sessions opened", i, idleSessions)
		}
	}
	time.Sleep(200 * time.Millisecond) // let every reader park
	burst := memStats(false)
	rss := vmRSS()
	after := memStats(true)

	n := float64(idleSessions)
	b.ReportMetric(float64(burst.TotalAlloc-before.TotalAlloc)/n, "alloc-B/accept")
	b.ReportMetric(float64(burst.Mallocs-before.Mallocs)/n, "allocs/accept")
	b.ReportMetric(float64(rss-rss0)/n, "rss-B/session")
	b.ReportMetric((float64(after.HeapAlloc)-float64(before.HeapAlloc))/n, "heap-B/session")
	b.ReportMetric((float64(after.StackInuse)-float64(before.StackInuse))/n, "stack-B/session")
	b.ReportMetric((float64(burst.StackInuse)-float64(before.StackInuse))/n, "stackburst-B/session")
	for i := 0; i < b.N; i++ { // one measurement, whatever b.N
	}
}

func memStats(gc bool) runtime.MemStats {
	if gc {
		runtime.GC()
		runtime.GC()
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms
}

// vmRSS returns the process's resident set in bytes, 0 if unknown.
func vmRSS() int64 {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(status), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "VmRSS:" {
			kib, _ := strconv.ParseInt(f[1], 10, 64)
			return kib << 10
		}
	}
	return 0
}

func addrPort(b *testing.B, addr string) int {
	ta, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	return ta.Port
}

// rawConnect opens a blocking loopback TCP connection that is only a
// descriptor, so the client side adds nothing to the Go heap.
func rawConnect(port int) (int, error) {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	if err := syscall.Connect(fd, &syscall.SockaddrInet4{Port: port, Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		_ = syscall.Close(fd)
		return -1, err
	}
	return fd, nil
}

type idleListener struct {
	getty.BaseListener
	opened func()
}

func (l idleListener) OnOpen(getty.Session) error {
	l.opened()
	return nil
}

func serveGettyIdle(b *testing.B, opened func(), opts ...getty.ServerOption) (string, func()) {
	srv := getty.NewTCPServer(append(opts, getty.WithLocalAddress("127.0.0.1:0"))...)
	srv.RunEventLoop(func(s getty.Session) error {
		s.SetPkgHandler(&getty.LengthFieldCodec{})
		s.SetEventListener(idleListener{opened: opened})
		s.SetReadTimeout(time.Second)
		s.SetCronPeriod(20_000)
		return nil
	})
	if srv.Addr() == nil {
		b.Fatal("server did not listen")
	}
	return srv.Addr().String(), srv.Close
}

// serveNetIdle is a goroutine-per-connection server whose goroutines park
// in Read: the floor getty's design is measured against.
func serveNetIdle(b *testing.B, opened func()) (string, func()) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				var one [1]byte
				opened()
				_, _ = io.ReadFull(c, one[:])
			}()
		}
	}()
	return ln.Addr().String(), func() {
		ln.Close()
		<-done
	}
}
