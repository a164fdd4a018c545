// Package fault runs a getty client pool against a getty server through
// toxiproxy (in process, on loopback) and injects faults one after the
// other: latency, every byte in its own segment, a reset in the middle of a
// frame, a connection cut after a few bytes, and a black hole. After each
// fault is removed the pool must recover, and no message may ever reach the
// server twice.
//
// It is its own module so that toxiproxy and its dependencies stay out of
// getty's go.mod. Run it with `make fault`.
package fault

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/getty-go/getty/internal/leakcheck"

	getty "github.com/getty-go/getty"
)

// server counts every numbered message it receives and acknowledges it;
// heartbeats are echoed.
type server struct {
	getty.BaseListener
	mu   sync.Mutex
	seen map[int]int
	dups atomic.Int64
}

func (s *server) OnMessage(sess getty.Session, pkg any) {
	p := string(pkg.(*getty.Frame).Payload)
	if p == "hb" {
		_, _, _ = sess.WritePkg("hb", time.Second)
		return
	}
	id, err := strconv.Atoi(strings.TrimPrefix(p, "n:"))
	if err != nil {
		return
	}
	s.mu.Lock()
	s.seen[id]++
	if s.seen[id] > 1 {
		s.dups.Add(1)
	}
	s.mu.Unlock()
	_, _, _ = sess.WritePkg("ack:"+strconv.Itoa(id), time.Second)
}

// client records acknowledgements and closes a session silent for longer
// than idle (the user's half-open check), sending heartbeats meanwhile.
type client struct {
	getty.BaseListener
	idle time.Duration

	mu      sync.Mutex
	acked   map[int]int
	dupAcks atomic.Int64
	idles   atomic.Int64
	closes  atomic.Int64
}

func (c *client) OnCron(s getty.Session) {
	if time.Since(s.GetActive()) > c.idle {
		c.idles.Add(1)
		s.Close()
		return
	}
	_, _, _ = s.WritePkg("hb", 200*time.Millisecond)
}

func (c *client) OnClose(getty.Session) { c.closes.Add(1) }

func (c *client) OnMessage(_ getty.Session, pkg any) {
	p := string(pkg.(*getty.Frame).Payload)
	id, err := strconv.Atoi(strings.TrimPrefix(p, "ack:"))
	if err != nil || !strings.HasPrefix(p, "ack:") {
		return
	}
	c.mu.Lock()
	c.acked[id]++
	if c.acked[id] > 1 {
		c.dupAcks.Add(1)
	}
	c.mu.Unlock()
}

func (c *client) isAcked(id int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.acked[id] > 0
}

// rig is the server, the proxy in front of it and the client pool.
type rig struct {
	t     *testing.T
	srv   *server
	cli   *client
	pool  getty.Client
	proxy *toxiproxy.Proxy
	next  int
}

func codec(l getty.EventListener, cron time.Duration) getty.NewSessionCallback {
	return func(s getty.Session) error {
		s.SetPkgHandler(&getty.LengthFieldCodec{})
		s.SetEventListener(l)
		s.SetReadTimeout(2 * time.Second)
		if cron > 0 {
			s.SetCronPeriod(int(cron / time.Millisecond))
		}
		return nil
	}
}

// send writes n numbered messages round-robin over the pool, pausing gap
// between them, and returns the ids whose WritePkg returned nil.
func (r *rig) send(n int, gap time.Duration) (written []int) {
	for i := 0; i < n; i++ {
		id := r.next
		r.next++
		if s, err := r.pool.Session(); err == nil {
			if _, _, err := s.WritePkg("n:"+strconv.Itoa(id), 300*time.Millisecond); err == nil {
				written = append(written, id)
			}
		}
		if gap > 0 {
			time.Sleep(gap)
		}
	}
	return written
}

// waitAcked waits until every id is acknowledged; it returns those that
// were not within timeout.
func (r *rig) waitAcked(ids []int, timeout time.Duration) (missing []int) {
	deadline := time.Now().Add(timeout)
	for {
		missing = missing[:0]
		for _, id := range ids {
			if !r.cli.isAcked(id) {
				missing = append(missing, id)
			}
		}
		if len(missing) == 0 || time.Now().After(deadline) {
			return missing
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// recovered waits for the pool to hold 2 sessions again, each of which
// carries messages end to end.
func (r *rig) recovered(timeout time.Duration) (time.Duration, error) {
	start := time.Now()
	deadline := start.Add(timeout)
	for time.Now().Before(deadline) {
		if len(r.pool.Sessions()) == 2 {
			ids := r.send(20, 0)
			if len(ids) == 20 && len(r.waitAcked(ids, 2*time.Second)) == 0 {
				return time.Since(start), nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start), fmt.Errorf("pool not recovered within %v (%d sessions)", timeout, len(r.pool.Sessions()))
}

func (r *rig) addToxic(name, typ, stream, attrs string) {
	r.t.Helper()
	js := fmt.Sprintf(`{"name":%q,"type":%q,"stream":%q,"toxicity":1.0,"attributes":%s}`, name, typ, stream, attrs)
	if _, err := r.proxy.Toxics.AddToxicJson(strings.NewReader(js)); err != nil {
		r.t.Fatalf("add toxic %s: %v", name, err)
	}
}

func (r *rig) removeToxic(name string) {
	r.t.Helper()
	if err := r.proxy.Toxics.RemoveToxic(context.Background(), name); err != nil {
		r.t.Fatalf("remove toxic %s: %v", name, err)
	}
}

func TestFaultInjection(t *testing.T) {
	defer goleak.VerifyNone(t, leakcheck.Options(
		// toxiproxy's own link goroutines sometimes outlive Proxy.Stop
		// (a toxic stub blocked on a channel send): not getty's.
		goleak.IgnoreAnyFunction("github.com/Shopify/toxiproxy/v2/toxics.(*ToxicStub).Run"),
		goleak.IgnoreAnyFunction("github.com/Shopify/toxiproxy/v2.(*ToxicLink).read"),
		goleak.IgnoreAnyFunction("github.com/Shopify/toxiproxy/v2.(*ToxicLink).write"),
	)...)
	getty.SetLogger(nil) // the faults make getty log a lot; the test checks outcomes

	srv := &server{seen: map[int]int{}}
	gs := getty.NewTCPServer(getty.WithLocalAddress("127.0.0.1:0"))
	gs.RunEventLoop(codec(srv, 0))
	if gs.Addr() == nil {
		t.Fatal("server did not listen")
	}
	defer gs.Close()

	api := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), zerolog.Nop())
	proxy := toxiproxy.NewProxy(api, "getty", "127.0.0.1:0", gs.Addr().String())
	if err := proxy.Start(); err != nil {
		t.Fatalf("proxy: %v", err)
	}
	defer proxy.Stop()

	cli := &client{idle: 600 * time.Millisecond, acked: map[int]int{}}
	pool := getty.NewTCPClient(
		getty.WithServerAddress(proxy.Listen),
		getty.WithConnectionNumber(2),
		getty.WithReconnectInterval(int(50*time.Millisecond)),
	)
	defer pool.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := pool.RunEventLoopContext(ctx, codec(cli, 100*time.Millisecond)); err != nil {
		t.Fatalf("client: %v", err)
	}
	r := &rig{t: t, srv: srv, cli: cli, pool: pool, proxy: proxy}

	if missing := r.waitAcked(r.send(200, 0), 5*time.Second); len(missing) > 0 {
		t.Fatalf("baseline: %d messages not acknowledged", len(missing))
	}

	faults := []struct {
		name     string
		toxics   [][3]string // type, stream, attributes
		lossless bool        // connections survive: every written message must arrive
	}{
		{"latency 100ms each way", [][3]string{
			{"latency", "upstream", `{"latency":100,"jitter":20}`},
			{"latency", "downstream", `{"latency":100,"jitter":20}`},
		}, true},
		{"1-byte segments", [][3]string{
			{"slicer", "upstream", `{"average_size":1,"size_variation":0,"delay":0}`},
			{"slicer", "downstream", `{"average_size":1,"size_variation":0,"delay":0}`},
		}, true},
		{"reset mid-frame", [][3]string{
			{"reset_peer", "upstream", `{"timeout":0}`},
		}, false},
		{"cut after 7 bytes", [][3]string{
			{"limit_data", "upstream", `{"bytes":7}`},
		}, false},
		{"black hole", [][3]string{
			{"timeout", "upstream", `{"timeout":0}`},
			{"timeout", "downstream", `{"timeout":0}`},
		}, false},
	}
	for _, f := range faults {
		closes0, idles0 := cli.closes.Load(), cli.idles.Load()
		var names []string
		for i, tx := range f.toxics {
			name := fmt.Sprintf("%s-%d", tx[0], i)
			r.addToxic(name, tx[0], tx[1], tx[2])
			names = append(names, name)
		}
		written := r.send(300, 5*time.Millisecond) // ~1.5 s under the fault
		if f.lossless {
			if missing := r.waitAcked(written, 10*time.Second); len(missing) > 0 {
				t.Errorf("%s: %d of %d written messages never acknowledged (first %v)", f.name, len(missing), len(written), missing[0])
			}
		}
		for _, n := range names {
			r.removeToxic(n)
		}
		took, err := r.recovered(15 * time.Second)
		if err != nil {
			t.Errorf("%s: %v", f.name, err)
		}
		lost := len(r.waitAcked(written, 500*time.Millisecond))
		t.Logf("%s: %d of 300 writes accepted, %d of them unacknowledged; %d sessions closed (%d by the idle check); recovered %v after the fault ended",
			f.name, len(written), lost, cli.closes.Load()-closes0, cli.idles.Load()-idles0, took.Round(time.Millisecond))
	}

	if d := srv.dups.Load(); d != 0 {
		t.Errorf("%d messages reached the server more than once", d)
	}
	if d := cli.dupAcks.Load(); d != 0 {
		t.Errorf("%d acknowledgements arrived more than once", d)
	}
	// Every acknowledged message was seen by the server exactly once.
	cli.mu.Lock()
	srv.mu.Lock()
	for id := range cli.acked {
		if srv.seen[id] != 1 {
			t.Errorf("message %d acknowledged but seen %d times by the server", id, srv.seen[id])
		}
	}
	t.Logf("%d messages numbered, %d reached the server, %d acknowledged", r.next, len(srv.seen), len(cli.acked))
	srv.mu.Unlock()
	cli.mu.Unlock()

	pool.Close()
	proxy.Stop()
	gs.Close()
}
