package getty_test

import (
	"context"
	"encoding/binary"
	"io"
	"math"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	getty "github.com/getty-go/getty"
	"github.com/getty-go/getty/internal/testcert"
)

// longReconnect is a reconnect interval (nanoseconds, an int as upstream
// has it) that no test outlives: an hour, or the most an int holds where
// it has 32 bits (about 2.1 s).
const longReconnect = int(min(int64(time.Hour), math.MaxInt))

// transport is one row of the integration table: how to make a server and a
// client of one kind.
type transport struct {
	name      string
	newServer func(t *testing.T, opts ...getty.ServerOption) getty.Server
	newClient func(t *testing.T, srv getty.Server, opts ...getty.ClientOption) getty.Client
	stream    bool // bytes may split and merge (tcp, tls): raw framing tests apply
	packet    bool // one server session for every peer (udp)
}

// transports is the integration table, every row in this one literal.
var transports = []transport{
	{
		name: "tcp",
		newServer: func(t *testing.T, opts ...getty.ServerOption) getty.Server {
			return getty.NewTCPServer(append([]getty.ServerOption{getty.WithLocalAddress("127.0.0.1:0")}, opts...)...)
		},
		newClient: func(t *testing.T, srv getty.Server, opts ...getty.ClientOption) getty.Client {
			return getty.NewTCPClient(append([]getty.ClientOption{getty.WithServerAddress(srv.Addr().String())}, opts...)...)
		},
		stream: true,
	},
	{
		name: "tls",
		newServer: func(t *testing.T, opts ...getty.ServerOption) getty.Server {
			set := testcert.New(t)
			srv := newTLSServer(set, set.Server, "", opts...)
			serverCerts.Store(srv, set)
			t.Cleanup(func() { serverCerts.Delete(srv) })
			return srv
		},
		newClient: func(t *testing.T, srv getty.Server, opts ...getty.ClientOption) getty.Client {
			return newTLSClient(srv, certsOf(t, srv), nil, opts...)
		},
		stream: true,
	},
	{
		// One server session for the socket, one connected socket per
		// client session.
		name: "udp",
		newServer: func(t *testing.T, opts ...getty.ServerOption) getty.Server {
			return getty.NewUDPEndPoint(append([]getty.ServerOption{getty.WithLocalAddress("127.0.0.1:0")}, opts...)...)
		},
		newClient: func(t *testing.T, srv getty.Server, opts ...getty.ClientOption) getty.Client {
			return getty.NewUDPClient(append([]getty.ClientOption{getty.WithServerAddress(srv.Addr().String())}, opts...)...)
		},
		packet: true,
	},
	{
		name: "ws",
		newServer: func(t *testing.T, opts ...getty.ServerOption) getty.Server {
			return getty.NewWSServer(append([]getty.ServerOption{getty.WithLocalAddress("127.0.0.1:0")}, opts...)...)
		},
		newClient: func(t *testing.T, srv getty.Server, opts ...getty.ClientOption) getty.Client {
			return getty.NewWSClient(append([]getty.ClientOption{getty.WithServerAddress(wsURL(srv, "ws", "/"))}, opts...)...)
		},
	},
	{
		name: "wss",
		newServer: func(t *testing.T, opts ...getty.ServerOption) getty.Server {
			set := testcert.New(t)
			srv := getty.NewWSSServer(append([]getty.ServerOption{
				getty.WithLocalAddress("127.0.0.1:0"),
				getty.WithWebsocketServerCert(set.Server.Cert),
				getty.WithWebsocketServerPrivateKey(set.Server.Key),
			}, opts...)...)
			serverCerts.Store(srv, set)
			t.Cleanup(func() { serverCerts.Delete(srv) })
			return srv
		},
		newClient: func(t *testing.T, srv getty.Server, opts ...getty.ClientOption) getty.Client {
			return getty.NewWSSClient(append([]getty.ClientOption{
				getty.WithServerAddress(wsURL(srv, "wss", "/")),
				getty.WithRootCertificateFile(certsOf(t, srv).CA),
			}, opts...)...)
		},
	},
}

// run runs f once per transport that every filter keeps, as a subtest
// (net/http's run(t, f, modes)).
func run(t *testing.T, f func(t *testing.T, tr transport), filter ...func(transport) bool) {
	t.Helper()
	for _, tr := range rows(filter...) {
		t.Run(tr.name, func(t *testing.T) { f(t, tr) })
	}
}

// runAtOnce is run with every transport's subtest at the same time
// (atOnce): for scenarios that mostly wait, under atOnce's conditions.
func runAtOnce(t *testing.T, f func(t *testing.T, tr transport), filter ...func(transport) bool) {
	t.Helper()
	atOnce(t, rows(filter...), func(tr transport) string { return tr.name }, f)
}

// rows returns the transports that every filter keeps.
func rows(filter ...func(transport) bool) []transport {
	var out []transport
rows:
	for _, tr := range transports {
		for _, keep := range filter {
			if !keep(tr) {
				continue rows
			}
		}
		out = append(out, tr)
	}
	return out
}

// atOnce runs f for each case as a subtest, all of them at the same time,
// and returns when all have ended: for independent cases that mostly wait
// (a timeout, a close handshake's grace period), so that a test takes about
// as long as its slowest case instead of their sum. t.Parallel would
// overlap them only -parallel (GOMAXPROCS: 2 on CI) at a time, and only
// after every serial test. t.Run is safe from several goroutines.
//
// The cases run while the test's own goroutine waits, so they must neither
// change package-level state (getty.SetLogger) nor count the process's
// goroutines, descriptors or heap, nor measure time tightly. An upper
// bound with slack (250 ms and more) is fine when the cases are light on
// CPU: they add less load than the other packages' tests, which run beside
// this package's serial tests anyway.
func atOnce[C any](t *testing.T, cases []C, name func(C) string, f func(t *testing.T, c C)) {
	t.Helper()
	var wg sync.WaitGroup
	for _, c := range cases {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t.Run(name(c), func(t *testing.T) { f(t, c) })
		}()
	}
	wg.Wait()
}

// Filters for run.

// connected keeps the transports with a session per connection: all but
// UDP, which has one session for every peer and no connection to hold,
// drip or close.
func connected(tr transport) bool { return !tr.packet }

// overWebSocket keeps ws and wss.
func overWebSocket(tr transport) bool { return tr.name == "ws" || tr.name == "wss" }

// row returns the transport called name.
func row(name string) transport {
	for _, tr := range transports {
		if tr.name == name {
			return tr
		}
	}
	panic("no transport " + name)
}

// certs made for a WSS or TLS server, for the client of that server.
var serverCerts sync.Map // getty.Server -> *testcert.Set

func certsOf(t *testing.T, srv getty.Server) *testcert.Set {
	t.Helper()
	v, ok := serverCerts.Load(srv)
	require.True(t, ok, "server has no certificates")
	return v.(*testcert.Set)
}

func wsURL(srv getty.Server, scheme, path string) string {
	return scheme + "://" + srv.Addr().String() + path
}

// startServer starts srv with cb and closes it when the test ends.
func startServer(t *testing.T, srv getty.Server, cb getty.NewSessionCallback) getty.Server {
	t.Helper()
	srv.RunEventLoop(cb)
	require.NotNil(t, srv.Addr(), "server did not listen")
	t.Cleanup(srv.Close)
	return srv
}

// startClient runs cli until all its sessions are open (bounded).
func startClient(t *testing.T, cli getty.Client, cb getty.NewSessionCallback) getty.Client {
	t.Helper()
	t.Cleanup(cli.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := cli.RunEventLoopContext(ctx, cb)
	require.NoError(t, err, "client")
	return cli
}

// recorder is a listener that records what happens to its sessions.
type recorder struct {
	getty.BaseListener
	echo bool

	mu       sync.Mutex
	opens    int
	closes   int
	errs     []error
	msgs     []string
	closedCh chan struct{}
	msgCh    chan string
}

func newRecorder(echo bool) *recorder {
	return &recorder{echo: echo, closedCh: make(chan struct{}, 1024), msgCh: make(chan string, 1<<16)}
}

func (r *recorder) OnOpen(getty.Session) error {
	r.mu.Lock()
	r.opens++
	r.mu.Unlock()
	return nil
}

func (r *recorder) OnClose(getty.Session) {
	r.mu.Lock()
	r.closes++
	r.mu.Unlock()
	r.closedCh <- struct{}{}
}

func (r *recorder) OnError(_ getty.Session, err error) {
	r.mu.Lock()
	r.errs = append(r.errs, err)
	r.mu.Unlock()
}

func (r *recorder) OnMessage(s getty.Session, pkg any) {
	p := string(payload(pkg))
	r.mu.Lock()
	r.msgs = append(r.msgs, p)
	r.mu.Unlock()
	select {
	case r.msgCh <- p:
	default:
	}
	if r.echo {
		if _, _, err := s.WritePkg(pkg, 0); err != nil {
			r.OnError(s, err)
		}
	}
}

func (r *recorder) counts() (opens, closes int, errs []error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.opens, r.closes, append([]error(nil), r.errs...)
}

// waitClosed waits for n OnClose calls.
func (r *recorder) waitClosed(t *testing.T, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		select {
		case <-r.closedCh:
		case <-time.After(waitLimit):
			t.Fatalf("waited %v for OnClose %d of %d", waitLimit, i+1, n)
		}
	}
}

func (r *recorder) next(t *testing.T) string {
	t.Helper()
	select {
	case m := <-r.msgCh:
		return m
	case <-time.After(waitLimit):
		t.Fatalf("waited %v for a message", waitLimit)
		return ""
	}
}

func payload(pkg any) []byte {
	switch p := pkg.(type) {
	case *getty.Frame:
		return p.Payload
	case []byte:
		return p
	case getty.UDPContext:
		return payload(p.Pkg)
	}
	return nil
}

// session setup shared by most tests.
func withCodec(l getty.EventListener, extra ...func(getty.Session)) getty.NewSessionCallback {
	return func(s getty.Session) error {
		s.SetPkgHandler(&getty.LengthFieldCodec{})
		s.SetEventListener(l)
		s.SetMaxMsgLen(64 << 10)
		for _, f := range extra {
			f(s)
		}
		return nil
	}
}

// frame encodes a 4-byte big-endian length-prefixed frame.
func frame(p string) []byte {
	b := make([]byte, 4+len(p))
	binary.BigEndian.PutUint32(b, uint32(len(p)))
	copy(b[4:], p)
	return b
}

// rawDial connects a plain TCP peer to a stream server.
func rawDial(t *testing.T, srv getty.Server) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", srv.Addr().String(), 5*time.Second)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

// readFrame reads one length-prefixed frame from a raw peer.
func readFrame(t *testing.T, c net.Conn) string {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var hdr [4]byte
	_, err := io.ReadFull(c, hdr[:])
	require.NoError(t, err, "read header")
	b := make([]byte, binary.BigEndian.Uint32(hdr[:]))
	_, err = io.ReadFull(c, b)
	require.NoError(t, err, "read body")
	return string(b)
}

// waitEOF asserts the server closes a raw peer's connection.
func waitEOF(t *testing.T, c net.Conn) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 4096)
	for {
		_, err := c.Read(buf)
		if err == nil {
			continue
		}
		ne, ok := err.(net.Error)
		require.False(t, ok && ne.Timeout(), "connection not closed by the server within 5s")
		return
	}
}

// waitLimit bounds the waits for something that must happen (a message,
// a close, a condition). It only decides how long a failing test takes to
// say so: generous, because CI shares two cores between test packages and
// the race detector slows everything several times.
const waitLimit = 20 * time.Second

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		require.Falsef(t, time.Now().After(deadline), "timed out waiting for %s", what)
		time.Sleep(5 * time.Millisecond)
	}
}

func contextWithTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}
