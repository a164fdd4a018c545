package getty_test

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	getty "github.com/getty-go/getty"
	"github.com/getty-go/getty/internal/testcert"
)

// proxySeen is what a PROXY server's new-session callback saw.
type proxySeen struct {
	remote, stat string
	conn         net.Conn
	header       *getty.ProxyHeader
}

// proxyServer is a TCP echo server reading PROXY headers, recording each
// session and each refusal.
type proxyServer struct {
	getty.Server
	rec      *recorder
	sessions chan proxySeen
	refusals chan error
}

func newProxyServer(t *testing.T, pp getty.ProxyProtocol, opts ...getty.ServerOption) *proxyServer {
	t.Helper()
	ps := &proxyServer{rec: newRecorder(true), sessions: make(chan proxySeen, 64), refusals: make(chan error, 64)}
	pp.OnRefused = func(_ net.Addr, err error) { ps.refusals <- err }
	silence(t) // refusals are logged at WARN; keep them out of the output
	srv := getty.NewTCPServer(append([]getty.ServerOption{getty.WithLocalAddress("127.0.0.1:0"),
		getty.WithProxyProtocol(pp), getty.WithServerHandshakeTimeout(2 * time.Second)}, opts...)...)
	ps.Server = startServer(t, srv, withCodec(ps.rec, func(s getty.Session) {
		h, _ := getty.ProxyHeaderOf(s)
		ps.sessions <- proxySeen{remote: s.RemoteAddr(), stat: s.Stat(), conn: s.Conn(), header: h}
	}))
	return ps
}

func (ps *proxyServer) nextSession(t *testing.T) proxySeen {
	t.Helper()
	select {
	case s := <-ps.sessions:
		return s
	case <-time.After(5 * time.Second):
		t.Fatal("no session within 5s")
		return proxySeen{}
	}
}

func (ps *proxyServer) nextRefusal(t *testing.T) error {
	t.Helper()
	select {
	case err := <-ps.refusals:
		return err
	case <-time.After(5 * time.Second):
		t.Fatal("no refusal within 5s")
		return nil
	}
}

// silence swaps getty's logger for a quiet one for the test.
func silence(t *testing.T) {
	prev := getty.GetLogger()
	getty.SetLogger(nil)
	t.Cleanup(func() { getty.SetLogger(prev) })
}

// v2Header builds a version 2 header: command 1 (PROXY) or 0 (LOCAL).
func v2Header(cmd byte, src, dst *net.TCPAddr, tlvs ...[]byte) []byte {
	b := []byte("\r\n\r\n\x00\r\nQUIT\n")
	var addr []byte
	fam := byte(0x00)
	if src != nil {
		if ip4 := src.IP.To4(); ip4 != nil {
			fam = 0x11
			addr = append(addr, ip4...)
			addr = append(addr, dst.IP.To4()...)
		} else {
			fam = 0x21
			addr = append(addr, src.IP.To16()...)
			addr = append(addr, dst.IP.To16()...)
		}
		addr = binary.BigEndian.AppendUint16(addr, uint16(src.Port))
		addr = binary.BigEndian.AppendUint16(addr, uint16(dst.Port))
	}
	for _, tlv := range tlvs {
		addr = append(addr, tlv...)
	}
	b = append(b, 0x20|cmd, fam)
	b = binary.BigEndian.AppendUint16(b, uint16(len(addr)))
	return append(b, addr...)
}

func tcpAddr(s string) *net.TCPAddr {
	a, err := net.ResolveTCPAddr("tcp", s)
	if err != nil {
		panic(err)
	}
	return a
}

// sendAndEcho writes the given bytes then a frame on a raw connection to
// srv and expects the frame back.
func sendAndEcho(t *testing.T, srv getty.Server, first []byte, msg string) net.Conn {
	t.Helper()
	c := rawDial(t, srv)
	_, err := c.Write(append(append([]byte(nil), first...), frame(msg)...))
	require.NoError(t, err)
	assert.Equal(t, msg, readFrame(t, c))
	return c
}

func TestProxyProtocolHeaders(t *testing.T) {
	tlv := []byte{0x02, 0x00, 0x0b, 'e', 'x', 'a', 'm', 'p', 'l', 'e', '.', 'c', 'o', 'm'}
	for _, tc := range []struct {
		name   string
		header []byte
		remote string // "" means the real peer
		ver    int
		local  bool
	}{
		{"v1 tcp4", []byte("PROXY TCP4 203.0.113.7 192.0.2.1 5555 8080\r\n"), "203.0.113.7:5555", 1, false},
		{"v1 tcp6", []byte("PROXY TCP6 2001:db8::7 2001:db8::1 65535 443\r\n"), "[2001:db8::7]:65535", 1, false},
		{"v1 unknown", []byte("PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n"), "", 1, true},
		{"v2 ipv4", v2Header(1, tcpAddr("198.51.100.9:40000"), tcpAddr("192.0.2.1:8080")), "198.51.100.9:40000", 2, false},
		{"v2 ipv6 tlv", v2Header(1, tcpAddr("[2001:db8::9]:1234"), tcpAddr("[2001:db8::1]:80"), tlv), "[2001:db8::9]:1234", 2, false},
		{"v2 local", v2Header(0, nil, nil), "", 2, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ps := newProxyServer(t, getty.ProxyProtocol{Trusted: []string{"127.0.0.0/8"}})
			c := sendAndEcho(t, ps, tc.header, "behind a proxy")
			seen := ps.nextSession(t)
			want := tc.remote
			if want == "" {
				want = c.LocalAddr().String()
			}
			assert.Equal(t, want, seen.remote)
			assert.Contains(t, seen.stat, "<->"+want+"}")
			assert.IsType(t, &net.TCPConn{}, seen.conn, "Conn() stays the socket to the proxy")
			assert.Equal(t, c.LocalAddr().String(), seen.conn.RemoteAddr().String())
			require.NotNil(t, seen.header)
			assert.Equal(t, tc.ver, seen.header.Version)
			assert.Equal(t, tc.local, seen.header.Local)
			if strings.Contains(tc.name, "tlv") {
				require.Len(t, seen.header.TLVs, 1)
				assert.Equal(t, byte(0x02), seen.header.TLVs[0].Type)
				assert.Equal(t, "example.com", string(seen.header.TLVs[0].Value))
			}
		})
	}
}

// A header that arrives in pieces is still read exactly, and what follows
// it is the application's.
func TestProxyProtocolHeaderInPieces(t *testing.T) {
	ps := newProxyServer(t, getty.ProxyProtocol{Trusted: []string{"127.0.0.1"}})
	for _, hdr := range [][]byte{
		[]byte("PROXY TCP4 203.0.113.7 192.0.2.1 5555 8080\r\n"),
		v2Header(1, tcpAddr("198.51.100.9:40000"), tcpAddr("192.0.2.1:8080")),
	} {
		c := rawDial(t, ps)
		prev := 0
		for _, cut := range []int{3, 9, 14, len(hdr) - 1} {
			_, err := c.Write(hdr[prev:cut])
			require.NoError(t, err)
			prev = cut
			time.Sleep(10 * time.Millisecond)
		}
		_, err := c.Write(append(hdr[prev:], frame("pieces")...))
		require.NoError(t, err)
		assert.Equal(t, "pieces", readFrame(t, c))
		assert.NotEqual(t, c.LocalAddr().String(), ps.nextSession(t).remote)
	}
}

// The header comes before the TLS handshake; Conn is then the *tls.Conn.
func TestProxyProtocolTLS(t *testing.T) {
	set := testcert.New(t)
	ps := newProxyServer(t, getty.ProxyProtocol{Trusted: []string{"127.0.0.1"}},
		getty.WithServerSslEnabled(true), getty.WithServerTlsConfigBuilder(&getty.ServerTlsConfigBuilder{
			ServerKeyCertChainPath: set.Server.Cert, ServerPrivateKeyPath: set.Server.Key}))
	c := rawDial(t, ps)
	_, err := c.Write([]byte("PROXY TCP4 203.0.113.7 192.0.2.1 5555 8080\r\n"))
	require.NoError(t, err)
	tc := tls.Client(c, &tls.Config{RootCAs: set.Pool(), ServerName: "localhost"})
	_, err = tc.Write(frame("secret"))
	require.NoError(t, err)
	assert.Equal(t, "secret", readFrame(t, tc))
	seen := ps.nextSession(t)
	assert.Equal(t, "203.0.113.7:5555", seen.remote)
	assert.IsType(t, &tls.Conn{}, seen.conn)
}

// Malformed headers from a trusted source are refused before any
// callback, each with its own clear error, and nothing else is disturbed.
func TestProxyProtocolMalformed(t *testing.T) {
	ps := newProxyServer(t, getty.ProxyProtocol{Trusted: []string{"127.0.0.1"}},
		getty.WithServerHandshakeTimeout(300*time.Millisecond))
	v1 := []byte("PROXY TCP4 203.0.113.7 192.0.2.1 5555 8080\r\n")
	good := v2Header(1, tcpAddr("198.51.100.9:40000"), tcpAddr("192.0.2.1:8080"))
	wrongSig := append([]byte(nil), good...)
	wrongSig[4] = 0x01
	longV2 := append([]byte(nil), good[:16]...)
	binary.BigEndian.PutUint16(longV2[14:], 0xffff)
	badVersion := append([]byte(nil), good...)
	badVersion[12] = 0x11
	badCommand := append([]byte(nil), good...)
	badCommand[12] = 0x2f
	shortAddr := append([]byte(nil), good[:16]...)
	binary.BigEndian.PutUint16(shortAddr[14:], 4)
	shortAddr = append(shortAddr, 1, 2, 3, 4)

	// An established proxied session that must not notice anything.
	bystander := sendAndEcho(t, ps, v1, "before")
	ps.nextSession(t)

	for _, tc := range []struct {
		name    string
		send    []byte
		close   bool // close the write side after sending
		is      []error
		message string
	}{
		{"truncated v1", v1[:20], true, []error{getty.ErrProxyHeader, io.ErrUnexpectedEOF}, "truncated"},
		{"truncated v2", good[:22], true, []error{getty.ErrProxyHeader, io.ErrUnexpectedEOF}, "truncated"},
		{"truncated v2 signature", good[:7], true, []error{getty.ErrProxyHeader, io.ErrUnexpectedEOF}, "truncated"},
		{"truncated v1 signature", v1[:3], true, []error{getty.ErrProxyHeader, io.ErrUnexpectedEOF}, "truncated"},
		{"stalled v1", v1[:20], false, []error{getty.ErrProxyHeader, os.ErrDeadlineExceeded}, "handshake timeout"},
		{"stalled v2", good[:10], false, []error{getty.ErrProxyHeader, os.ErrDeadlineExceeded}, "handshake timeout"},
		{"oversize v1", []byte("PROXY TCP4 " + strings.Repeat("1", 200) + "\r\n"), false, []error{getty.ErrProxyHeader}, "longer than 107"},
		{"oversize v2", longV2, false, []error{getty.ErrProxyHeader}, "over the limit"},
		{"wrong signature", wrongSig, false, []error{getty.ErrProxyHeaderMissing}, "not a PROXY protocol signature"},
		{"no header", frame("hello"), false, []error{getty.ErrProxyHeaderMissing}, "not a PROXY protocol signature"},
		{"closed at once", nil, true, []error{getty.ErrProxyHeaderMissing}, "closed before sending"},
		{"bad v1 address", []byte("PROXY TCP4 999.0.0.1 192.0.2.1 5555 8080\r\n"), false, []error{getty.ErrProxyHeader}, "bad address"},
		{"v1 family mismatch", []byte("PROXY TCP4 2001:db8::1 192.0.2.1 5555 8080\r\n"), false, []error{getty.ErrProxyHeader}, "bad address"},
		{"bad v1 port", []byte("PROXY TCP4 203.0.113.7 192.0.2.1 65536 8080\r\n"), false, []error{getty.ErrProxyHeader}, "bad port"},
		{"v1 without CR", []byte("PROXY TCP4 203.0.113.7 192.0.2.1 5555 8080\n"), false, []error{getty.ErrProxyHeader}, "CRLF"},
		{"v2 version", badVersion, false, []error{getty.ErrProxyHeader}, "version nibble"},
		{"v2 command", badCommand, false, []error{getty.ErrProxyHeader}, "command 15"},
		{"v2 short address", shortAddr, false, []error{getty.ErrProxyHeader}, "too short"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := rawDial(t, ps)
			if len(tc.send) > 0 {
				_, err := c.Write(tc.send)
				require.NoError(t, err)
			}
			if tc.close {
				require.NoError(t, c.(*net.TCPConn).CloseWrite())
			}
			err := ps.nextRefusal(t)
			for _, want := range tc.is {
				assert.ErrorIs(t, err, want)
			}
			assert.Contains(t, err.Error(), tc.message)
			waitEOF(t, c)
		})
	}
	opens, _, errs := ps.rec.counts()
	assert.Equal(t, 1, opens, "no refused connection reached OnOpen")
	assert.Empty(t, errs)
	select {
	case s := <-ps.sessions:
		t.Fatalf("a refused connection got a session: %+v", s)
	default:
	}
	// The bystander and a new proxied connection still work.
	_, err := bystander.Write(frame("after"))
	require.NoError(t, err)
	assert.Equal(t, "after", readFrame(t, bystander))
	sendAndEcho(t, ps, v1, "new one")
}

// A header from an address outside Trusted is a forgery: the session ends
// with ErrProxyHeaderUntrusted before the Reader sees it, and its address
// is the real one. Without a header such a client is served as itself.
func TestProxyProtocolUntrustedSource(t *testing.T) {
	ps := newProxyServer(t, getty.ProxyProtocol{Trusted: []string{"192.0.2.0/24", "2001:db8::/32"}})

	plain := sendAndEcho(t, ps, nil, "direct client")
	assert.Equal(t, plain.LocalAddr().String(), ps.nextSession(t).remote)

	for _, forged := range [][]byte{
		[]byte("PROXY TCP4 203.0.113.7 192.0.2.1 5555 8080\r\n"),
		v2Header(1, tcpAddr("198.51.100.9:40000"), tcpAddr("192.0.2.1:8080")),
	} {
		c := rawDial(t, ps)
		_, err := c.Write(append(forged, frame("forged")...))
		require.NoError(t, err)
		err = ps.nextRefusal(t)
		assert.ErrorIs(t, err, getty.ErrProxyHeaderUntrusted)
		assert.ErrorIs(t, err, getty.ErrProxyHeader)
		assert.Equal(t, c.LocalAddr().String(), ps.nextSession(t).remote, "the forged address is never used")
		waitEOF(t, c)
	}
	ps.rec.waitClosed(t, 2)
	_, _, errs := ps.rec.counts()
	require.Len(t, errs, 2)
	for _, err := range errs {
		var se *getty.SessionError
		require.ErrorAs(t, err, &se)
		assert.ErrorIs(t, err, getty.ErrProxyHeaderUntrusted)
	}
	ps.rec.mu.Lock()
	msgs := append([]string(nil), ps.rec.msgs...)
	ps.rec.mu.Unlock()
	assert.Equal(t, []string{"direct client"}, msgs, "the forged bytes never reached the Reader")

	// The direct client is undisturbed.
	_, err := plain.Write(frame("still here"))
	require.NoError(t, err)
	assert.Equal(t, "still here", readFrame(t, plain))
}

// With Optional, a trusted source may skip the header.
func TestProxyProtocolOptional(t *testing.T) {
	ps := newProxyServer(t, getty.ProxyProtocol{Trusted: []string{"127.0.0.1"}, Optional: true})
	c := sendAndEcho(t, ps, nil, "no header")
	seen := ps.nextSession(t)
	assert.Equal(t, c.LocalAddr().String(), seen.remote)
	assert.Nil(t, seen.header)
	sendAndEcho(t, ps, []byte("PROXY TCP4 203.0.113.7 192.0.2.1 5555 8080\r\n"), "with header")
	assert.Equal(t, "203.0.113.7:5555", ps.nextSession(t).remote)
}

func TestProxyProtocolConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		srv  getty.Server
		want string
	}{
		{"no trusted", getty.NewTCPServer(getty.WithLocalAddress("127.0.0.1:0"), getty.WithProxyProtocol(getty.ProxyProtocol{})), "without Trusted"},
		{"bad network", getty.NewTCPServer(getty.WithLocalAddress("127.0.0.1:0"),
			getty.WithProxyProtocol(getty.ProxyProtocol{Trusted: []string{"10.0.0.0/33"}})), "10.0.0.0/33"},
		{"udp", getty.NewUDPEndPoint(getty.WithLocalAddress("127.0.0.1:0"),
			getty.WithProxyProtocol(getty.ProxyProtocol{Trusted: []string{"127.0.0.1"}})), "needs a TCP or WebSocket server"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.srv.Serve(withCodec(newRecorder(true)))
			require.Error(t, err)
			assert.False(t, errors.Is(err, getty.ErrServerClosed))
			assert.Contains(t, err.Error(), tc.want)
			tc.srv.Close()
		})
	}
}

// ---- against a real HAProxy ----------------------------------------------

// haproxyBinary finds haproxy, or skips the test (fails it under CI).
func haproxyBinary(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"haproxy", "/usr/sbin/haproxy", "/usr/local/sbin/haproxy"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("haproxy is not installed; CI must have it (.ci/run installs Debian's haproxy package)")
	}
	t.Skip("haproxy is not installed (apt-get install haproxy); skipping the HAProxy interop test")
	return ""
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().String()
}

// HAProxy's send-proxy (v1) and send-proxy-v2 in front of a getty server:
// each session shows the address of the client that connected to HAProxy.
func TestProxyProtocolHAProxy(t *testing.T) {
	bin := haproxyBinary(t)
	ps := newProxyServer(t, getty.ProxyProtocol{Trusted: []string{"127.0.0.1"}})
	front := map[string]string{"send-proxy": freePort(t), "send-proxy-v2": freePort(t)}
	var cfg strings.Builder
	cfg.WriteString("global\n\tmaxconn 64\n\ndefaults\n\tmode tcp\n\ttimeout connect 5s\n\ttimeout client 30s\n\ttimeout server 30s\n")
	for _, mode := range []string{"send-proxy", "send-proxy-v2"} {
		fmt.Fprintf(&cfg, "\nlisten %s\n\tbind %s\n\tserver getty %s %s\n", mode, front[mode], ps.Addr(), mode)
	}
	stop := startHAProxy(t, bin, cfg.String(), front["send-proxy"], front["send-proxy-v2"])
	defer stop()

	for _, mode := range []string{"send-proxy", "send-proxy-v2"} {
		t.Run(mode, func(t *testing.T) {
			c, err := net.DialTimeout("tcp", front[mode], 5*time.Second)
			require.NoError(t, err)
			defer c.Close()
			for i := 0; i < 3; i++ {
				msg := fmt.Sprintf("%s #%d", mode, i)
				_, err = c.Write(frame(msg))
				require.NoError(t, err)
				assert.Equal(t, msg, readFrame(t, c))
			}
			// Skip the sessions of startHAProxy's readiness probes.
			var seen proxySeen
			for i := 0; i < 10 && seen.remote != c.LocalAddr().String(); i++ {
				seen = ps.nextSession(t)
			}
			assert.Equal(t, c.LocalAddr().String(), seen.remote, "the client HAProxy relayed")
			assert.Contains(t, seen.stat, c.LocalAddr().String())
			assert.IsType(t, &net.TCPConn{}, seen.conn)
			assert.NotEqual(t, c.LocalAddr().String(), seen.conn.RemoteAddr().String(), "Conn is the socket to HAProxy")
			require.NotNil(t, seen.header)
			wantVer := 1
			if mode == "send-proxy-v2" {
				wantVer = 2
			}
			assert.Equal(t, wantVer, seen.header.Version)
			assert.Equal(t, front[mode], seen.header.Destination.String())
		})
	}
	select {
	case err := <-ps.refusals:
		t.Errorf("HAProxy's connection was refused: %v", err)
	default:
	}
}

// startHAProxy runs haproxy in the foreground with cfg until stop, and
// waits until it accepts on the given addresses.
func startHAProxy(t *testing.T, bin, cfg string, addrs ...string) (stop func()) {
	t.Helper()
	path := t.TempDir() + "/haproxy.cfg"
	require.NoError(t, os.WriteFile(path, []byte(cfg), 0o600))
	var out lockedBuffer
	cmd := exec.Command(bin, "-db", "-f", path)
	cmd.Stdout, cmd.Stderr = &out, &out
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop = func() {
		_ = cmd.Process.Kill()
		<-exited
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, a := range addrs {
		for {
			c, err := net.DialTimeout("tcp", a, time.Second)
			if err == nil {
				c.Close()
				break
			}
			select {
			case err := <-exited:
				t.Fatalf("haproxy exited: %v\n%s", err, out.String())
			default:
			}
			if time.Now().After(deadline) {
				stop()
				t.Fatalf("haproxy does not accept on %s after 10s\n%s", a, out.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return stop
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// headerDialer dials for real and sends hdr first, as a proxy would.
func headerDialer(hdr []byte) getty.DialContextFunc {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		var d net.Dialer
		c, err := d.DialContext(ctx, network, addr)
		if err == nil {
			_, err = c.Write(hdr)
		}
		return c, err
	}
}

// A WebSocket server reads the header before the HTTP upgrade.
func TestProxyProtocolWebSocket(t *testing.T) {
	refusals := make(chan error, 4)
	seen := make(chan proxySeen, 4)
	silence(t)
	srv := startServer(t, getty.NewWSServer(getty.WithLocalAddress("127.0.0.1:0"),
		getty.WithServerHandshakeTimeout(time.Second),
		getty.WithProxyProtocol(getty.ProxyProtocol{Trusted: []string{"127.0.0.1"},
			OnRefused: func(_ net.Addr, err error) { refusals <- err }})),
		withCodec(newRecorder(true), func(s getty.Session) {
			h, _ := getty.ProxyHeaderOf(s)
			seen <- proxySeen{remote: s.RemoteAddr(), stat: s.Stat(), conn: s.Conn(), header: h}
		}))
	url := "ws://" + srv.Addr().String() + "/"

	hdr := v2Header(1, tcpAddr("198.51.100.9:40000"), tcpAddr("192.0.2.1:8080"))
	echoOnce(t, getty.NewWSClient(getty.WithServerAddress(url), getty.WithDialContext(headerDialer(hdr))), "ws behind a proxy")
	s := <-seen
	assert.Equal(t, "198.51.100.9:40000", s.remote)
	assert.Contains(t, s.stat, "198.51.100.9:40000")
	require.NotNil(t, s.header)
	assert.Equal(t, 2, s.header.Version)

	// A malformed header: refused before the upgrade, the client's dial fails.
	gaveUp := make(chan error, 1)
	bad := getty.NewWSClient(getty.WithServerAddress(url), getty.WithDialContext(headerDialer([]byte("PROXY TCP4 x\r\n"))),
		getty.WithReconnectAttempts(1), getty.WithClientErrorHandler(func(_ getty.Client, err error) { gaveUp <- err }))
	defer bad.Close()
	bad.Start(withCodec(newRecorder(false)))
	select {
	case err := <-refusals:
		assert.ErrorIs(t, err, getty.ErrProxyHeader)
		assert.Contains(t, err.Error(), "want protocol, two addresses")
	case <-time.After(5 * time.Second):
		t.Fatal("no refusal within 5s")
	}
	select {
	case err := <-gaveUp:
		assert.ErrorIs(t, err, getty.ErrReconnectGaveUp)
	case <-time.After(5 * time.Second):
		t.Fatal("the refused client did not give up within 5s")
	}
	select {
	case s := <-seen:
		t.Fatalf("a refused connection got a session: %+v", s)
	default:
	}
}

// WSS: the header comes before the TLS handshake.
func TestProxyProtocolWebSocketTLS(t *testing.T) {
	set := testcert.New(t)
	seen := make(chan proxySeen, 4)
	silence(t)
	srv := startServer(t, getty.NewWSSServer(getty.WithLocalAddress("127.0.0.1:0"),
		getty.WithWebsocketServerCert(set.Server.Cert), getty.WithWebsocketServerPrivateKey(set.Server.Key),
		getty.WithProxyProtocol(getty.ProxyProtocol{Trusted: []string{"127.0.0.1"}})),
		withCodec(newRecorder(true), func(s getty.Session) {
			h, _ := getty.ProxyHeaderOf(s)
			seen <- proxySeen{remote: s.RemoteAddr(), conn: s.Conn(), header: h}
		}))
	hdr := []byte("PROXY TCP6 2001:db8::7 2001:db8::1 4242 443\r\n")
	echoOnce(t, getty.NewWSSClient(getty.WithServerAddress("wss://localhost:"+portOf(srv.Addr())+"/"),
		getty.WithRootCertificateFile(set.CA), getty.WithDialContext(func(ctx context.Context, network, _ string) (net.Conn, error) {
			return headerDialer(hdr)(ctx, network, srv.Addr().String())
		})), "wss behind a proxy")
	s := <-seen
	assert.Equal(t, "[2001:db8::7]:4242", s.remote)
	assert.IsType(t, &tls.Conn{}, s.conn)
	require.NotNil(t, s.header)
	assert.Equal(t, 1, s.header.Version)
}

func portOf(a net.Addr) string {
	_, p, _ := net.SplitHostPort(a.String())
	return p
}
