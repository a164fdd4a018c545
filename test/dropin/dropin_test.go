package dropin

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gxsync "github.com/dubbogo/gost/sync"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	getty "github.com/getty-go/getty"
	"github.com/getty-go/getty/internal/leakcheck"
	"github.com/getty-go/getty/internal/testcert"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, leakcheck.Options()...)
}

// userLogger is the user's own logger, installed with getty.SetLogger as
// dubbo-go and seata-go do.
type userLogger struct {
	mu    sync.Mutex
	lines []string
}

func (l *userLogger) add(level, s string) {
	l.mu.Lock()
	l.lines = append(l.lines, level+" "+s)
	l.mu.Unlock()
}
func (l *userLogger) Info(a ...interface{})             { l.add("INFO", fmt.Sprint(a...)) }
func (l *userLogger) Warn(a ...interface{})             { l.add("WARN", fmt.Sprint(a...)) }
func (l *userLogger) Error(a ...interface{})            { l.add("ERROR", fmt.Sprint(a...)) }
func (l *userLogger) Debug(a ...interface{})            { l.add("DEBUG", fmt.Sprint(a...)) }
func (l *userLogger) Infof(f string, a ...interface{})  { l.add("INFO", fmt.Sprintf(f, a...)) }
func (l *userLogger) Warnf(f string, a ...interface{})  { l.add("WARN", fmt.Sprintf(f, a...)) }
func (l *userLogger) Errorf(f string, a ...interface{}) { l.add("ERROR", fmt.Sprintf(f, a...)) }
func (l *userLogger) Debugf(f string, a ...interface{}) { l.add("DEBUG", fmt.Sprintf(f, a...)) }

func (l *userLogger) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.lines)
}

// useLogger installs a userLogger for one test.
func useLogger(t *testing.T) *userLogger {
	prev := getty.GetLogger()
	l := &userLogger{}
	getty.SetLogger(l)
	t.Cleanup(func() { getty.SetLogger(prev) })
	return l
}

// rig is one server and one client pool of one session, plain TCP or TLS.
type rig struct {
	t       *testing.T
	addr    string
	tls     *testcert.Set
	srv     getty.Server
	handler *serverHandler
	cli     getty.Client
	rpc     *rpcClient
	tlsSeen atomic.Int64 // new-session callbacks that saw a *tls.Conn

	maxMisses int
	pools     []interface{ Close() } // gost task pools, closed after the endpoints
}

// newRig starts a server and a client pool of one; the client closes a
// session after maxMisses unanswered heartbeats (50 ms apart).
func newRig(t *testing.T, useTLS bool, maxMisses int) *rig {
	r := &rig{t: t, addr: "127.0.0.1:0", handler: &serverHandler{}, maxMisses: maxMisses}
	if useTLS {
		r.tls = testcert.New(t)
	}
	r.startServer()
	r.addr = r.srv.Addr().String()
	r.startClient()
	return r
}

func (r *rig) startServer() {
	opts := []getty.ServerOption{getty.WithLocalAddress(r.addr), getty.WithServerTaskPool(r.pool())}
	if r.tls != nil {
		opts = append(opts, getty.WithServerSslEnabled(true), getty.WithServerTlsConfigBuilder(&getty.ServerTlsConfigBuilder{
			ServerKeyCertChainPath:        r.tls.Server.Cert,
			ServerPrivateKeyPath:          r.tls.Server.Key,
			ServerTrustCertCollectionPath: r.tls.CA,
		}))
	}
	r.srv = getty.NewTCPServer(opts...)
	r.srv.RunEventLoop(sessionSetup(r.handler, r.checkTLS))
	require.NotNil(r.t, r.srv.Addr(), "server did not listen on %s", r.addr)
}

func (r *rig) startClient() {
	r.rpc = newRPCClient(r.maxMisses)
	opts := []getty.ClientOption{
		getty.WithServerAddress(r.addr),
		getty.WithConnectionNumber(1),
		getty.WithReconnectInterval(int(20 * time.Millisecond)),
		getty.WithClientTaskPool(r.pool()),
	}
	if r.tls != nil {
		opts = append(opts, getty.WithClientSslEnabled(true), getty.WithClientTlsConfigBuilder(&getty.ClientTlsConfigBuilder{
			ClientKeyCertChainPath:        r.tls.Client.Cert,
			ClientPrivateKeyPath:          r.tls.Client.Key,
			ClientTrustCertCollectionPath: r.tls.CA,
		}))
	}
	r.cli = getty.NewTCPClient(opts...)
	r.cli.RunEventLoop(sessionSetup(r.rpc, r.checkTLS))
	r.t.Cleanup(func() {
		r.cli.Close()
		r.srv.Close()
		for _, p := range r.pools {
			p.Close()
		}
	})
}

// pool makes a gost task pool as the users do (NewTaskPoolSimple(0)); the
// rig closes it when the test ends.
func (r *rig) pool() gxsync.GenericTaskPool {
	p := gxsync.NewTaskPoolSimple(0)
	r.pools = append(r.pools, p)
	return p
}

// checkTLS does what TLS users do in the new-session callback: type-assert
// the connection.
func (r *rig) checkTLS(s getty.Session) error {
	if r.tls == nil {
		if _, ok := s.Conn().(*net.TCPConn); !ok {
			return fmt.Errorf("Conn() is %T, want *net.TCPConn", s.Conn())
		}
		return nil
	}
	tc, ok := s.Conn().(*tls.Conn)
	if !ok {
		return fmt.Errorf("Conn() is %T, want *tls.Conn", s.Conn())
	}
	if tc.ConnectionState().HandshakeComplete {
		r.tlsSeen.Add(1)
	}
	return nil
}

// Synchronous calls with zip on both sides, payloads from 1 byte to 8 MiB
// (across the send queue's 64 KiB small/big boundary, where compressed
// writes used to panic), one at a time and from concurrent callers, plain
// and over TLS; the user's logger sees no error.
func TestCalls(t *testing.T) {
	for _, useTLS := range []bool{false, true} {
		t.Run(map[bool]string{false: "tcp", true: "tls"}[useTLS], func(t *testing.T) {
			logs := useLogger(t)
			r := newRig(t, useTLS, 100)
			for i, size := range []int{1, 1000, 64<<10 - 15, 64 << 10, 100 << 10, 1 << 20, 8 << 20} {
				body := payload(size, i)
				got, err := r.rpc.call(body, 20*time.Second)
				require.NoError(t, err, "call with %d bytes", size)
				require.True(t, bytes.Equal(reversed(body), got), "reply to %d bytes differs", size)
			}

			const callers, each = 8, 25
			var wg sync.WaitGroup
			errs := make(chan error, callers*each)
			for c := 0; c < callers; c++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for k := 0; k < each; k++ {
						body := payload(10+(c*each+k)*997%(200<<10), c*each+k)
						got, err := r.rpc.call(body, 10*time.Second)
						if err == nil && !bytes.Equal(reversed(body), got) {
							err = fmt.Errorf("caller %d call %d: reply differs", c, k)
						}
						if err != nil {
							errs <- err
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			assert.EqualValues(t, 7+callers*each, r.handler.calls.Load())
			if useTLS {
				assert.EqualValues(t, 2, r.tlsSeen.Load(), "both new-session callbacks saw a handshaken *tls.Conn")
			}
			for _, line := range logs.lines {
				assert.NotContains(t, line, "ERROR", "user logger got: %s", line)
			}
		})
	}
}

// Heartbeats from OnCron keep a healthy session; when the server stops
// answering them, the client closes the session after maxMisses and the pool
// of one opens a new one, which the calls then use.
func TestHeartbeatMissesReplaceSession(t *testing.T) {
	r := newRig(t, false, 3)
	require.Eventually(t, func() bool { return r.rpc.heartbeat.Load() >= 3 }, 5*time.Second, 10*time.Millisecond,
		"heartbeats are answered")
	assert.Zero(t, r.rpc.missClose.Load(), "no session closed while heartbeats are answered")

	s := r.rpc.session()
	require.NotNil(t, s)
	// Mute the server side of this connection.
	muteServerSessions(t, r)
	require.Eventually(t, func() bool { return r.rpc.missClose.Load() >= 1 }, 5*time.Second, 10*time.Millisecond,
		"the client closes a session whose heartbeats go unanswered")
	require.Eventually(t, func() bool { n := r.rpc.session(); return n != nil && n != s }, 5*time.Second, 10*time.Millisecond,
		"the pool opens a new session")
	got, err := r.rpc.call([]byte("after"), 5*time.Second)
	require.NoError(t, err)
	assert.Equal(t, "retfa", string(got))
	assert.True(t, s.IsClosed())
}

// muteServerSessions marks the server's sessions so they stop answering
// heartbeats. The server's sessions are reached through a call: OnMessage
// sees them.
func muteServerSessions(t *testing.T, r *rig) {
	t.Helper()
	muted := make(chan struct{})
	r.handler.muteNext = muted
	_, err := r.rpc.call([]byte("mute"), 5*time.Second)
	require.NoError(t, err)
	<-muted
}

// The server restarts on the same address while callers keep calling: calls
// fail only while it is down (with an error, never a panic or a hang), the
// pool refills, and calls succeed again.
func TestServerRestartDuringCalls(t *testing.T) {
	r := newRig(t, false, 100)
	stop := make(chan struct{})
	var ok, failed atomic.Int64
	var wg sync.WaitGroup
	for c := 0; c < 4; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 5000; i++ { // bounded
				select {
				case <-stop:
					return
				default:
				}
				if _, err := r.rpc.call(payload(100, i), time.Second); err != nil {
					failed.Add(1)
					time.Sleep(5 * time.Millisecond)
					continue
				}
				ok.Add(1)
			}
		}()
	}
	require.Eventually(t, func() bool { return ok.Load() > 50 }, 5*time.Second, 5*time.Millisecond)
	r.srv.Close()
	before := r.handler.opens.Load()
	r.startServerAgain(t)
	require.Eventually(t, func() bool { return r.handler.opens.Load() > before }, 5*time.Second, 5*time.Millisecond,
		"the pool of one reconnects to the restarted server")
	okAt := ok.Load()
	require.Eventually(t, func() bool { return ok.Load() > okAt+50 }, 5*time.Second, 5*time.Millisecond,
		"calls succeed again after the restart")
	close(stop)
	wg.Wait()
	t.Logf("calls: %d ok, %d failed while the server was down", ok.Load(), failed.Load())
	assert.Equal(t, 1, len(r.cli.(interface{ Sessions() []getty.Session }).Sessions()), "pool of one")
}

func (r *rig) startServerAgain(t *testing.T) {
	t.Helper()
	// The old listener's port may take a moment to be free on some systems;
	// bounded retries.
	for i := 0; ; i++ {
		r.srv = getty.NewTCPServer(getty.WithLocalAddress(r.addr), getty.WithServerTaskPool(r.pool()))
		r.srv.RunEventLoop(sessionSetup(r.handler, r.checkTLS))
		if r.srv.Addr() != nil {
			srv := r.srv
			t.Cleanup(srv.Close)
			return
		}
		r.srv.Close()
		require.Less(t, i, 50, "could not listen on %s again", r.addr)
		time.Sleep(20 * time.Millisecond)
	}
}

// Client.Close while calls are in flight: Close returns, every call returns
// (an error or its reply, never a hang), and no goroutine is left (goleak).
func TestClientCloseWithCallsInFlight(t *testing.T) {
	r := newRig(t, false, 100)
	r.handler.delay = 200 * time.Millisecond
	var wg sync.WaitGroup
	results := make(chan error, 16)
	for c := 0; c < 16; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := r.rpc.call(payload(1000, c), 2*time.Second)
			results <- err
		}()
	}
	require.Eventually(t, func() bool { return r.handler.calls.Load() >= 1 }, 5*time.Second, time.Millisecond)
	closed := make(chan struct{})
	go func() { r.cli.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Client.Close did not return with calls in flight")
	}
	wg.Wait()
	close(results)
	failedCalls := 0
	for err := range results {
		if err != nil {
			failedCalls++
		}
	}
	assert.Positive(t, failedCalls, "calls in flight at Close fail")
	_, err := r.rpc.call([]byte("x"), time.Second)
	assert.ErrorIs(t, err, errNoSession)
}

// getty's own lines reach the logger installed with getty.SetLogger: a
// server that cannot listen says so there, naming the address.
func TestUserLoggerGetsGettyLines(t *testing.T) {
	logs := useLogger(t)
	r := newRig(t, false, 100)
	dup := getty.NewTCPServer(getty.WithLocalAddress(r.addr))
	dup.RunEventLoop(sessionSetup(&serverHandler{}, nil))
	defer dup.Close()
	assert.Nil(t, dup.Addr(), "a second server on %s does not listen", r.addr)
	require.Positive(t, logs.count())
	logs.mu.Lock()
	defer logs.mu.Unlock()
	assert.Contains(t, logs.lines[0], "ERROR")
	assert.Contains(t, logs.lines[0], r.addr)
}
