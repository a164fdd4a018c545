package getty_test

// Reliability scenarios (issue 8): hostile framing, panics everywhere, slow
// readers, slowloris, churn, accept errors, half-open peers and graceful
// close, over every transport of the table where they apply. Fault
// injection through a real proxy lives in test/fault (its own module), the
// long soak in test/soak.
//
// Every loop is bounded in count and time, every address is loopback, and
// every test closes what it opened (goleak checks in TestMain).

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	gxsync "github.com/dubbogo/gost/sync"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	getty "github.com/getty-go/getty"
	"github.com/getty-go/getty/internal/race"
)

// ---- a raw peer for every transport ----------------------------------------

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

// ---- other helpers ----------------------------------------------------------

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

// relAllRows are the connection-oriented rows of the table. UDP (packet
// rows: one session for every peer, no connection to hold, drip or close)
// has its own hostile-input tests in udp_test.go.
func relAllRows() []transport { return relRows(func(tr transport) bool { return !tr.packet }) }

func relRows(keep func(transport) bool) []transport {
	var rows []transport
	for _, tr := range transports {
		if keep(tr) {
			rows = append(rows, tr)
		}
	}
	return rows
}

// relRun runs f per row as a subtest.
func relRun(t *testing.T, rows []transport, f func(t *testing.T, tr transport)) {
	t.Helper()
	for _, tr := range rows {
		t.Run(tr.name, func(t *testing.T) { f(t, tr) })
	}
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
		if time.Now().After(deadline) {
			t.Fatalf("no OnClose for %s within 10s", addr)
		}
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

// ---- 1. hostile framing ----------------------------------------------------

// relSignedCodec is a naive codec with a signed 4-byte length: a negative
// length yields a total <= 4 (or <= 0), which the session must refuse.
// headerForm reports the total before the package is there, as a
// length-field codec does; otherwise it returns a package at once.
type relSignedCodec struct{ headerForm bool }

func (c relSignedCodec) Read(_ getty.Session, b []byte) (any, int, error) {
	if len(b) < 4 {
		return nil, 0, nil
	}
	total := 4 + int(int32(binary.BigEndian.Uint32(b)))
	if c.headerForm && total > 4 && total > len(b) {
		return nil, total, nil
	}
	if c.headerForm && total <= 4 {
		return nil, total, nil
	}
	if total > len(b) {
		return nil, total, nil
	}
	return []byte("pkg"), total, nil
}

// relHostile is one hostile input: the bytes a peer sends after its
// handshake, the Reader the server uses for it, and the error expected.
type relHostile struct {
	name   string
	reader getty.Reader // nil: LengthFieldCodec{}
	data   []byte
	want   error // errors.Is target; nil: any getty sentinel
	wantSE bool  // only a *SessionError is expected (no sentinel fits)

	// a large limit, so the declared length is allowed and the peer
	// stalls: what is allocated must follow what arrives, not what is
	// declared; the read timeout ends the session
	bigLimit bool
}

const (
	relBigLimit     = 64 << 20
	relStallTimeout = 300 * time.Millisecond
)

func relRandom(n int, first byte, avoid byte) []byte {
	r := mrand.New(mrand.NewPCG(1, 2))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
		if b[i] == avoid {
			b[i]++
		}
	}
	b[0] = first
	return b
}

func relHostileStream() []relHostile {
	hdr := func(v uint32, rest int) []byte {
		b := binary.BigEndian.AppendUint32(nil, v)
		return append(b, make([]byte, rest)...)
	}
	neg := func(v int32) uint32 { return uint32(v) }
	return []relHostile{
		{name: "declared 1 GiB", data: hdr(1<<30, 100), want: getty.ErrMsgTooLong},
		{name: "declared 4 GiB", data: hdr(0xffffffff, 100), want: getty.ErrMsgTooLong},
		{name: "declared 64 MiB within the limit, then stalls", data: hdr(relBigLimit-4, 100), want: getty.ErrReadTimeout, bigLimit: true},
		{name: "signed negative header", reader: relSignedCodec{headerForm: true}, data: hdr(neg(-100), 100), want: getty.ErrReaderContract},
		{name: "signed negative package", reader: relSignedCodec{}, data: hdr(neg(-100), 100), want: getty.ErrReaderContract},
		{name: "signed zero total", reader: relSignedCodec{}, data: hdr(neg(-4), 100), want: getty.ErrReaderContract},
		{name: "signed most negative", reader: relSignedCodec{headerForm: true}, data: hdr(neg(-1<<31), 100), want: getty.ErrReaderContract},
		// A field that counts its own 4 bytes, and says 0: a negative payload.
		{name: "adjusted negative", reader: &getty.LengthFieldCodec{Adjustment: -4}, data: hdr(0, 100)},
		{name: "garbage", data: relRandom(256<<10, 0x7f, 0), want: getty.ErrMsgTooLong},
		{name: "garbage lines", reader: &getty.DelimiterCodec{}, data: relRandom(256<<10, 'x', '\n'), want: getty.ErrMsgTooLong},
		{name: "reader never progresses", reader: getty.ReaderFunc(func(getty.Session, []byte) (any, int, error) { return nil, 0, nil }),
			data: relRandom(256<<10, 0, 0), want: getty.ErrMsgTooLong},
		{name: "reader always wants one more", reader: getty.ReaderFunc(func(_ getty.Session, b []byte) (any, int, error) { return nil, len(b) + 1, nil }),
			data: relRandom(256<<10, 0, 0), want: getty.ErrMsgTooLong},
	}
}

func relHostileWS() []relHostile {
	var big []byte // one frame declaring 1 GiB, and the start of its payload
	big = append(big, 0x82, 0x80|127)
	big = binary.BigEndian.AppendUint64(big, 1<<30)
	big = append(big, 1, 2, 3, 4)
	big = append(big, make([]byte, 1024)...)
	var frags []byte // 8 fragments of 16 KiB: one 128 KiB message
	for i := 0; i < 8; i++ {
		op := byte(0x02)
		if i > 0 {
			op = 0x00
		}
		if i == 7 {
			op |= 0x80
		}
		frags = append(frags, relWSFrame(op, make([]byte, 16<<10))...)
	}
	var stall []byte // a frame declaring 64 MiB - 14 within a 64 MiB limit, stalled
	stall = append(stall, 0x82, 0x80|127)
	stall = binary.BigEndian.AppendUint64(stall, relBigLimit-14)
	stall = append(stall, 1, 2, 3, 4)
	stall = append(stall, make([]byte, 100)...)
	return []relHostile{
		{name: "frame declares 1 GiB", data: big, want: getty.ErrMsgTooLong},
		{name: "frame declares 64 MiB within the limit, then stalls", data: stall, want: getty.ErrReadTimeout, bigLimit: true},
		{name: "fragments over the limit", data: frags, want: getty.ErrMsgTooLong},
		{name: "codec declares 1 GiB in a message", data: relWSFrame(0x82, []byte{0x40, 0, 0, 0, 'a'})},
		{name: "garbage", data: relRandom(64<<10, 0xff, 0), wantSE: true},
	}
}

// Hostile bytes close their session with a matchable error, cost less than
// 1 MiB of allocation, and leave the other sessions served.
func TestReliabHostileFraming(t *testing.T) {
	relRun(t, relAllRows(), func(t *testing.T, tr transport) {
		const maxLen = 64 << 10
		cases := relHostileStream()
		if !tr.stream {
			cases = relHostileWS()
		}
		rec := newRelErrRecorder(true)
		srv := startServer(t, tr.newServer(t), func(s getty.Session) error {
			codec := &getty.LengthFieldCodec{}
			s.SetPkgHandler(codec)
			s.SetEventListener(rec)
			s.SetMaxMsgLen(maxLen)
			if i := relPeerIndex(s.RemoteAddr(), 2); i >= 0 {
				if cases[i].reader != nil {
					s.SetReader(cases[i].reader)
				}
				if cases[i].bigLimit {
					s.SetMaxMsgLen(relBigLimit)
					s.SetReadTimeout(relStallTimeout)
				}
			}
			return nil
		})
		tg := relTargetOf(t, tr, srv)
		good := relConnect(t, tg)
		require.NoError(t, good.echo("before"))

		for i, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				p, err := tg.connectFrom(relPeerIP(2, i))
				require.NoError(t, err)
				defer p.Close()
				addr := p.tcp.LocalAddr().String()
				eventually(t, "the session to open", func() bool {
					rec.mu.Lock()
					defer rec.mu.Unlock()
					return rec.opens[addr] == 1
				})

				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				_ = p.raw(c.data) // may fail: the server can close first
				_, err = p.waitClosed(10 * time.Second)
				require.NoError(t, err, "hostile peer not disconnected")
				errs := rec.waitClose(t, addr)
				runtime.ReadMemStats(&after)

				alloc := after.TotalAlloc - before.TotalAlloc
				t.Logf("allocated %d KiB while refusing %d bytes", alloc>>10, len(c.data))
				assert.Less(t, alloc, uint64(1<<20), "bytes allocated for the hostile session")
				require.Len(t, errs, 1, "one OnError")
				var se *getty.SessionError
				assert.ErrorAs(t, errs[0], &se, "OnError gets a *SessionError")
				switch {
				case c.wantSE:
				case c.want != nil:
					assert.ErrorIs(t, errs[0], c.want)
				default:
					assert.True(t, relMatchesSentinel(errs[0]),
						"error not matchable with errors.Is against any getty sentinel: %v", errs[0])
				}
				require.NoError(t, good.echo("after "+c.name), "the other session is still served")
			})
		}
	})
}

// ---- 2. panics everywhere ---------------------------------------------------

// relPanicKinds are the places a user's code can panic; a misbehaving peer
// dialing from 127.0.3.<k+1> makes the server panic in relPanicKinds[k].
var relPanicKinds = []string{
	"NewSessionCallback", "OnOpen", "OnMessage", "OnCron", "OnError", "OnClose", "Reader.Read", "Writer.Write",
}

type relKindKey struct{}

func relKind(s getty.Session) string {
	k, _ := s.GetAttribute(relKindKey{}).(string)
	return k
}

// relPanicListener echoes, and panics where its session's kind says.
type relPanicListener struct{ *relErrRecorder }

func (l relPanicListener) OnOpen(s getty.Session) error {
	if relKind(s) == "OnOpen" {
		panic("boom in OnOpen")
	}
	return l.relErrRecorder.OnOpen(s)
}

func (l relPanicListener) OnMessage(s getty.Session, pkg any) {
	if relKind(s) == "OnMessage" {
		panic("boom in OnMessage")
	}
	l.relErrRecorder.OnMessage(s, pkg)
}

func (l relPanicListener) OnCron(s getty.Session) {
	if relKind(s) == "OnCron" {
		panic("boom in OnCron")
	}
}

func (l relPanicListener) OnError(s getty.Session, err error) {
	l.relErrRecorder.OnError(s, err)
	if relKind(s) == "OnError" {
		panic("boom in OnError")
	}
}

func (l relPanicListener) OnClose(s getty.Session) {
	l.relErrRecorder.OnClose(s)
	if relKind(s) == "OnClose" {
		panic("boom in OnClose")
	}
}

// relPanicCodec is LengthFieldCodec with panics in Read and Write (both
// write paths: Write and AppendPkg).
type relPanicCodec struct{ *getty.LengthFieldCodec }

func (c relPanicCodec) Read(s getty.Session, b []byte) (any, int, error) {
	if relKind(s) == "Reader.Read" {
		panic("boom in Read")
	}
	return c.LengthFieldCodec.Read(s, b)
}

func (c relPanicCodec) Write(s getty.Session, pkg any) ([]byte, error) {
	if relKind(s) == "Writer.Write" {
		panic("boom in Write")
	}
	return c.LengthFieldCodec.Write(s, pkg)
}

func (c relPanicCodec) AppendPkg(s getty.Session, dst []byte, pkg any) ([]byte, error) {
	if relKind(s) == "Writer.Write" {
		panic("boom in AppendPkg")
	}
	return c.LengthFieldCodec.AppendPkg(s, dst, pkg)
}

// waitCloseErr is waitClose for any goroutine: it reports instead of failing.
func (r *relErrRecorder) waitCloseErr(addr string, timeout time.Duration) (closes int, errs []error, err error) {
	deadline := time.Now().Add(timeout)
	for {
		r.mu.Lock()
		closes, errs = r.closes[addr], append([]error(nil), r.errs[addr]...)
		r.mu.Unlock()
		if closes > 0 {
			return closes, errs, nil
		}
		if time.Now().After(deadline) {
			return 0, errs, fmt.Errorf("no OnClose for %s within %v", addr, timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// relEchoLoad runs echoes on one peer with up to window frames in flight
// and checks that each of n numbered frames comes back exactly once (in any
// order when ordered is false).
func relEchoLoad(p *relPeer, n, window int, ordered bool) error {
	seen := make([]bool, n)
	sent, got := 0, 0
	for sent < min(window, n) {
		if err := p.send(strconv.Itoa(sent)); err != nil {
			return fmt.Errorf("send %d: %w", sent, err)
		}
		sent++
	}
	for got < n {
		m, err := p.recv(20 * time.Second)
		if err != nil {
			return fmt.Errorf("after %d of %d echoes: %w", got, n, err)
		}
		i, err := strconv.Atoi(m)
		if err != nil || i < 0 || i >= n {
			return fmt.Errorf("bad echo %q", m)
		}
		if seen[i] {
			return fmt.Errorf("echo %d duplicated", i)
		}
		if ordered && i != got {
			return fmt.Errorf("echo %d out of order (want %d)", i, got)
		}
		seen[i] = true
		got++
		if sent < n {
			if err := p.send(strconv.Itoa(sent)); err != nil {
				return fmt.Errorf("send %d: %w", sent, err)
			}
			sent++
		}
	}
	return nil
}

// relCheckPanicPeer makes the server panic in kind for one session and
// checks the outcome; it runs on its own goroutine and reports with Errorf.
func relCheckPanicPeer(t *testing.T, tg relTarget, rec *relErrRecorder, k int) (addr string) {
	kind := relPanicKinds[k]
	p, err := tg.connectFrom(relPeerIP(3, k))
	if err != nil {
		if kind == "NewSessionCallback" || kind == "OnOpen" {
			return "" // refused while the client finished its handshake
		}
		t.Errorf("%s: connect: %v", kind, err)
		return ""
	}
	defer p.Close()
	addr = p.tcp.LocalAddr().String()
	switch kind {
	case "OnError":
		_ = p.sendBytes([]byte{0x40, 0, 0, 0}) // 1 GiB: fails the session
	case "OnClose":
		if err := p.echo("x"); err != nil {
			t.Errorf("%s: echo: %v", kind, err)
		}
		p.Close()
	case "OnMessage", "Reader.Read", "Writer.Write":
		_ = p.send("trigger")
	}
	if _, err := p.waitClosed(10 * time.Second); err != nil {
		t.Errorf("%s: peer not disconnected: %v", kind, err)
		return addr
	}
	if kind == "NewSessionCallback" || kind == "OnOpen" {
		return addr // checked at the end: never opened, never closed
	}
	closes, errs, err := rec.waitCloseErr(addr, 10*time.Second)
	if err != nil {
		t.Errorf("%s: %v", kind, err)
		return addr
	}
	if closes != 1 {
		t.Errorf("%s: %d OnClose calls", kind, closes)
	}
	switch kind {
	case "OnClose":
		if len(errs) != 0 {
			t.Errorf("%s: orderly close reported errors %v", kind, errs)
		}
	case "OnError":
		if len(errs) != 1 || errors.Is(errs[0], getty.ErrPanic) {
			t.Errorf("%s: want the decode error, got %v", kind, errs)
		}
	default:
		var pe *getty.PanicError
		switch {
		case len(errs) != 1:
			t.Errorf("%s: %d OnError calls: %v", kind, len(errs), errs)
		case !errors.Is(errs[0], getty.ErrPanic):
			t.Errorf("%s: OnError error does not match ErrPanic: %v", kind, errs[0])
		case !errors.As(errs[0], &pe) || pe.Callback != kind || !strings.Contains(fmt.Sprint(pe.Value), "boom") || len(pe.Stack) == 0:
			t.Errorf("%s: PanicError %+v", kind, pe)
		}
	}
	return addr
}

// Panics in every callback and in the codec, inline and on pools: the
// process survives, OnError carries the panic, and 50 other sessions
// complete their echoes without loss meanwhile.
func TestReliabPanics(t *testing.T) {
	sessions, echoes, rounds := 50, 1000, 3
	// -race makes an echo about 5x dearer: the full 1,000 on tcp, 200 on
	// the other rows (41 s for the whole table at 1,000 with -race).
	reduced := race.Enabled || testing.Short()
	modes := []struct {
		name    string
		opts    func() ([]getty.ServerOption, func())
		ordered bool
	}{
		{"inline", func() ([]getty.ServerOption, func()) { return nil, func() {} }, true},
		{"workers", func() ([]getty.ServerOption, func()) {
			return []getty.ServerOption{getty.WithServerWorkerPool(4)}, func() {}
		}, true},
		{"taskpool", func() ([]getty.ServerOption, func()) {
			pool := gxsync.NewTaskPoolSimple(4)
			return []getty.ServerOption{getty.WithServerTaskPool(pool)}, pool.Close
		}, false},
	}
	relRun(t, relAllRows(), func(t *testing.T, tr transport) {
		echoes := echoes
		if reduced && (tr.name != "tcp" || testing.Short()) {
			echoes = 200
		}
		for _, mode := range modes {
			t.Run(mode.name, func(t *testing.T) {
				log := relSilence(t)
				opts, stop := mode.opts()
				t.Cleanup(stop) // after the server's Close (cleanups run last-in first-out)
				rec := newRelErrRecorder(true)
				l := relPanicListener{rec}
				srv := startServer(t, tr.newServer(t, opts...), func(s getty.Session) error {
					kind := ""
					if k := relPeerIndex(s.RemoteAddr(), 3); k >= 0 {
						kind = relPanicKinds[k]
					}
					if kind == "NewSessionCallback" {
						panic("boom in NewSessionCallback")
					}
					s.SetAttribute(relKindKey{}, kind)
					s.SetPkgHandler(relPanicCodec{&getty.LengthFieldCodec{}})
					s.SetEventListener(l)
					s.SetMaxMsgLen(64 << 10)
					if kind == "OnCron" {
						s.SetCronPeriod(20)
					}
					return nil
				})
				tg := relTargetOf(t, tr, srv)
				peers := make([]*relPeer, sessions)
				for i := range peers {
					peers[i] = relConnect(t, tg)
				}

				start := time.Now()
				var wg sync.WaitGroup
				for _, p := range peers {
					wg.Add(1)
					go func() {
						defer wg.Done()
						if err := relEchoLoad(p, echoes, 16, mode.ordered); err != nil {
							t.Errorf("good session: %v", err)
						}
					}()
				}
				var bad sync.WaitGroup
				var badAddrs sync.Map // addr -> kind
				for r := 0; r < rounds; r++ {
					for k := range relPanicKinds {
						bad.Add(1)
						go func() {
							defer bad.Done()
							if a := relCheckPanicPeer(t, tg, rec, k); a != "" {
								badAddrs.Store(a, relPanicKinds[k])
							}
						}()
					}
					time.Sleep(20 * time.Millisecond)
				}
				bad.Wait()
				wg.Wait()
				t.Logf("%d sessions x %d echoes with %d panicking sessions in %v",
					sessions, echoes, rounds*len(relPanicKinds), time.Since(start).Round(time.Millisecond))

				// Still serving after all that.
				require.NoError(t, relConnect(t, tg).echo("still here"))
				for _, p := range peers {
					p.Close()
				}
				rec.mu.Lock()
				badAddrs.Range(func(a, k any) bool {
					if k == "NewSessionCallback" || k == "OnOpen" {
						assert.Zero(t, rec.opens[a.(string)]+rec.closes[a.(string)], "%s: refused session opened or closed", k)
					}
					return true
				})
				rec.mu.Unlock()
				assert.GreaterOrEqual(t, log.count("boom in OnError"), rounds, "panic in OnError logged")
				assert.GreaterOrEqual(t, log.count("boom in OnClose"), rounds, "panic in OnClose logged")
			})
		}
	})
}

// Every recovered panic is counted in the endpoint's statistics, the
// ones that keep a session from opening included.
func TestReliabPanicsCounted(t *testing.T) {
	relSilence(t)
	tr := transports[0]
	rec := newRelErrRecorder(true)
	l := relPanicListener{rec}
	srv := startServer(t, tr.newServer(t), func(s getty.Session) error {
		kind := ""
		if k := relPeerIndex(s.RemoteAddr(), 3); k >= 0 {
			kind = relPanicKinds[k]
		}
		if kind == "NewSessionCallback" {
			panic("boom in NewSessionCallback")
		}
		s.SetAttribute(relKindKey{}, kind)
		s.SetPkgHandler(relPanicCodec{&getty.LengthFieldCodec{}})
		s.SetEventListener(l)
		if kind == "OnCron" {
			s.SetCronPeriod(20)
		}
		return nil
	})
	tg := relTargetOf(t, tr, srv)
	for k := range relPanicKinds {
		relCheckPanicPeer(t, tg, rec, k)
	}
	var st getty.EndpointStats
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		st, _ = getty.EndpointStatsOf(srv)
		if st.Panics >= uint64(len(relPanicKinds)) {
			break
		}
	}
	assert.Equal(t, uint64(len(relPanicKinds)), st.Panics, "EndpointStats.Panics after one panic in each of %v", relPanicKinds)
}

// ---- 3. slow reader --------------------------------------------------------

// relSessionGrabber hands the server's sessions to the test.
func relSessionGrabber(l getty.EventListener, ch chan<- getty.Session, extra ...func(getty.Session)) getty.NewSessionCallback {
	return withCodec(l, append([]func(getty.Session){func(s getty.Session) {
		s.SetMaxMsgLen(128 << 10)
		ch <- s
	}}, extra...)...)
}

// A peer that never reads: WritePkg(64 KiB, 200 ms) fails within about its
// timeout, the session closes, and the heap does not grow with the backlog.
func TestReliabSlowReader(t *testing.T) {
	relRun(t, relAllRows(), func(t *testing.T, tr transport) {
		const timeout = 200 * time.Millisecond
		sessCh := make(chan getty.Session, 1)
		rec := newRelErrRecorder(false)
		srv := startServer(t, tr.newServer(t), relSessionGrabber(rec, sessCh))
		p := relConnect(t, relTargetOf(t, tr, srv)) // never reads
		s := <-sessCh
		pkg := bytes.Repeat([]byte{'x'}, 64<<10)

		heap0 := relHeapAfterGC()
		var (
			err     error
			n       int
			lastDur time.Duration
			worst   time.Duration
		)
		start := time.Now()
		for n = 0; n < 4000 && time.Since(start) < 30*time.Second; n++ {
			t0 := time.Now()
			_, _, err = s.WritePkg(pkg, timeout)
			lastDur = time.Since(t0)
			worst = max(worst, lastDur)
			if err != nil {
				break
			}
		}
		require.Error(t, err, "WritePkg kept succeeding on a peer that never reads")
		t.Logf("%d packages of 64 KiB (%d MiB) taken before the failure; failing call took %v (worst %v): %v",
			n, n*len(pkg)>>20, lastDur.Round(time.Millisecond), worst.Round(time.Millisecond), err)
		assert.Less(t, worst, 2*time.Second, "a WritePkg(pkg, %v) call took too long", timeout)
		var ne net.Error // gorilla hides the cause of a ws timeout, so not os.ErrDeadlineExceeded there
		assert.True(t, errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &ne) && ne.Timeout(),
			"the write error is a timeout: %v", err)
		eventually(t, "the session to close", s.IsClosed)
		errs := rec.waitClose(t, p.tcp.LocalAddr().String())
		require.Len(t, errs, 1)
		_, _, err = s.WritePkg(pkg, timeout)
		assert.ErrorIs(t, err, getty.ErrSessionClosed)
		heap1 := relHeapAfterGC()
		growth := int64(heap1) - int64(heap0)
		t.Logf("heap %d KiB -> %d KiB", heap0>>10, heap1>>10)
		assert.Less(t, growth, int64(4<<20), "heap growth after writing to a slow reader")
	})
}

// Writers with different timeouts on one session that a peer does not
// read: each call is bounded by its own timeout, not by the one of the
// writer ahead of it.
func TestReliabSlowReaderMixedTimeouts(t *testing.T) {
	relRun(t, relAllRows(), func(t *testing.T, tr transport) {
		sessCh := make(chan getty.Session, 1)
		srv := startServer(t, tr.newServer(t), relSessionGrabber(getty.BaseListener{}, sessCh))
		relConnect(t, relTargetOf(t, tr, srv)) // never reads
		s := <-sessCh
		pkg := bytes.Repeat([]byte{'x'}, 16<<10)

		// A patient writer fills the socket buffers and waits (3 s).
		patient := make(chan error, 1)
		go func() {
			var err error
			for i := 0; i < 4000 && err == nil; i++ {
				_, _, err = s.WritePkg(pkg, 3*time.Second)
			}
			patient <- err
		}()
		time.Sleep(500 * time.Millisecond) // the buffers are full by now
		start := time.Now()
		_, _, err := s.WritePkg("hurried", 200*time.Millisecond)
		took := time.Since(start)
		t.Logf("WritePkg(.., 200ms) behind a blocked writer returned after %v: %v", took.Round(time.Millisecond), err)
		assert.Error(t, err)
		assert.Less(t, took, 2*time.Second, "a 200 ms WritePkg waited for the writer ahead of it")
		s.Close()
		select {
		case <-patient:
		case <-time.After(10 * time.Second):
			t.Fatal("the patient writer never returned")
		}
	})
}

// ---- 4. slowloris ----------------------------------------------------------

// relDrip is how a slowloris peer starts and what it drips.
type relDrip struct {
	name  string
	row   string
	phase string // data, wsframe: after the handshake; handshake: TLS; upgrade: HTTP
}

func (d relDrip) bytes() []byte {
	switch d.phase {
	case "data":
		return frame("hello, slowly")
	case "wsframe": // a 14-byte header (64-bit length, mask), then the payload
		b := []byte{0x82, 0x80 | 127}
		b = binary.BigEndian.AppendUint64(b, 9)
		b = append(b, 0, 0, 0, 0)
		return append(b, frame("hello")...)
	case "handshake": // a TLS handshake record header declaring 512 bytes
		return append([]byte{0x16, 0x03, 0x01, 0x02, 0x00}, make([]byte, 512)...)
	case "upgrade":
		return []byte("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
			"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
	}
	panic(d.phase)
}

// One byte every 500 ms: the connection is closed within the read timeout
// (or handshake timeout) plus slack, while a normal client keeps connecting
// and echoing quickly.
func TestReliabSlowloris(t *testing.T) {
	const (
		limit  = time.Second
		drip   = 500 * time.Millisecond
		peers  = 8
		slack  = 1500 * time.Millisecond
		giveUp = 8 * time.Second
	)
	drips := []relDrip{
		{"tcp data", "tcp", "data"},
		{"tls data", "tls", "data"},
		{"tls handshake", "tls", "handshake"},
		{"ws upgrade", "ws", "upgrade"},
		{"ws frame header", "ws", "wsframe"},
		{"wss handshake", "wss", "handshake"},
		{"wss upgrade", "wss", "upgrade"},
	}
	for _, d := range drips {
		rows := relRows(func(tr transport) bool { return tr.name == d.row })
		if len(rows) == 0 {
			continue
		}
		tr := rows[0]
		t.Run(d.name, func(t *testing.T) {
			if d.phase == "wsframe" {
				// Known limitation: gorilla reads a frame header before
				// getty can tell a message has started, and a deadline
				// armed on an idle connection would break it for good
				// (gorilla's read errors are sticky). A dripped header is
				// only bounded by the idle check in OnCron for now.
				t.Skip("known limitation: the WebSocket read timeout starts after the frame header")
			}
			relSilence(t)
			rec := newRelErrRecorder(true)
			srv := startServer(t, tr.newServer(t, getty.WithServerHandshakeTimeout(limit)),
				withCodec(rec, func(s getty.Session) { s.SetReadTimeout(limit) }))
			tg := relTargetOf(t, tr, srv)

			type result struct {
				addr string
				took time.Duration
				err  error
			}
			results := make(chan result, peers)
			for i := 0; i < peers; i++ {
				go func() {
					var (
						p   *relPeer
						err error
					)
					if d.phase == "data" || d.phase == "wsframe" {
						p, err = tg.connect()
					} else {
						var tc *net.TCPConn
						if tc, err = tg.dialTCP(nil); err == nil {
							p = &relPeer{tcp: tc, c: tc}
							if d.row == "wss" && d.phase == "upgrade" {
								tlc := tls.Client(tc, tg.tlsCfg)
								err = tlc.Handshake()
								p.c = tlc
							}
						}
					}
					if err != nil {
						results <- result{err: err}
						return
					}
					defer p.Close()
					closed := make(chan time.Time, 1)
					go func() {
						_, _ = io.Copy(io.Discard, p.c)
						closed <- time.Now()
					}()
					b := d.bytes()
					start := time.Now()
					tick := time.NewTicker(drip)
					defer tick.Stop()
					deadline := time.After(giveUp)
					for i := 0; ; {
						if i < len(b) {
							_ = p.c.SetWriteDeadline(time.Now().Add(time.Second))
							if _, err := p.c.Write(b[i : i+1]); err == nil {
								i++
							}
						}
						select {
						case at := <-closed:
							results <- result{addr: p.tcp.LocalAddr().String(), took: at.Sub(start)}
							return
						case <-deadline:
							p.Close()
							<-closed
							results <- result{addr: p.tcp.LocalAddr().String(), err: fmt.Errorf("still open after %v", giveUp)}
							return
						case <-tick.C:
						}
					}
				}()
			}

			// A normal client meanwhile.
			var lat []time.Duration
			for i := 0; i < 10; i++ {
				t0 := time.Now()
				p, err := tg.connect()
				require.NoError(t, err)
				err = p.echo("normal")
				lat = append(lat, time.Since(t0))
				p.Close()
				require.NoError(t, err)
				time.Sleep(100 * time.Millisecond)
			}
			worst := lat[0]
			for _, l := range lat {
				worst = max(worst, l)
			}
			t.Logf("normal client: connect+echo %v first, %v worst, during the drip", lat[0].Round(time.Microsecond), worst.Round(time.Microsecond))
			assert.Less(t, worst, time.Second, "a normal client was slowed down by the slowloris peers")

			var slowest time.Duration
			for i := 0; i < peers; i++ {
				r := <-results
				if !assert.NoError(t, r.err, "slowloris peer %s", r.addr) {
					continue
				}
				slowest = max(slowest, r.took)
				assert.Less(t, r.took, limit+slack, "slowloris peer %s cut after %v", r.addr, r.took)
				assert.Greater(t, r.took, limit*8/10, "slowloris peer %s cut before the timeout", r.addr)
				if d.phase == "data" {
					errs := rec.waitClose(t, r.addr)
					if assert.Len(t, errs, 1) {
						assert.ErrorIs(t, errs[0], getty.ErrReadTimeout)
					}
				}
			}
			t.Logf("%d slowloris peers cut after at most %v (limit %v)", peers, slowest.Round(time.Millisecond), limit)
		})
	}
}

// ---- 5. churn --------------------------------------------------------------

// relChurnListener echoes, closes its session on "bye", and counts.
type relChurnListener struct {
	getty.BaseListener
	opens, closes, errs atomic.Int64
}

func (l *relChurnListener) OnOpen(getty.Session) error       { l.opens.Add(1); return nil }
func (l *relChurnListener) OnClose(getty.Session)            { l.closes.Add(1) }
func (l *relChurnListener) OnError(_ getty.Session, _ error) { l.errs.Add(1) }
func (l *relChurnListener) OnMessage(s getty.Session, pkg any) {
	if string(payload(pkg)) == "bye" {
		s.Close()
		return
	}
	_, _, _ = s.WritePkg(pkg, 5*time.Second)
}

// relChurnSize is how many sessions each churn round holds open at once.
func relChurnSize(tr transport) int {
	// A TLS handshake costs ~1 ms of CPU (~5 ms under -race): fewer
	// sessions on tls and wss, and on ws under -race.
	switch {
	case testing.Short():
		return 300
	case tr.name == "tcp":
		return 3000
	case tr.name == "ws" && !race.Enabled:
		return 3000
	case tr.name == "ws":
		return 1000
	case race.Enabled:
		return 200
	}
	return 500
}

// 3 rounds of N sessions open at once, one echo each, closed from
// alternating sides: OnOpen and OnClose balance, and goroutines and
// descriptors come back to their baseline.
func TestReliabChurn(t *testing.T) {
	relRun(t, relAllRows(), func(t *testing.T, tr transport) {
		const rounds, slack = 3, 5
		n := relChurnSize(tr)
		baseG, baseFD := runtime.NumGoroutine(), relOpenFDs(t)
		l := &relChurnListener{}
		srv := startServer(t, tr.newServer(t), withCodec(l))
		tg := relTargetOf(t, tr, srv)
		srvG, srvFD := runtime.NumGoroutine(), relOpenFDs(t)

		for r := 1; r <= rounds; r++ {
			start := time.Now()
			var (
				ready, done sync.WaitGroup
				release     = make(chan struct{})
				errs        = make(chan error, n)
			)
			for i := 0; i < n; i++ {
				ready.Add(1)
				done.Add(1)
				go func() {
					defer done.Done()
					p, err := tg.connect()
					if err == nil {
						err = p.echo(strconv.Itoa(i))
					}
					ready.Done()
					if err != nil {
						errs <- err
						if p != nil {
							p.Close()
						}
						return
					}
					<-release
					if i%2 == 0 {
						p.Close() // the client closes
						return
					}
					defer p.Close()
					if err := p.send("bye"); err != nil { // the server closes
						errs <- err
						return
					}
					if _, err := p.waitClosed(20 * time.Second); err != nil {
						errs <- fmt.Errorf("server did not close: %w", err)
					}
				}()
			}
			ready.Wait()
			opened := time.Since(start)
			open := l.opens.Load() - l.closes.Load()
			close(release)
			done.Wait()
			close(errs)
			nerr := 0
			for err := range errs {
				if nerr < 5 {
					t.Errorf("round %d: %v", r, err)
				}
				nerr++
			}
			require.Zero(t, nerr, "round %d: failed sessions", r)
			assert.Equal(t, int64(n), open, "round %d: sessions open at once", r)
			eventually(t, "every OnClose", func() bool { return l.closes.Load() == int64(r*n) })
			assert.Equal(t, int64(r*n), l.opens.Load(), "round %d: OnOpen calls", r)
			var g, fds int
			for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
				g, fds = runtime.NumGoroutine(), relOpenFDs(t)
				if g <= srvG+slack && fds <= srvFD+slack || time.Now().After(deadline) {
					break
				}
			}
			t.Logf("round %d: %d sessions open at once after %v, all closed after %v; goroutines %d (serving baseline %d), fds %d (baseline %d)",
				r, n, opened.Round(time.Millisecond), time.Since(start).Round(time.Millisecond), g, srvG, fds, srvFD)
			assert.LessOrEqual(t, g, srvG+slack, "round %d: goroutines left", r)
			assert.LessOrEqual(t, fds, srvFD+slack, "round %d: descriptors left", r)
		}
		assert.Zero(t, l.errs.Load(), "OnError calls")
		srv.Close()
		eventually(t, "goroutines and descriptors back to the baseline", func() bool {
			return runtime.NumGoroutine() <= baseG+slack && relOpenFDs(t) <= baseFD+slack
		})
	})
}

// ---- 6. accept errors and the connection cap -------------------------------

const relHelperEnv = "GETTY_RELIAB_HELPER"

// TestReliabHelperProcess is the child of TestReliabAcceptErrors: an echo
// server with few descriptors. It serves until its stdin closes.
func TestReliabHelperProcess(t *testing.T) {
	if os.Getenv(relHelperEnv) != "accept" {
		t.Skip("the server child of TestReliabAcceptErrors")
	}
	lim := syscall.Rlimit{Cur: 64, Max: 64}
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &old); err == nil && old.Max < lim.Max {
		lim.Max = old.Max
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		fmt.Fprintf(os.Stderr, "setrlimit: %v\n", err)
		os.Exit(2)
	}
	getty.SetLogger(relStderrLog{})
	srv := getty.NewTCPServer(getty.WithLocalAddress("127.0.0.1:0"))
	srv.RunEventLoop(withCodec(newRecorder(true)))
	if srv.Addr() == nil {
		os.Exit(3)
	}
	fmt.Printf("ADDR %s\n", srv.Addr())
	_, _ = io.Copy(io.Discard, os.Stdin)
	srv.Close()
	os.Exit(0)
}

// relStderrLog writes one line per log call, for the parent to read.
type relStderrLog struct{}

func (relStderrLog) line(level, s string) {
	fmt.Fprintf(os.Stderr, "%s %s\n", level, strings.ReplaceAll(s, "\n", " "))
}
func (l relStderrLog) Info(a ...any)             { l.line("INFO", fmt.Sprint(a...)) }
func (l relStderrLog) Warn(a ...any)             { l.line("WARN", fmt.Sprint(a...)) }
func (l relStderrLog) Error(a ...any)            { l.line("ERROR", fmt.Sprint(a...)) }
func (l relStderrLog) Debug(a ...any)            {}
func (l relStderrLog) Infof(f string, a ...any)  { l.line("INFO", fmt.Sprintf(f, a...)) }
func (l relStderrLog) Warnf(f string, a ...any)  { l.line("WARN", fmt.Sprintf(f, a...)) }
func (l relStderrLog) Errorf(f string, a ...any) { l.line("ERROR", fmt.Sprintf(f, a...)) }
func (l relStderrLog) Debugf(f string, a ...any) {}

// relCPUTicks reads a process's user+system CPU time in clock ticks.
func relCPUTicks(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:]) // fields from 3 on
	if len(f) < 13 {
		return 0, fmt.Errorf("short stat %q", s)
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64) // field 14, utime
	k, err2 := strconv.ParseInt(f[12], 10, 64) // field 15, stime
	return u + k, errors.Join(err1, err2)
}

// A server out of descriptors logs its accept errors and backs off (no
// spinning: its CPU stays low), then serves again once descriptors free up.
func TestReliabAcceptErrors(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("needs /proc and RLIMIT_NOFILE")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestReliabHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), relHelperEnv+"=accept")
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	var (
		logMu sync.Mutex
		logs  []string
		logAt []time.Time
	)
	var readers sync.WaitGroup
	readers.Add(1)
	go func() {
		defer readers.Done()
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			logMu.Lock()
			logs, logAt = append(logs, sc.Text()), append(logAt, time.Now())
			logMu.Unlock()
		}
	}()
	addrCh := make(chan string, 1)
	readers.Add(1)
	go func() {
		defer readers.Done()
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "ADDR "); ok {
				addrCh <- a
			}
		}
	}()
	defer func() {
		stdin.Close()
		select {
		case err := <-exited:
			assert.NoError(t, err, "child exit")
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
			t.Error("child did not exit within 10s of its stdin closing")
		}
	}()
	go func() {
		readers.Wait() // Wait must come after the pipes are drained
		exited <- cmd.Wait()
	}()
	var addr string
	select {
	case addr = <-addrCh:
	case <-time.After(20 * time.Second):
		t.Fatal("child server did not start")
	}
	acceptErrors := func() (n int, last time.Time, backoffs []string) {
		logMu.Lock()
		defer logMu.Unlock()
		for i, l := range logs {
			if strings.Contains(l, "accept") {
				n++
				last = logAt[i]
				if _, b, ok := strings.Cut(l, `retry_in="`); ok {
					b, _, _ = strings.Cut(b, `"`)
					backoffs = append(backoffs, b)
				}
			}
		}
		return
	}

	// More connections than the child has descriptors for.
	const extra = 100
	conns := make([]net.Conn, 0, extra)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := 0; i < extra; i++ {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		require.NoError(t, err, "connection %d (the kernel queues what is not accepted)", i)
		conns = append(conns, c)
	}
	eventually(t, "an accept error in the child's log", func() bool { n, _, _ := acceptErrors(); return n > 0 })
	time.Sleep(500 * time.Millisecond)

	// Over 2 s: CPU and accept errors logged.
	pid := cmd.Process.Pid
	n0, _, _ := acceptErrors()
	cpu0, err := relCPUTicks(pid)
	require.NoError(t, err)
	time.Sleep(2 * time.Second)
	cpu1, err := relCPUTicks(pid)
	require.NoError(t, err)
	n1, _, backoffs := acceptErrors()
	const hz = 100 // USER_HZ on Linux
	cpuShare := float64(cpu1-cpu0) / hz / 2
	t.Logf("child at its descriptor limit: %.1f%% of a CPU over 2 s, %d accept errors logged in that window (%d in all); backoffs %v",
		100*cpuShare, n1-n0, n1, backoffs)
	assert.Less(t, cpuShare, 0.2, "the accept loop spins")
	assert.LessOrEqual(t, n1-n0, 6, "accept errors retried faster than the backoff allows")
	if assert.NotEmpty(t, backoffs) {
		assert.Equal(t, "5ms", backoffs[0], "first backoff")
		assert.Contains(t, backoffs, "1s", "backoff reaches its 1 s cap")
	}
	logMu.Lock()
	assert.True(t, slicesContains(logs, "too many open files"), "the accept error says why")
	logMu.Unlock()

	// Free the descriptors: service resumes.
	for _, c := range conns {
		c.Close()
	}
	conns = conns[:0]
	start := time.Now()
	var served error
	for time.Since(start) < 10*time.Second {
		var c net.Conn
		if c, served = net.DialTimeout("tcp", addr, 5*time.Second); served == nil {
			served = func() error {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(3 * time.Second))
				if _, err := c.Write(frame("back")); err != nil {
					return err
				}
				var hdr [4]byte
				if _, err := io.ReadFull(c, hdr[:]); err != nil {
					return err
				}
				b := make([]byte, binary.BigEndian.Uint32(hdr[:]))
				_, err := io.ReadFull(c, b)
				if err == nil && string(b) != "back" {
					err = fmt.Errorf("echo %q", b)
				}
				return err
			}()
			if served == nil {
				break
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	require.NoError(t, served, "a new client is served once descriptors are free")
	t.Logf("served again %v after the extra connections closed", time.Since(start).Round(time.Millisecond))
}

func slicesContains(lines []string, sub string) bool {
	for _, l := range lines {
		if strings.Contains(l, sub) {
			return true
		}
	}
	return false
}

// WithServerMaxConnections(n): a connection beyond the cap is closed at
// once (refused with 503 by a WebSocket server) while the first n are
// served, and a slot frees up when one of them leaves.
func TestReliabMaxConnections(t *testing.T) {
	relRun(t, relAllRows(), func(t *testing.T, tr transport) {
		const n = 4
		relSilence(t)
		rec := newRelErrRecorder(true)
		srv := startServer(t, tr.newServer(t, getty.WithServerMaxConnections(n)), withCodec(rec))
		tg := relTargetOf(t, tr, srv)
		var peers []*relPeer
		for i := 0; i < n; i++ {
			p := relConnect(t, tg)
			require.NoError(t, p.echo("in"))
			peers = append(peers, p)
		}
		refused := func() time.Duration {
			t.Helper()
			start := time.Now()
			p, err := tg.connect()
			if err == nil {
				defer p.Close()
				if tg.ws {
					t.Fatalf("upgrade beyond the cap of %d succeeded", n)
				}
				_, err = p.waitClosed(5 * time.Second)
				require.NoError(t, err, "connection beyond the cap of %d still open", n)
			} else if tg.ws {
				assert.Contains(t, err.Error(), "status 503")
			}
			return time.Since(start)
		}
		took := refused()
		t.Logf("connection %d refused after %v", n+1, took.Round(time.Microsecond))
		assert.Less(t, took, time.Second, "refusal not immediate")
		for i, p := range peers {
			require.NoError(t, p.echo("still "+strconv.Itoa(i)), "session %d under the cap", i)
		}
		peers[0].Close()
		var p *relPeer
		eventually(t, "a slot to free up", func() bool {
			var err error
			p, err = tg.connect()
			if err == nil && p.echo("new") != nil {
				p.Close()
				p, err = nil, errors.New("closed")
			}
			return err == nil
		})
		p.Close()
	})
}

// ---- 7. half-open peers ----------------------------------------------------

// relIdleListener is the user pattern for half-open peers: OnCron closes a
// session that has been silent for longer than idle. It may also send a
// heartbeat from OnCron (a client), and echo (a server).
type relIdleListener struct {
	getty.BaseListener
	idle      time.Duration
	heartbeat bool
	echo      bool
	closes    atomic.Int64
	idleClose sync.Map // Session -> time.Time the idle check closed it
}

func (l *relIdleListener) OnCron(s getty.Session) {
	if time.Since(s.GetActive()) > l.idle {
		l.idleClose.Store(s, time.Now())
		s.Close()
		return
	}
	if l.heartbeat {
		_, _, _ = s.WritePkg("heartbeat", time.Second)
	}
}

func (l *relIdleListener) OnClose(getty.Session) { l.closes.Add(1) }

func (l *relIdleListener) OnMessage(s getty.Session, pkg any) {
	if l.echo {
		_, _, _ = s.WritePkg(pkg, time.Second)
	}
}

// A peer that stops answering but keeps its socket is found by the OnCron
// idle check within one cron period plus a tick of the idle limit, while a
// live peer sending as often is left alone.
func TestReliabHalfOpenPeer(t *testing.T) {
	relRun(t, relAllRows(), func(t *testing.T, tr transport) {
		const (
			period = 100 * time.Millisecond
			idle   = 300 * time.Millisecond
			tick   = 10 * time.Millisecond // the timer wheel's
			slack  = 250 * time.Millisecond
		)
		l := &relIdleListener{idle: idle, echo: true}
		srv := startServer(t, tr.newServer(t), withCodec(l, func(s getty.Session) { s.SetCronPeriod(int(period / time.Millisecond)) }))
		tg := relTargetOf(t, tr, srv)
		live := relConnect(t, tg)
		silent := relConnect(t, tg)
		require.NoError(t, silent.echo("last words"))
		lastActive := time.Now()

		// The live peer talks every 50 ms (and answers pings) meanwhile.
		stop := make(chan struct{})
		liveErr := make(chan error, 1)
		go func() {
			tick := time.NewTicker(50 * time.Millisecond)
			defer tick.Stop()
			for i := 0; ; i++ {
				select {
				case <-stop:
					liveErr <- nil
					return
				case <-tick.C:
				}
				if err := live.echo("alive " + strconv.Itoa(i)); err != nil {
					liveErr <- err
					return
				}
			}
		}()
		// The silent peer sends nothing (not even a WebSocket pong) and
		// just watches for the server to end the connection.
		closedCh := make(chan error, 1)
		go func() {
			_, err := silent.waitClosed(idle + period + 5*time.Second)
			closedCh <- err
		}()
		var err error
		select {
		case err = <-closedCh:
		case <-time.After(10 * time.Second):
			t.Fatal("waitClosed did not return")
		}
		seen := time.Since(lastActive)
		close(stop)
		require.NoError(t, <-liveErr, "the live peer was disturbed")
		require.NoError(t, err, "silent peer still connected %v after its last message (idle limit %v, cron %v)", seen, idle, period)
		var closedAt time.Time
		l.idleClose.Range(func(_, v any) bool { closedAt = v.(time.Time); return true })
		require.False(t, closedAt.IsZero(), "the idle check did not close the silent session")
		took := closedAt.Sub(lastActive)
		t.Logf("silent peer closed by the idle check %v after its last message (limit %v + cron %v + tick %v); the peer saw the end after %v",
			took.Round(time.Millisecond), idle, period, tick, seen.Round(time.Millisecond))
		assert.Less(t, took, idle+period+tick+slack)
		assert.GreaterOrEqual(t, took, idle)
		assert.Less(t, seen, took+slack, "the peer saw the end late")
		require.NoError(t, live.echo("still alive"))
	})
}

// relStuckServer echoes, except on the first session it sees, whose
// OnMessage blocks (so it also stops reading: no WebSocket pong either) until
// release closes: a server that went silent on one connection.
type relStuckServer struct {
	getty.BaseListener
	first   atomic.Pointer[getty.Session]
	release chan struct{}
	opens   atomic.Int64
}

func (l *relStuckServer) OnOpen(s getty.Session) error {
	l.opens.Add(1)
	l.first.CompareAndSwap(nil, &s)
	return nil
}

func (l *relStuckServer) OnMessage(s getty.Session, pkg any) {
	if f := l.first.Load(); f != nil && *f == s {
		<-l.release
		return
	}
	_, _, _ = s.WritePkg(pkg, time.Second)
}

// A client pool of 2 whose server goes silent on one session: the
// client's own OnCron idle check closes that session and the pool replaces
// it.
func TestReliabHalfOpenClientPool(t *testing.T) {
	relRun(t, relAllRows(), func(t *testing.T, tr transport) {
		const (
			period = 100 * time.Millisecond
			idle   = 300 * time.Millisecond
		)
		srvL := &relStuckServer{release: make(chan struct{})}
		srv := startServer(t, tr.newServer(t), withCodec(srvL))
		t.Cleanup(func() { close(srvL.release) }) // before the server closes
		cliL := &relIdleListener{idle: idle, heartbeat: true}
		cli := startClient(t, tr.newClient(t, srv, getty.WithConnectionNumber(2), getty.WithReconnectInterval(int(50*time.Millisecond))),
			withCodec(cliL, func(s getty.Session) { s.SetCronPeriod(int(period / time.Millisecond)) }))
		before := cli.Sessions()
		require.Len(t, before, 2)

		var detected time.Time
		eventually(t, "the idle check to close the silent session", func() bool {
			n := 0
			cliL.idleClose.Range(func(k, v any) bool {
				detected = v.(time.Time)
				s := k.(getty.Session)
				took := detected.Sub(s.GetActive())
				t.Logf("client idle check closed a session %v after its last read (limit %v + cron %v + tick)", took.Round(time.Millisecond), idle, period)
				assert.Less(t, took, idle+period+10*time.Millisecond+250*time.Millisecond)
				n++
				return true
			})
			return n > 0
		})
		var replaced time.Duration
		eventually(t, "the silent session to be replaced", func() bool {
			replaced = time.Since(detected)
			return len(cli.Sessions()) == 2 && srvL.opens.Load() == 3
		})
		t.Logf("client pool back to 2 sessions %v after the detection", replaced.Round(time.Millisecond))
		// WebSocket waits up to its 1 s close grace for the dead peer's close frame.
		assert.Less(t, replaced, 2*time.Second, "replacement too slow")
		assert.Equal(t, int64(1), cliL.closes.Load(), "only the silent session was closed")
		// Both sessions of the pool are served.
		for _, s := range cli.Sessions() {
			_, _, err := s.WritePkg("after", time.Second)
			require.NoError(t, err)
		}
		time.Sleep(2 * idle)
		assert.Equal(t, int64(1), cliL.closes.Load(), "a live session was closed by the idle check")
	})
}

// ---- 8. graceful close -----------------------------------------------------

// relBurstListener writes count numbered messages from OnMessage on "go",
// then closes its session.
type relBurstListener struct {
	getty.BaseListener
	count int
	errs  chan error
}

func (l *relBurstListener) OnMessage(s getty.Session, pkg any) {
	if string(payload(pkg)) != "go" {
		return
	}
	for i := 0; i < l.count; i++ {
		if _, _, err := s.WritePkg(fmt.Sprintf("%06d", i), 10*time.Second); err != nil {
			l.errs <- fmt.Errorf("message %d: %w", i, err)
			return
		}
	}
	s.Close()
}

// relReadNumbered reads count numbered messages in order, then the end.
func relReadNumbered(p *relPeer, count int) error {
	for i := 0; i < count; i++ {
		m, err := p.recv(10 * time.Second)
		if err != nil {
			return fmt.Errorf("after %d of %d messages: %w", i, count, err)
		}
		if want := fmt.Sprintf("%06d", i); m != want {
			return fmt.Errorf("message %d is %q", i, m)
		}
	}
	m, err := p.recv(10 * time.Second)
	if !errors.Is(err, errRelClosed) {
		return fmt.Errorf("after the last message: %q, %v (want the end)", m, err)
	}
	if _, err := p.waitClosed(10 * time.Second); err != nil {
		return err
	}
	return nil
}

// 10,000 numbered messages, then Close: the peer gets all of them in order,
// then the end of the stream. Written from a goroutine, or from OnMessage
// (inline, where replies are gathered while more input waits, or on the
// worker pool).
func TestReliabGracefulClose(t *testing.T) {
	const count = 10000
	relRun(t, relAllRows(), func(t *testing.T, tr transport) {
		t.Run("writer goroutine", func(t *testing.T) {
			sessCh := make(chan getty.Session, 1)
			srv := startServer(t, tr.newServer(t), relSessionGrabber(getty.BaseListener{}, sessCh))
			p := relConnect(t, relTargetOf(t, tr, srv))
			s := <-sessCh
			done := make(chan error, 1)
			go func() { done <- relReadNumbered(p, count) }()
			for i := 0; i < count; i++ {
				_, _, err := s.WritePkg(fmt.Sprintf("%06d", i), 10*time.Second)
				require.NoError(t, err, "message %d", i)
			}
			s.Close()
			require.NoError(t, <-done)
		})
		for _, mode := range []string{"inline", "workers"} {
			t.Run("from OnMessage "+mode, func(t *testing.T) {
				var opts []getty.ServerOption
				if mode == "workers" {
					opts = append(opts, getty.WithServerWorkerPool(2))
				}
				l := &relBurstListener{count: count, errs: make(chan error, 1)}
				srv := startServer(t, tr.newServer(t, opts...), withCodec(l))
				p := relConnect(t, relTargetOf(t, tr, srv))
				done := make(chan error, 1)
				go func() { done <- relReadNumbered(p, count) }()
				// "go" and more input in one write: inline dispatch gathers
				// the replies, and Close must flush them.
				if tr.stream {
					require.NoError(t, p.raw(append(frame("go"), frame("more")...)))
				} else {
					require.NoError(t, p.send("go"))
					require.NoError(t, p.send("more"))
				}
				select {
				case err := <-done:
					require.NoError(t, err)
				case err := <-l.errs:
					t.Fatal(err)
				}
			})
		}
	})
}

// Three Close calls race 32 writers: no panic, no race, every write
// returns nil or ErrSessionClosed, and the peer gets exactly the messages
// whose write returned nil, each whole.
func TestReliabConcurrentClose(t *testing.T) {
	relRun(t, relAllRows(), func(t *testing.T, tr transport) {
		for round := 0; round < 5; round++ {
			sessCh := make(chan getty.Session, 1)
			srv := startServer(t, tr.newServer(t), relSessionGrabber(getty.BaseListener{}, sessCh))
			p := relConnect(t, relTargetOf(t, tr, srv))
			s := <-sessCh
			received := make(chan int, 1)
			go func() {
				n := 0
				for {
					if _, err := p.recv(10 * time.Second); err != nil {
						if !errors.Is(err, errRelClosed) {
							t.Errorf("peer: %v", err)
						}
						received <- n
						return
					}
					n++
				}
			}()
			var (
				wg sync.WaitGroup
				ok atomic.Int64
			)
			for w := 0; w < 32; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; i < 200; i++ {
						_, _, err := s.WritePkg(fmt.Sprintf("w%02d-%03d", w, i), 5*time.Second)
						if err == nil {
							ok.Add(1)
							continue
						}
						if !errors.Is(err, getty.ErrSessionClosed) {
							t.Errorf("write: %v", err)
						}
						return
					}
				}()
			}
			for i := 0; i < 3; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					time.Sleep(time.Duration(1+round) * time.Millisecond)
					s.Close()
				}()
			}
			wg.Wait()
			select {
			case n := <-received:
				assert.Equal(t, int(ok.Load()), n, "round %d: messages received vs writes that returned nil", round)
			case <-time.After(15 * time.Second):
				t.Fatal("peer did not see the end")
			}
			srv.Close()
		}
	})
}

// relBlocker blocks OnMessage until release closes.
type relBlocker struct {
	getty.BaseListener
	entered chan struct{}
	release chan struct{}
	closed  chan struct{}
}

func (b *relBlocker) OnMessage(getty.Session, any) {
	b.entered <- struct{}{}
	<-b.release
}

func (b *relBlocker) OnClose(getty.Session) { close(b.closed) }

// Shutdown with a session stuck in OnMessage returns ctx.Err() when ctx
// ends, and the socket is closed all the same; once the handler returns,
// everything ends.
func TestReliabShutdownStuckSession(t *testing.T) {
	relRun(t, relAllRows(), func(t *testing.T, tr transport) {
		for _, mode := range []string{"inline", "workers"} {
			t.Run(mode, func(t *testing.T) {
				var opts []getty.ServerOption
				if mode == "workers" {
					opts = append(opts, getty.WithServerWorkerPool(2))
				}
				b := &relBlocker{entered: make(chan struct{}, 1), release: make(chan struct{}), closed: make(chan struct{})}
				srv := tr.newServer(t, opts...)
				srv.RunEventLoop(withCodec(b))
				var once sync.Once
				unblock := func() { once.Do(func() { close(b.release) }) }
				t.Cleanup(func() { unblock(); srv.Close() })
				p := relConnect(t, relTargetOf(t, tr, srv))
				require.NoError(t, p.send("block"))
				<-b.entered

				ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
				defer cancel()
				start := time.Now()
				err := srv.Shutdown(ctx)
				took := time.Since(start)
				assert.ErrorIs(t, err, context.DeadlineExceeded)
				assert.Less(t, took, 2*time.Second, "Shutdown outlived its context")

				gone, err := p.waitClosed(3 * time.Second)
				assert.NoError(t, err, "socket of the stuck session still open %v after Shutdown returned", gone)
				t.Logf("Shutdown returned after %v, the peer saw the end %v later", took.Round(time.Millisecond), gone.Round(time.Millisecond))

				unblock()
				select {
				case <-b.closed:
				case <-time.After(5 * time.Second):
					t.Fatal("no OnClose once the handler returned")
				}
				srv.Close()
			})
		}
	})
}

// Close on a peer that stopped reading: Close is bounded by the wait time
// (SetWaitTime), not by a writer's longer timeout nor by TLS's 5 s
// close_notify attempt, and a writer blocked on the session is released.
func TestReliabCloseWithStuckPeer(t *testing.T) {
	const wait = 200 * time.Millisecond
	relRun(t, relAllRows(), func(t *testing.T, tr transport) {
		t.Run("writer in flight", func(t *testing.T) {
			sessCh := make(chan getty.Session, 1)
			rec := newRelErrRecorder(false)
			srv := startServer(t, tr.newServer(t), relSessionGrabber(rec, sessCh, func(s getty.Session) { s.SetWaitTime(wait) }))
			relConnect(t, relTargetOf(t, tr, srv)) // never reads
			s := <-sessCh
			writer := make(chan time.Time, 1)
			go func() {
				pkg := bytes.Repeat([]byte{'x'}, 16<<10)
				for i := 0; i < 4000; i++ {
					if _, _, err := s.WritePkg(pkg, 3*time.Second); err != nil {
						break
					}
				}
				writer <- time.Now()
			}()
			time.Sleep(300 * time.Millisecond) // the writer is blocked by now
			start := time.Now()
			s.Close()
			took := time.Since(start)
			var released time.Duration
			select {
			case at := <-writer:
				released = at.Sub(start)
			case <-time.After(10 * time.Second):
				t.Fatal("writer still blocked 10s after Close")
			}
			t.Logf("Close returned after %v (wait time %v); the blocked writer was released after %v",
				took.Round(time.Millisecond), wait, released.Round(time.Millisecond))
			assert.Less(t, took, wait+1300*time.Millisecond, "Close waited past its wait time")
			assert.Less(t, released, wait+1300*time.Millisecond, "a writer stayed blocked after Close")
		})
		t.Run("full buffer, no writer", func(t *testing.T) {
			sessCh := make(chan getty.Session, 1)
			srv := startServer(t, tr.newServer(t), relSessionGrabber(getty.BaseListener{}, sessCh, func(s getty.Session) { s.SetWaitTime(wait) }))
			relConnect(t, relTargetOf(t, tr, srv)) // never reads
			s := <-sessCh
			// Fill the TCP socket under the session (under TLS too) until
			// it takes no more bytes; the session has no write pending.
			tcp := tcpConnOfRel(s.Conn())
			require.NotNil(t, tcp)
			require.NoError(t, relFill(tcp))
			start := time.Now()
			s.Close()
			took := time.Since(start)
			t.Logf("Close with a full send buffer returned after %v (wait time %v)", took.Round(time.Millisecond), wait)
			assert.Less(t, took, wait+1300*time.Millisecond, "Close waited past its wait time")
		})
	})
}

// tcpConnOfRel finds the TCP socket under a connection (through TLS).
func tcpConnOfRel(c net.Conn) *net.TCPConn {
	for range 4 {
		switch cc := c.(type) {
		case *net.TCPConn:
			return cc
		case interface{ NetConn() net.Conn }:
			c = cc.NetConn()
		default:
			return nil
		}
	}
	return nil
}

// relFill writes to a socket whose peer does not read until the kernel
// takes no more (three 50 ms attempts in a row write nothing), so even a
// small write (a TLS close_notify) would block.
func relFill(c *net.TCPConn) error {
	defer c.SetWriteDeadline(time.Time{})
	chunk := make([]byte, 16<<10)
	_ = c.SetWriteDeadline(time.Now().Add(300 * time.Millisecond))
	for i := 0; i < 4000; i++ {
		if _, err := c.Write(chunk); err != nil {
			break
		}
	}
	for i, zero := 0, 0; i < 100; i++ {
		time.Sleep(20 * time.Millisecond)
		_ = c.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
		if n, _ := c.Write(chunk); n > 0 { // a probe of 1 byte would fit in the last segment's room
			zero = 0
			continue
		}
		if zero++; zero == 3 {
			return nil
		}
	}
	return errors.New("the socket kept taking bytes")
}
