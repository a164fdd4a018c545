// Command metrics runs a getty line-echo server and exports its counters to
// Prometheus on /metrics, through a custom collector (collector.go) that
// reads getty.EndpointStatsOf at each scrape.
//
//	go run .                 # echo on 127.0.0.1:8090, metrics on http://127.0.0.1:9100/metrics, until Ctrl-C
//	go run . -once           # self-contained: traffic from a built-in client, one scrape printed, exit
//
// The echo server answers every line with the same line; the line "panic"
// makes its handler panic, which getty recovers from by closing that
// session, so getty_panics_total has something to count.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	getty "github.com/getty-go/getty"
)

func main() {
	metricsAddr := flag.String("addr", "127.0.0.1:9100", "address of the /metrics HTTP server")
	echoAddr := flag.String("echo", "127.0.0.1:8090", "address of the getty echo server")
	once := flag.Bool("once", false, "run a client against the server on free ports, print one scrape of /metrics, exit")
	flag.Parse()

	var err error
	if *once {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		err = runOnce(ctx, os.Stdout)
	} else {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		err = serve(ctx, *echoAddr, *metricsAddr, nil, os.Stdout)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "metrics:", err)
		os.Exit(1)
	}
}

// lineEcho answers each line with itself; "panic" panics on purpose.
type lineEcho struct {
	getty.BaseListener
	p *printer
}

func (lineEcho) OnMessage(s getty.Session, pkg any) {
	if string(pkg.(*getty.Frame).Payload) == "panic" {
		panic("asked to panic") // getty recovers, closes this session, counts it
	}
	_, _, _ = s.WritePkg(pkg, time.Second) // a failed write closes the session; OnError is told
}

// OnError is where getty reports what ended a session, a recovered panic
// (*getty.PanicError, with the stack) included.
func (h lineEcho) OnError(s getty.Session, err error) {
	var pe *getty.PanicError
	if errors.As(err, &pe) {
		h.p.printf("server: session %d: %s panicked: %v", s.ID(), pe.Callback, pe.Value)
		return
	}
	h.p.printf("server: session %d: %v", s.ID(), err)
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

var lines = &getty.DelimiterCodec{} // "\n"-terminated lines: try it with nc

// logger is the echo server's own logger (getty.WithServerLogger): getty's
// lines on stderr, without the time and without the stack of a recovered
// panic, which the handler's OnError prints briefly instead.
var logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{
	ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey || a.Key == "stack" {
			return slog.Attr{}
		}
		return a
	},
}))

// startEcho starts the echo server on addr.
func startEcho(addr string, p *printer) (getty.Server, error) {
	server := getty.NewTCPServer(getty.WithLocalAddress(addr), getty.WithServerWorkerPool(2),
		getty.WithServerLogger(logger))
	server.RunEventLoop(func(s getty.Session) error {
		s.SetPkgHandler(lines)
		s.SetEventListener(lineEcho{p: p})
		return nil
	})
	if server.Addr() == nil {
		server.Close()
		return nil, fmt.Errorf("echo server on %s did not start (see the log)", addr)
	}
	return server, nil
}

// registry returns a registry with a getty collector per endpoint. Add
// collectors.NewGoCollector() and collectors.NewProcessCollector(...) for
// the runtime's and the process's metrics.
func registry(eps map[string]getty.EndPoint) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	for name, ep := range eps {
		reg.MustRegister(newGettyCollector(name, ep))
	}
	return reg
}

// serve runs the echo server on echoAddr and /metrics on metricsAddr until
// ctx ends. ready, if not nil, receives the metrics URL once both listen.
func serve(ctx context.Context, echoAddr, metricsAddr string, ready chan<- string, out io.Writer) error {
	p := &printer{out: out}
	server, err := startEcho(echoAddr, p)
	if err != nil {
		return err
	}
	defer server.Close()

	ln, err := net.Listen("tcp", metricsAddr)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	reg := registry(map[string]getty.EndPoint{"echo": server})
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()

	url := "http://" + ln.Addr().String() + "/metrics"
	p.printf("echo server on %s (try: printf 'hi\\n' | nc -q1 %s), metrics on %s",
		server.Addr(), strings.Replace(server.Addr().String(), ":", " ", 1), url)
	if ready != nil {
		ready <- url
	}

	select {
	case err = <-served: // the HTTP server failed
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if herr := hs.Shutdown(shutdownCtx); herr != nil && err == nil {
		err = herr
	}
	if gerr := server.Shutdown(shutdownCtx); gerr != nil && err == nil {
		err = gerr
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// runOnce starts the echo server on a free port, exchanges a few lines with
// it from a getty client, makes one connection panic the handler, scrapes
// the metrics of both endpoints once through httptest and prints the getty
// samples.
func runOnce(ctx context.Context, out io.Writer) error {
	p := &printer{out: out}
	server, err := startEcho("127.0.0.1:0", p)
	if err != nil {
		return err
	}
	defer server.Close()

	var replies sync.WaitGroup
	client := getty.NewTCPClient(getty.WithServerAddress(server.Addr().String()), getty.WithConnectionNumber(2))
	defer client.Close()
	dialCtx, cancelDial := context.WithTimeout(ctx, 5*time.Second)
	defer cancelDial()
	if err := client.RunEventLoopContext(dialCtx, func(s getty.Session) error {
		s.SetPkgHandler(lines)
		s.SetEventListener(countReplies{wg: &replies})
		return nil
	}); err != nil {
		return err
	}
	const sent = 10
	for i := range sent {
		s, err := client.Session()
		if err != nil {
			return err
		}
		replies.Add(1)
		if _, _, err := s.WritePkg(fmt.Sprintf("line %d", i+1), time.Second); err != nil {
			return err
		}
	}
	replies.Wait()
	p.printf("client: %d lines echoed over %d sessions", sent, len(client.Sessions()))

	if err := provokePanic(ctx, server.Addr().String()); err != nil {
		return err
	}
	// Counters move just after the event: a write is counted once its
	// syscall returns (the peer may already have the reply), and a closed
	// session's panic once its OnClose has run. Wait for both so the
	// numbers printed below are exact; a real scrape simply sees them at the
	// next one.
	for st, _ := getty.EndpointStatsOf(server); st.Panics == 0 || st.WritePkgs < sent; st, _ = getty.EndpointStatsOf(server) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
	p.printf(`a plain connection sent "panic": the server recovered, closed that session and counted it`)

	reg := registry(map[string]getty.EndPoint{"echo": server, "echo-client": client})
	scraper := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer scraper.Close()
	body, err := scrape(ctx, scraper.URL+"/metrics")
	if err != nil {
		return err
	}
	p.printf("GET %s/metrics:", scraper.URL)
	for _, l := range strings.Split(body, "\n") {
		if strings.HasPrefix(l, "getty_") { // the samples; the # HELP and # TYPE lines are skipped
			p.printf("  %s", l)
		}
	}
	return nil
}

type countReplies struct {
	getty.BaseListener
	wg *sync.WaitGroup
}

func (c countReplies) OnMessage(getty.Session, any) { c.wg.Done() }

// provokePanic sends "panic" on a plain connection and waits until the
// server closes it.
func provokePanic(ctx context.Context, addr string) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(conn, "panic\n"); err != nil {
		return err
	}
	if _, err := bufio.NewReader(conn).ReadString('\n'); !errors.Is(err, io.EOF) {
		return fmt.Errorf("expected the server to close the connection, got %v", err)
	}
	return nil
}

func scrape(ctx context.Context, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	req.Close = true // one scrape: keep no idle connection behind
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}
