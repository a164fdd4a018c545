// Command rpc runs a small request/response RPC over getty in one process:
// a server with the methods "echo", "upper" and "slow", and a client that
// keeps a pool of four sessions and makes calls with timeouts. Each message
// carries an id (see codec.go); the client registers every call by id,
// writes it on a session from Client.Session(), and waits for the reply or
// the end of the call's context. A reply that comes back after its caller
// gave up is discarded. The "slow" method outlasts its caller's timeout to
// show that path.
//
// By default the server runs OnMessage on a gost task pool without ordering,
// so a slow call holds one pool goroutine and nothing else. With -ordered it
// uses getty's built-in worker pool, which keeps each session's calls in
// order: then a call queued behind the slow one on the same connection waits
// for it (head-of-line blocking) and times out too. See README.md.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	gxsync "github.com/dubbogo/gost/sync"

	getty "github.com/getty-go/getty"
)

const (
	connections = 4
	callTimeout = 200 * time.Millisecond
	slowFor     = 500 * time.Millisecond // longer than callTimeout
)

func main() {
	ordered := flag.Bool("ordered", false, "dispatch with the built-in worker pool (calls of one session in order)")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := run(ctx, os.Stdout, *ordered); err != nil {
		fmt.Fprintln(os.Stderr, "rpc:", err)
		os.Exit(1)
	}
}

// printer serialises lines written from several goroutines.
type printer struct {
	mu  sync.Mutex
	out io.Writer
}

func (p *printer) printf(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.out, format+"\n", args...)
}

// rpcServer answers calls.
type rpcServer struct {
	getty.BaseListener
	p           *printer
	slowStarted chan uint64
}

func (h *rpcServer) OnMessage(s getty.Session, pkg any) {
	m := pkg.(*message)
	reply := &message{ID: m.ID, Kind: kindReply, Method: m.Method}
	switch m.Method {
	case "echo":
		reply.Body = m.Body
	case "upper":
		reply.Body = bytes.ToUpper(m.Body)
	case "slow":
		h.p.printf("server: slow #%d started, takes %s", m.ID, slowFor)
		h.slowStarted <- m.ID
		time.Sleep(slowFor) // stands for real work: a query, a disk, another service
		h.p.printf("server: slow #%d done, replying", m.ID)
		reply.Body = []byte("finally")
	default:
		reply.Kind = kindError
		reply.Body = fmt.Appendf(nil, "unknown method %q", m.Method)
	}
	if _, _, err := s.WritePkg(reply, time.Second); err != nil {
		h.p.printf("server: reply to #%d failed: %v", m.ID, err)
	}
}

func run(ctx context.Context, out io.Writer, ordered bool) error {
	p := &printer{out: out}

	opts := []getty.ServerOption{getty.WithLocalAddress("127.0.0.1:0")}
	var dispatch string
	if ordered {
		dispatch = "built-in worker pool of 4 (each session's calls in order, one at a time)"
		opts = append(opts, getty.WithServerWorkerPool(4))
	} else {
		dispatch = "gost task pool, unordered (a session's calls may run concurrently)"
		pool := gxsync.NewTaskPoolSimple(16) // at most 16 calls at once; AddTask blocks beyond
		defer pool.Close()                   // after the server: deferred calls run last-in first-out
		opts = append(opts, getty.WithServerTaskPool(pool))
	}
	server := getty.NewTCPServer(opts...)
	defer server.Close() // a no-op after Shutdown
	handler := &rpcServer{p: p, slowStarted: make(chan uint64, 4)}
	server.RunEventLoop(func(s getty.Session) error {
		s.SetPkgHandler(codec{})
		s.SetEventListener(handler)
		return nil
	})
	if server.Addr() == nil {
		return errors.New("server did not start (see the log)")
	}
	p.printf("server: listening on %s; dispatch: %s", server.Addr(), dispatch)

	late := make(chan uint64, 8)
	rc := &rpcClient{
		pending: map[uint64]*pendingCall{},
		onLate: func(m *message) {
			p.printf("client: discarded the late reply to %s #%d: its caller gave up", m.Method, m.ID)
			late <- m.ID
		},
	}
	rc.cli = getty.NewTCPClient(getty.WithServerAddress(server.Addr().String()), getty.WithConnectionNumber(connections))
	defer rc.cli.Close()
	dialCtx, cancelDial := context.WithTimeout(ctx, 5*time.Second)
	defer cancelDial()
	if err := rc.cli.RunEventLoopContext(dialCtx, func(s getty.Session) error {
		s.SetPkgHandler(codec{})
		s.SetEventListener(rc)
		return nil
	}); err != nil {
		return err
	}
	p.printf("client: %d sessions open", len(rc.cli.Sessions()))

	// call with a timeout and describe the outcome.
	type outcome struct {
		what    string
		reply   []byte
		err     error
		elapsed time.Duration
	}
	do := func(method, arg string) outcome {
		cctx, cancel := context.WithTimeout(ctx, callTimeout)
		defer cancel()
		start := time.Now()
		reply, err := rc.call(cctx, method, []byte(arg))
		return outcome{fmt.Sprintf("%s(%q)", method, arg), reply, err, time.Since(start)}
	}
	timedOut := 0
	show := func(o outcome) {
		if o.err != nil {
			if errors.Is(o.err, context.DeadlineExceeded) {
				timedOut++
			}
			p.printf("call %s failed after %s: %v", o.what, roughly(o.elapsed), o.err)
			return
		}
		p.printf("call %s = %q in %s", o.what, o.reply, roughly(o.elapsed))
	}

	show(do("echo", "hello"))
	show(do("upper", "getty rpc"))
	show(do("nope", ""))

	p.printf("a slow call with a %s timeout, and %d echo calls while it runs:", callTimeout, connections)
	slow := make(chan outcome, 1)
	go func() { slow <- do("slow", "take your time") }()
	select {
	case <-handler.slowStarted: // the slow call is on the server: the echoes below use all 4 sessions, one each
	case <-ctx.Done():
		return ctx.Err()
	}
	echoes := make([]outcome, connections)
	var wg sync.WaitGroup
	for i := range echoes {
		wg.Add(1)
		go func() { defer wg.Done(); echoes[i] = do("echo", fmt.Sprintf("ping %d", i+1)) }()
	}
	wg.Wait()
	show(<-slow)
	for _, o := range echoes {
		show(o)
	}

	// Every timed-out call's reply still comes back, later; wait for them to
	// be discarded so the output shows it.
	for range timedOut {
		select {
		case <-late:
		case <-time.After(2 * slowFor):
			return errors.New("a late reply never came")
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	p.printf("client: %d calls still pending", rc.inFlight())

	rc.cli.Close()
	shutdownCtx, cancelShutdown := context.WithTimeout(ctx, 2*time.Second)
	defer cancelShutdown()
	if err := server.Shutdown(shutdownCtx); err != nil {
		return err
	}
	st, _ := getty.EndpointStatsOf(server)
	p.printf("server stats: %d sessions served, %d requests in, %d replies out", st.SessionsTotal, st.ReadPkgs, st.WritePkgs)
	return nil
}

// roughly prints a duration for people: sub-millisecond calls are all alike.
func roughly(d time.Duration) string {
	if d < time.Millisecond {
		return "under 1ms"
	}
	return d.Round(time.Millisecond).String()
}
