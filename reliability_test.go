package getty_test

// Reliability scenarios (issue 8): hostile framing, panics everywhere, slow
// readers, slowloris, churn, accept errors, half-open peers and graceful
// close, over every transport of the table where they apply. Fault
// injection through a real proxy lives in test/fault (its own module), the
// long soak in test/soak.
//
// Every loop is bounded in count and time, every address is loopback, and
// every test closes what it opened (goleak checks in TestMain).
//
// This file holds what the scenarios share: a raw peer for every transport
// and the helpers; each scenario family has its own reliability_*_test.go.

import (
	"bufio"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	getty "github.com/getty-go/getty"
)

// relTarget is what a raw peer needs to reach a server of one transport. It
// is built on the test goroutine (certsOf may fail the test); its methods are
// safe on any goroutine and report errors instead of failing the test.
type relTarget struct {
	name   string
	addr   string
	tlsCfg *tls.Config // tls and wss
	ws     bool
}

func relTargetOf(t *testing.T, tr transport, srv getty.Server) relTarget {
	t.Helper()
	tg := relTarget{name: tr.name, addr: srv.Addr().String()}
	switch tr.name {
	case "tls", "wss":
		tg.tlsCfg = &tls.Config{RootCAs: certsOf(t, srv).Pool(), ServerName: "127.0.0.1"}
	}
	tg.ws = tr.name == "ws" || tr.name == "wss"
	return tg
}

// relPeer is a hand-made client: it speaks the 4-byte length-prefixed frames
// of LengthFieldCodec, over TCP, TLS, or inside WebSocket binary messages,
// and lets a test misbehave at any byte.
type relPeer struct {
	tcp *net.TCPConn
	c   net.Conn // tcp, or the tls.Conn over it
	br  *bufio.Reader
	ws  bool

	wmu sync.Mutex // writes may come from a reader answering pings
}

// dialTCP opens the socket, from local when given (a 127.x.y.z address tells
// the server which peer it is).
func (tg relTarget) dialTCP(local *net.TCPAddr) (*net.TCPConn, error) {
	d := net.Dialer{Timeout: 10 * time.Second}
	if local != nil {
		d.LocalAddr = local
	}
	c, err := d.Dial("tcp", tg.addr)
	if err != nil {
		return nil, err
	}
	return c.(*net.TCPConn), nil
}

// connect dials and completes the TLS handshake and the WebSocket upgrade.
func (tg relTarget) connect() (*relPeer, error) { return tg.connectFrom(nil) }

func (tg relTarget) connectFrom(local *net.TCPAddr) (*relPeer, error) {
	tc, err := tg.dialTCP(local)
	if err != nil {
		return nil, err
	}
	p := &relPeer{tcp: tc, c: tc, ws: tg.ws}
	if err := tg.handshake(p); err != nil {
		tc.Close()
		return nil, err
	}
	return p, nil
}

func (tg relTarget) handshake(p *relPeer) error {
	_ = p.tcp.SetDeadline(time.Now().Add(10 * time.Second))
	defer p.tcp.SetDeadline(time.Time{})
	if tg.tlsCfg != nil {
		tc := tls.Client(p.tcp, tg.tlsCfg)
		if err := tc.Handshake(); err != nil {
			return fmt.Errorf("tls handshake: %w", err)
		}
		p.c = tc
	}
	p.br = bufio.NewReaderSize(p.c, 64<<10)
	if !tg.ws {
		return nil
	}
	req := "GET / HTTP/1.1\r\nHost: " + tg.addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if _, err := io.WriteString(p.c, req); err != nil {
		return err
	}
	resp, err := http.ReadResponse(p.br, nil)
	if err != nil {
		return fmt.Errorf("upgrade: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSwitchingProtocols {
		return fmt.Errorf("upgrade: status %d", resp.StatusCode)
	}
	return nil
}

func (p *relPeer) Close() { p.c.Close() }

// raw writes bytes as they are: stream bytes, or (WebSocket) frame bytes.
func (p *relPeer) raw(b []byte) error {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	_ = p.c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_, err := p.c.Write(b)
	return err
}

// sendBytes sends one package: the bytes themselves on a stream, one binary
// message holding them on a WebSocket.
func (p *relPeer) sendBytes(b []byte) error {
	if p.ws {
		return p.raw(relWSFrame(0x82, b))
	}
	return p.raw(b)
}

// send sends one length-prefixed frame.
func (p *relPeer) send(payload string) error { return p.sendBytes(frame(payload)) }

// relWSFrame encodes one masked client frame; first holds FIN and opcode.
func relWSFrame(first byte, payload []byte) []byte {
	out := []byte{first, 0x80}
	switch n := len(payload); {
	case n < 126:
		out[1] |= byte(n)
	case n < 1<<16:
		out[1] |= 126
		out = binary.BigEndian.AppendUint16(out, uint16(n))
	default:
		out[1] |= 127
		out = binary.BigEndian.AppendUint64(out, uint64(n))
	}
	var key [4]byte
	_, _ = rand.Read(key[:])
	out = append(out, key[:]...)
	for i, b := range payload {
		out = append(out, b^key[i%4])
	}
	return out
}

// errRelClosed is what recv returns when the server closed (a WebSocket
// close frame, EOF or a reset).
var errRelClosed = errors.New("closed by the server")

// recv reads one frame's payload. A WebSocket close frame is answered and
// reported as errRelClosed, pings are answered.
func (p *relPeer) recv(timeout time.Duration) (string, error) {
	_ = p.c.SetReadDeadline(time.Now().Add(timeout))
	var body []byte
	if p.ws {
		for {
			op, b, err := p.wsRead()
			if err != nil {
				return "", relClassify(err)
			}
			switch op {
			case 0x8:
				_ = p.raw(relWSFrame(0x88, b[:min(len(b), 2)]))
				return "", errRelClosed
			case 0x9:
				_ = p.raw(relWSFrame(0x8A, b))
				continue
			case 0xA:
				continue
			}
			body = b
			break
		}
		if len(body) < 4 || int(binary.BigEndian.Uint32(body)) != len(body)-4 {
			return "", fmt.Errorf("bad frame in a message of %d bytes", len(body))
		}
		return string(body[4:]), nil
	}
	var hdr [4]byte
	if _, err := io.ReadFull(p.br, hdr[:]); err != nil {
		return "", relClassify(err)
	}
	body = make([]byte, binary.BigEndian.Uint32(hdr[:]))
	if _, err := io.ReadFull(p.br, body); err != nil {
		return "", fmt.Errorf("torn frame: %w", err)
	}
	return string(body), nil
}

func relClassify(err error) error {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return err
	}
	if errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.ErrUnexpectedEOF) {
		return errRelClosed
	}
	return fmt.Errorf("%w (%v)", errRelClosed, err)
}

// wsRead reads one unfragmented server frame.
func (p *relPeer) wsRead() (op byte, payload []byte, err error) {
	_, op, payload, err = readServerFrame(p.br)
	return
}

// waitClosed reads (and drops) until the server has closed the connection;
// a WebSocket close frame is answered and reading goes on to the TCP end.
// It returns how long it waited, or an error when the connection was still
// open after timeout. Having seen the end, the peer closes its side too.
func (p *relPeer) waitClosed(timeout time.Duration) (d time.Duration, err error) {
	start := time.Now()
	defer func() {
		if err == nil {
			p.Close()
		}
	}()
	_ = p.c.SetReadDeadline(start.Add(timeout))
	if p.ws {
		for {
			op, b, err := p.wsRead()
			if err != nil {
				return time.Since(start), relEOF(err)
			}
			if op == 0x8 {
				_ = p.raw(relWSFrame(0x88, b[:min(len(b), 2)]))
			}
		}
	}
	if _, err = io.Copy(io.Discard, p.br); err == nil {
		return time.Since(start), nil
	}
	return time.Since(start), relEOF(err)
}

// relEOF is nil for any way a connection ends, the error for a timeout.
func relEOF(err error) error {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("still open: %w", err)
	}
	return nil
}

// echo sends payload and waits for it to come back.
func (p *relPeer) echo(payload string) error {
	if err := p.send(payload); err != nil {
		return err
	}
	got, err := p.recv(10 * time.Second)
	if err != nil {
		return err
	}
	if got != payload {
		return fmt.Errorf("echo: got %q, want %q", got, payload)
	}
	return nil
}

// relConnect connects a peer that the test closes at its end.
func relConnect(t *testing.T, tg relTarget) *relPeer {
	t.Helper()
	p, err := tg.connect()
	require.NoError(t, err, "connect to %s", tg.name)
	t.Cleanup(p.Close)
	return p
}

// relQuietLog replaces getty's logger for one test, keeping what is logged
// (panics in OnError/OnClose, refused connections) out of the test output
// and available to assertions.
type relQuietLog struct {
	mu    sync.Mutex
	lines []string
}

func relSilence(t *testing.T) *relQuietLog {
	l := &relQuietLog{}
	prev := getty.GetLogger()
	getty.SetLogger(l)
	t.Cleanup(func() { getty.SetLogger(prev) })
	return l
}

func (l *relQuietLog) add(level, s string) {
	l.mu.Lock()
	if len(l.lines) < 10000 {
		l.lines = append(l.lines, level+" "+s)
	}
	l.mu.Unlock()
}

func (l *relQuietLog) count(sub string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, s := range l.lines {
		if strings.Contains(s, sub) {
			n++
		}
	}
	return n
}

func (l *relQuietLog) Info(a ...any)             { l.add("INFO", fmt.Sprint(a...)) }
func (l *relQuietLog) Warn(a ...any)             { l.add("WARN", fmt.Sprint(a...)) }
func (l *relQuietLog) Error(a ...any)            { l.add("ERROR", fmt.Sprint(a...)) }
func (l *relQuietLog) Debug(a ...any)            {}
func (l *relQuietLog) Infof(f string, a ...any)  { l.add("INFO", fmt.Sprintf(f, a...)) }
func (l *relQuietLog) Warnf(f string, a ...any)  { l.add("WARN", fmt.Sprintf(f, a...)) }
func (l *relQuietLog) Errorf(f string, a ...any) { l.add("ERROR", fmt.Sprintf(f, a...)) }
func (l *relQuietLog) Debugf(f string, a ...any) {}
func (l *relQuietLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

// relOpenFDs counts this process's open descriptors.
func relOpenFDs(t *testing.T) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	return len(ents)
}

// relGettySentinels are the errors a caller can match with errors.Is.
var relGettySentinels = []error{
	getty.ErrMsgTooLong, getty.ErrReaderContract, getty.ErrReadTimeout, getty.ErrPanic,
	getty.ErrSessionClosed, getty.ErrSessionBlocked, getty.ErrWriterNil, getty.ErrBadLength,
}

func relMatchesSentinel(err error) bool {
	for _, s := range relGettySentinels {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

// relHeapAfterGC returns the live heap after a collection.
func relHeapAfterGC() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// relErrRecorder keeps OnError and OnClose per remote address.
type relErrRecorder struct {
	getty.BaseListener
	echo bool

	mu     sync.Mutex
	errs   map[string][]error
	opens  map[string]int
	closes map[string]int
	closed chan string
}

func newRelErrRecorder(echo bool) *relErrRecorder {
	return &relErrRecorder{echo: echo, errs: map[string][]error{}, opens: map[string]int{},
		closes: map[string]int{}, closed: make(chan string, 1<<14)}
}

func (r *relErrRecorder) OnOpen(s getty.Session) error {
	r.mu.Lock()
	r.opens[s.RemoteAddr()]++
	r.mu.Unlock()
	return nil
}

func (r *relErrRecorder) OnError(s getty.Session, err error) {
	r.mu.Lock()
	r.errs[s.RemoteAddr()] = append(r.errs[s.RemoteAddr()], err)
	r.mu.Unlock()
}

func (r *relErrRecorder) OnClose(s getty.Session) {
	r.mu.Lock()
	r.closes[s.RemoteAddr()]++
	r.mu.Unlock()
	r.closed <- s.RemoteAddr()
}

func (r *relErrRecorder) OnMessage(s getty.Session, pkg any) {
	if r.echo {
		_, _, _ = s.WritePkg(pkg, 5*time.Second)
	}
}

// waitClose waits for the OnClose of the session whose peer is at addr and
// returns its OnError errors.
func (r *relErrRecorder) waitClose(t *testing.T, addr string) []error {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r.mu.Lock()
		n, errs := r.closes[addr], append([]error(nil), r.errs[addr]...)
		r.mu.Unlock()
		if n > 0 {
			assert.Equal(t, 1, n, "OnClose calls for %s", addr)
			return errs
		}
		require.Falsef(t, time.Now().After(deadline), "no OnClose for %s within 10s", addr)
		time.Sleep(5 * time.Millisecond)
	}
}

// relPeerIP is the loopback address a misbehaving peer dials from, so the
// server can tell it apart from the well-behaved ones (127.0.0.1) in the
// new-session callback: 127.0.<group>.<index+1>.
func relPeerIP(group, index int) *net.TCPAddr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, byte(group), byte(index+1))}
}

// relPeerIndex recovers index from a session's remote address; -1 for a
// peer dialing from 127.0.0.1 or another group.
func relPeerIndex(remote string, group int) int {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		return -1
	}
	ip := net.ParseIP(host).To4()
	if ip == nil || ip[0] != 127 || ip[1] != 0 || int(ip[2]) != group || ip[3] == 0 {
		return -1
	}
	return int(ip[3]) - 1
}
