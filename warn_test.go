package getty_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	getty "github.com/getty-go/getty"
)

// logCapture is an endpoint logger (WithServerLogger/WithClientLogger)
// whose JSON lines the test reads back, so tests need not touch the
// process-wide logger.
type logCapture struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func newLogCapture() (*logCapture, *slog.Logger) {
	c := &logCapture{}
	return c, slog.New(slog.NewJSONHandler(c, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func (c *logCapture) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.Write(p)
}

// records returns the lines at level or above whose message contains msg.
func (c *logCapture) records(level slog.Level, msg string) []map[string]any {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(c.buf.String(), "\n") {
		if line == "" {
			continue
		}
		var r map[string]any
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			continue
		}
		var lv slog.Level
		_ = lv.UnmarshalText([]byte(r["level"].(string)))
		if lv >= level && strings.Contains(r["msg"].(string), msg) {
			out = append(out, r)
		}
	}
	return out
}

func (c *logCapture) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.String()
}

func TestNoCodecOnServerWarnsOncePerEndpoint(t *testing.T) {
	logs, l := newLogCapture()
	srv := getty.NewTCPServer(getty.WithLocalAddress("127.0.0.1:0"), getty.WithServerLogger(l))
	startServer(t, srv, func(s getty.Session) error {
		s.SetEventListener(getty.BaseListener{}) // the codec is forgotten
		return nil
	})
	for i := 0; i < 3; i++ {
		waitEOF(t, rawDial(t, srv))
	}
	recs := logs.records(slog.LevelWarn, "configuration mistake")
	if len(recs) != 1 {
		t.Fatalf("want one WARN line for 3 sessions without a codec, got %d:\n%s", len(recs), logs)
	}
	r := recs[0]
	if !strings.Contains(r["error"].(string), "SetPkgHandler") || r["endpoint"] == nil || r["remote_addr"] == nil || r["session_id"] == nil {
		t.Fatalf("line lacks the error or the session's attributes: %v", r)
	}
}

func TestNoCodecOnClientReturnsAtOnce(t *testing.T) {
	srv := getty.NewTCPServer(getty.WithLocalAddress("127.0.0.1:0"))
	startServer(t, srv, withCodec(getty.BaseListener{}))
	logs, l := newLogCapture()
	cli := getty.NewTCPClient(getty.WithServerAddress(srv.Addr().String()), getty.WithClientLogger(l))
	defer cli.Close()
	ctx, cancel := contextWithTimeout(30 * time.Second)
	defer cancel()
	err := cli.RunEventLoopContext(ctx, func(s getty.Session) error { return nil })
	if !errors.Is(err, getty.ErrNoCodec) {
		t.Fatalf("RunEventLoopContext = %v, want ErrNoCodec", err)
	}
	if ctx.Err() != nil {
		t.Fatal("RunEventLoopContext waited for its context")
	}
	if len(logs.records(slog.LevelWarn, "configuration mistake")) != 1 {
		t.Fatalf("no WARN line:\n%s", logs)
	}

	// RunEventLoop, which has no context, stops waiting too.
	cli2 := getty.NewTCPClient(getty.WithServerAddress(srv.Addr().String()), getty.WithClientLogger(l))
	defer cli2.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		cli2.RunEventLoop(func(s getty.Session) error { return nil })
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("RunEventLoop still waits for a session that cannot open")
	}
}

func TestRunEventLoopContextDialErrorIsMatchable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nobody listens: connection refused
	cli := getty.NewTCPClient(getty.WithServerAddress(addr), getty.WithClientLogger(slog.New(slog.NewTextHandler(&bytes.Buffer{}, nil))))
	defer cli.Close()
	ctx, cancel := contextWithTimeout(300 * time.Millisecond)
	defer cancel()
	err = cli.RunEventLoopContext(ctx, withCodec(getty.BaseListener{}))
	var op *net.OpError
	if !errors.Is(err, context.DeadlineExceeded) || !errors.As(err, &op) || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("err = %v: want DeadlineExceeded, a *net.OpError and ECONNREFUSED all matchable", err)
	}
	if op.Op != "dial" {
		t.Fatalf("OpError.Op = %q, want dial", op.Op)
	}
}

// oversize sends a header announcing a 5,000-byte frame, over the default
// 4,096-byte limit, and waits for the server to close the connection.
func oversize(t *testing.T, srv getty.Server) {
	c := rawDial(t, srv)
	var hdr [4]byte
	binary.BigEndian.PutUint32(hdr[:], 5000)
	if _, err := c.Write(hdr[:]); err != nil {
		t.Fatal(err)
	}
	waitEOF(t, c)
}

type handlesErrors struct {
	getty.BaseListener
	mu   sync.Mutex
	errs []error
}

func (h *handlesErrors) OnError(_ getty.Session, err error) {
	h.mu.Lock()
	h.errs = append(h.errs, err)
	h.mu.Unlock()
}

func TestUnhandledErrorIsLogged(t *testing.T) {
	const msg = "no OnError handled"
	t.Run("BaseListener", func(t *testing.T) {
		logs, l := newLogCapture()
		srv := getty.NewTCPServer(getty.WithLocalAddress("127.0.0.1:0"), getty.WithServerLogger(l))
		startServer(t, srv, func(s getty.Session) error {
			s.SetPkgHandler(&getty.LengthFieldCodec{}) // default limit: 4,096 bytes
			s.SetEventListener(getty.BaseListener{})
			return nil
		})
		oversize(t, srv)
		eventually(t, "the WARN line", func() bool { return len(logs.records(slog.LevelWarn, msg)) == 1 })
		r := logs.records(slog.LevelWarn, msg)[0]
		if !strings.Contains(r["error"].(string), "message too long") {
			t.Fatalf("error attribute = %v", r["error"])
		}
	})
	t.Run("handled", func(t *testing.T) {
		logs, l := newLogCapture()
		h := &handlesErrors{}
		srv := getty.NewTCPServer(getty.WithLocalAddress("127.0.0.1:0"), getty.WithServerLogger(l))
		startServer(t, srv, func(s getty.Session) error {
			s.SetPkgHandler(&getty.LengthFieldCodec{})
			s.SetEventListener(h)
			return nil
		})
		oversize(t, srv)
		eventually(t, "OnError", func() bool { h.mu.Lock(); defer h.mu.Unlock(); return len(h.errs) == 1 })
		srv.Close() // OnClose has run: any line is written by now
		if n := len(logs.records(slog.LevelWarn, msg)); n != 0 {
			t.Fatalf("an error OnError handled was logged %d times:\n%s", n, logs)
		}
	})
	t.Run("rate-limited", func(t *testing.T) {
		logs, l := newLogCapture()
		srv := getty.NewTCPServer(getty.WithLocalAddress("127.0.0.1:0"), getty.WithServerLogger(l))
		startServer(t, srv, withCodec(getty.BaseListener{}, func(s getty.Session) { s.SetMaxMsgLen(16) }))
		const sessions = 20
		for i := 0; i < sessions; i++ {
			oversize(t, srv)
		}
		srv.Close()
		// At most one line a second: 20 sessions ended this fast cannot
		// all be logged, and at least the first one is.
		if n := len(logs.records(slog.LevelWarn, msg)); n < 1 || n >= sessions {
			t.Fatalf("%d lines for %d unhandled errors:\n%s", n, sessions, logs)
		}
	})
}

func TestPanicLoggedWithStackAttribute(t *testing.T) {
	logs, l := newLogCapture()
	srv := getty.NewTCPServer(getty.WithLocalAddress("127.0.0.1:0"), getty.WithServerLogger(l))
	startServer(t, srv, withCodec(panicky{}))
	c := rawDial(t, srv)
	if _, err := c.Write(frame("x")); err != nil {
		t.Fatal(err)
	}
	waitEOF(t, c)
	eventually(t, "the ERROR line", func() bool { return len(logs.records(slog.LevelError, "panic")) > 0 })
	r := logs.records(slog.LevelError, "panic")[0]
	errAttr, _ := r["error"].(string)
	stack, _ := r["stack"].(string)
	if !strings.Contains(errAttr, "boom") || strings.Contains(errAttr, "goroutine") || !strings.Contains(stack, "goroutine") {
		t.Fatalf("want the panic value in error and the stack in its own attribute: %v", r)
	}
}

type panicky struct{ getty.BaseListener }

func (panicky) OnMessage(getty.Session, any) { panic("boom") }

func TestWrongUnitWarnings(t *testing.T) {
	t.Run("cron period", func(t *testing.T) {
		logs, l := newLogCapture()
		srv := getty.NewTCPServer(getty.WithLocalAddress("127.0.0.1:0"), getty.WithServerLogger(l))
		startServer(t, srv, withCodec(getty.BaseListener{}, func(s getty.Session) {
			s.SetCronPeriod(int(time.Second)) // means 11.6 days
		}))
		c1, c2 := rawDial(t, srv), rawDial(t, srv)
		_, _ = c1, c2
		eventually(t, "two sessions", func() bool { return srv.SessionCount() == 2 })
		recs := logs.records(slog.LevelWarn, "SetCronPeriod takes milliseconds")
		if len(recs) != 1 || !strings.Contains(recs[0]["taken_as"].(string), "11.6 days") {
			t.Fatalf("want one WARN saying 11.6 days:\n%s", logs)
		}
	})
	t.Run("reconnect interval", func(t *testing.T) {
		logs, l := newLogCapture()
		cli := getty.NewTCPClient(getty.WithServerAddress("127.0.0.1:1"), getty.WithReconnectInterval(300), getty.WithClientLogger(l))
		defer cli.Close()
		recs := logs.records(slog.LevelWarn, "WithReconnectInterval takes nanoseconds")
		if len(recs) != 1 || recs[0]["taken_as"] != "300ns" || recs[0]["if_meant_ms"] != "300ms" {
			t.Fatalf("want one WARN saying 300ns:\n%s", logs)
		}
	})
}

func TestServerSessions(t *testing.T) {
	srv := getty.NewTCPServer(getty.WithLocalAddress("127.0.0.1:0"))
	startServer(t, srv, withCodec(getty.BaseListener{}))
	if srv.SessionCount() != 0 || len(srv.Sessions()) != 0 {
		t.Fatal("sessions before any connection")
	}
	// Readers while sessions come and go (run with -race).
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			for _, s := range srv.Sessions() {
				_, _ = s.WriteBytes(frame("hi"))
			}
			_ = srv.SessionCount()
		}
	}()
	for round := 0; round < 3; round++ {
		cli := getty.NewTCPClient(getty.WithServerAddress(srv.Addr().String()), getty.WithConnectionNumber(3))
		startClient(t, cli, withCodec(getty.BaseListener{}))
		eventually(t, "3 sessions", func() bool { return srv.SessionCount() == 3 && len(srv.Sessions()) == 3 })
		cli.Close()
		eventually(t, "0 sessions", func() bool { return srv.SessionCount() == 0 && len(srv.Sessions()) == 0 })
	}
	close(stop)
	wg.Wait()
}

// printfLog is a Logger of the upstream kind, without attributes.
type printfLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *printfLog) add(level string, a ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, level+" "+fmt.Sprint(a...))
}

func (l *printfLog) find(sub string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, s := range l.lines {
		if strings.Contains(s, sub) {
			out = append(out, s)
		}
	}
	return out
}

func (l *printfLog) Info(a ...any)             { l.add("INFO", a...) }
func (l *printfLog) Warn(a ...any)             { l.add("WARN", a...) }
func (l *printfLog) Error(a ...any)            { l.add("ERROR", a...) }
func (l *printfLog) Debug(a ...any)            { l.add("DEBUG", a...) }
func (l *printfLog) Infof(f string, a ...any)  { l.add("INFO", fmt.Sprintf(f, a...)) }
func (l *printfLog) Warnf(f string, a ...any)  { l.add("WARN", fmt.Sprintf(f, a...)) }
func (l *printfLog) Errorf(f string, a ...any) { l.add("ERROR", fmt.Sprintf(f, a...)) }
func (l *printfLog) Debugf(f string, a ...any) { l.add("DEBUG", fmt.Sprintf(f, a...)) }

// Without WithServerLogger, lines go to the process-wide Logger (upstream's
// SetLogger); one that is not slog-based gets the attributes as key="value".
func TestGlobalPrintfLoggerGetsAttributes(t *testing.T) {
	l := &printfLog{}
	prev := getty.GetLogger()
	getty.SetLogger(l)
	t.Cleanup(func() { getty.SetLogger(prev) })

	srv := getty.NewTCPServer(getty.WithLocalAddress("127.0.0.1:0"))
	startServer(t, srv, func(s getty.Session) error {
		s.SetPkgHandler(&getty.LengthFieldCodec{})
		return nil // no listener: BaseListener
	})
	oversize(t, srv)
	eventually(t, "the WARN line", func() bool { return len(l.find("no OnError handled")) == 1 })
	line := l.find("no OnError handled")[0]
	for _, want := range []string{"WARN getty: session ended", `endpoint="TCP_SERVER#`, `remote_addr="127.0.0.1:`, `session_id="`, "message too long"} {
		if !strings.Contains(line, want) {
			t.Fatalf("line %q lacks %q", line, want)
		}
	}
}

// A dial that fails for the client's own settings ends RunEventLoopContext
// at once, with the cause, instead of when its context ends.
func TestClientConfigDialErrorReturnsAtOnce(t *testing.T) {
	srv := getty.NewTCPServer(getty.WithLocalAddress("127.0.0.1:0"))
	startServer(t, srv, withCodec(getty.BaseListener{}))
	for _, tc := range []struct {
		name string
		opts []getty.ClientOption
		want string
	}{
		{"no address", nil, "no server address"},
		{"TLS without a builder", []getty.ClientOption{getty.WithServerAddress(srv.Addr().String()), getty.WithClientSslEnabled(true)}, "TlsConfigBuilder"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			logs, l := newLogCapture()
			cli := getty.NewTCPClient(append(tc.opts, getty.WithClientLogger(l))...)
			defer cli.Close()
			ctx, cancel := contextWithTimeout(30 * time.Second)
			defer cancel()
			err := cli.RunEventLoopContext(ctx, withCodec(getty.BaseListener{}))
			if err == nil || ctx.Err() != nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("RunEventLoopContext = %v (ctx: %v), want an error about %q at once", err, ctx.Err(), tc.want)
			}
			if len(logs.records(slog.LevelWarn, "configuration mistake")) != 1 {
				t.Fatalf("want one WARN line:\n%s", logs)
			}
		})
	}
}
