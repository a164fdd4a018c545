package getty_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/getty-go/getty/internal/leakcheck"

	getty "github.com/getty-go/getty"
	"github.com/getty-go/getty/internal/testcert"
)

func TestWSEcho(t *testing.T) {
	run(t, func(t *testing.T, tr transport) {
		var conns sync.Map
		srvRec := newRecorder(true)
		srv := startServer(t, tr.newServer(t), withCodec(srvRec, func(s getty.Session) { conns.Store(s.Conn(), true) }))
		require.Implements(t, (*getty.StreamServer)(nil), srv)
		require.NotNil(t, srv.(getty.StreamServer).Listener())
		want := getty.WS_SERVER
		if tr.name == "wss" {
			want = getty.WSS_SERVER
		}
		assert.Equal(t, want, srv.EndPointType())

		cliRec := newRecorder(false)
		cli := startClient(t, tr.newClient(t, srv, getty.WithConnectionNumber(2)), withCodec(cliRec))
		s, err := cli.Session()
		require.NoError(t, err)
		assert.Equal(t, want-5, cli.EndPointType(), "WS_CLIENT / WSS_CLIENT")
		for i := 0; i < 200; i++ {
			msg := fmt.Sprintf("hello %d %s", i, strings.Repeat("x", i*50))
			total, sent, err := s.WritePkg(msg, time.Second)
			require.NoError(t, err)
			assert.Equal(t, 4+len(msg), total)
			assert.Equal(t, total, sent)
			assert.Equal(t, msg, cliRec.next(t))
		}
		// Conn is the net.Conn under the WebSocket.
		conns.Range(func(k, _ any) bool {
			if tr.name == "wss" {
				assert.Equal(t, "*tls.Conn", fmt.Sprintf("%T", k))
			} else {
				assert.IsType(t, &net.TCPConn{}, k)
			}
			return true
		})

		cli.Close()
		cliRec.waitClosed(t, 2)
		srvRec.waitClosed(t, 2)
		opens, closes, errs := srvRec.counts()
		assert.Equal(t, 2, opens)
		assert.Equal(t, 2, closes)
		assert.Empty(t, errs, "an orderly close reports no error")
		_, _, errs = cliRec.counts()
		assert.Empty(t, errs)
	}, overWebSocket)
}

// Per-message deflate, turned on at both ends, still echoes.
func TestWSCompressedEcho(t *testing.T) {
	run(t, func(t *testing.T, tr transport) {
		compress := func(s getty.Session) { s.SetCompressType(getty.CompressBestSpeed) }
		srvRec := newRecorder(true)
		srv := startServer(t, tr.newServer(t), withCodec(srvRec, compress))
		cliRec := newRecorder(false)
		cli := startClient(t, tr.newClient(t, srv), withCodec(cliRec, compress))
		s, err := cli.Session()
		require.NoError(t, err)
		for i := 0; i < 20; i++ {
			msg := strings.Repeat(fmt.Sprintf("compressible %d ", i), 200)
			_, _, err := s.WritePkg(msg, time.Second)
			require.NoError(t, err)
			assert.Equal(t, msg, cliRec.next(t))
		}
	}, overWebSocket)
}

// ---- a raw WebSocket peer ---------------------------------------------------

type rawWS struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

// handshake sends an upgrade request and returns the response.
func wsHandshake(t *testing.T, addr, path string, header map[string]string) (*rawWS, *http.Response) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	var b strings.Builder
	fmt.Fprintf(&b, "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n", path, addr)
	b.WriteString("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n")
	for k, v := range header {
		fmt.Fprintf(&b, "%s: %s\r\n", k, v)
	}
	b.WriteString("\r\n")
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	_, err = io.WriteString(c, b.String())
	require.NoError(t, err)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	require.NoError(t, err)
	resp.Body.Close()
	return &rawWS{t: t, c: c, br: br}, resp
}

func dialRawWS(t *testing.T, srv getty.Server) *rawWS {
	t.Helper()
	r, resp := wsHandshake(t, srv.Addr().String(), "/", nil)
	require.Equal(t, http.StatusSwitchingProtocols, resp.StatusCode)
	return r
}

const (
	opCont   = 0x0
	opText   = 0x1
	opBinary = 0x2
	opClose  = 0x8
	opPing   = 0x9
	opPong   = 0xA
)

// frameBytes encodes one frame; first holds FIN, RSV and opcode bits.
func frameBytes(first byte, masked bool, payload []byte) []byte {
	out := []byte{first, 0}
	switch n := len(payload); {
	case n < 126:
		out[1] = byte(n)
	case n < 1<<16:
		out[1] = 126
		out = binary.BigEndian.AppendUint16(out, uint16(n))
	default:
		out[1] = 127
		out = binary.BigEndian.AppendUint64(out, uint64(n))
	}
	if !masked {
		return append(out, payload...)
	}
	out[1] |= 0x80
	var key [4]byte
	_, _ = rand.Read(key[:])
	out = append(out, key[:]...)
	for i, b := range payload {
		out = append(out, b^key[i%4])
	}
	return out
}

func (r *rawWS) send(first byte, masked bool, payload []byte) {
	r.t.Helper()
	_ = r.c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, err := r.c.Write(frameBytes(first, masked, payload))
	require.NoError(r.t, err)
}

// read reads one frame from the server (unmasked).
func (r *rawWS) read() (fin bool, op byte, payload []byte, err error) {
	_ = r.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	return readServerFrame(r.br)
}

// readServerFrame reads one frame a server sent: unmasked, at most 16 MiB.
func readServerFrame(br *bufio.Reader) (fin bool, op byte, payload []byte, err error) {
	var h [2]byte
	if _, err = io.ReadFull(br, h[:]); err != nil {
		return
	}
	fin, op = h[0]&0x80 != 0, h[0]&0x0f
	if h[1]&0x80 != 0 {
		return fin, op, nil, errors.New("server frame is masked")
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var e [2]byte
		if _, err = io.ReadFull(br, e[:]); err != nil {
			return
		}
		n = uint64(binary.BigEndian.Uint16(e[:]))
	case 127:
		var e [8]byte
		if _, err = io.ReadFull(br, e[:]); err != nil {
			return
		}
		n = binary.BigEndian.Uint64(e[:])
	}
	if n > 16<<20 {
		return fin, op, nil, fmt.Errorf("server frame of %d bytes", n)
	}
	payload = make([]byte, n)
	_, err = io.ReadFull(br, payload)
	return
}

// closeCode reads frames until a close frame and returns its code (1005
// when it has none).
func (r *rawWS) closeCode() int {
	r.t.Helper()
	for i := 0; i < 100; i++ {
		_, op, p, err := r.read()
		require.NoError(r.t, err, "reading until the close frame")
		if op != opClose {
			continue
		}
		if len(p) < 2 {
			return 1005
		}
		return int(binary.BigEndian.Uint16(p))
	}
	r.t.Fatal("no close frame")
	return 0
}

// waitEOF asserts the server closes the TCP connection.
func (r *rawWS) waitEOF() {
	r.t.Helper()
	_ = r.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := io.Copy(io.Discard, r.br)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		r.t.Fatal("connection not closed by the server within 5s")
	}
}

func closePayload(code int, text string) []byte {
	return append(binary.BigEndian.AppendUint16(nil, uint16(code)), text...)
}

// ---- protocol -------------------------------------------------------------

func TestWSProtocolViolations(t *testing.T) {
	const limit = 1024
	type wsViolation struct {
		name string
		send func(r *rawWS)
		code int
	}
	cases := []wsViolation{
		{"unmasked client frame", func(r *rawWS) { r.send(0x80|opBinary, false, frame("x")) }, 1002},
		{"RSV1 without an extension", func(r *rawWS) { r.send(0x80|0x40|opBinary, true, frame("x")) }, 1002},
		{"RSV2 set", func(r *rawWS) { r.send(0x80|0x20|opBinary, true, frame("x")) }, 1002},
		{"RSV3 set", func(r *rawWS) { r.send(0x80|0x10|opBinary, true, frame("x")) }, 1002},
		{"reserved data opcode", func(r *rawWS) { r.send(0x80|0x3, true, frame("x")) }, 1002},
		{"reserved control opcode", func(r *rawWS) { r.send(0x80|0xB, true, nil) }, 1002},
		{"oversized control frame", func(r *rawWS) { r.send(0x80|opPing, true, make([]byte, 126)) }, 1002},
		{"fragmented control frame", func(r *rawWS) { r.send(opPing, true, []byte("p")) }, 1002},
		{"continuation without a start", func(r *rawWS) { r.send(0x80|opCont, true, frame("x")) }, 1002},
		{"new message inside a fragmented one", func(r *rawWS) {
			r.send(opBinary, true, []byte{0, 0})
			r.send(0x80|opBinary, true, frame("x"))
		}, 1002},
		{"invalid close code", func(r *rawWS) { r.send(0x80|opClose, true, closePayload(1004, "")) }, 1002},
		{"invalid UTF-8 in a close reason", func(r *rawWS) { r.send(0x80|opClose, true, closePayload(1000, "\xff")) }, 1002},
		{"invalid UTF-8 in a text message", func(r *rawWS) {
			r.send(0x80|opText, true, append([]byte{0, 0, 0, 2}, 0xff, 0xfe))
		}, 1007},
		{"message over the limit", func(r *rawWS) { r.send(0x80|opBinary, true, make([]byte, limit+1)) }, 1009},
		{"fragmented message over the limit", func(r *rawWS) {
			r.send(opBinary, true, make([]byte, limit/2+1))
			r.send(0x80|opCont, true, make([]byte, limit/2+1))
		}, 1009},
	}
	runWSPlain := func(t *testing.T, name string, send func(*rawWS), code int) {
		rec := newRecorder(true)
		srv := startServer(t, row("ws").newServer(t), withCodec(rec, func(s getty.Session) { s.SetMaxMsgLen(limit) }))
		r := dialRawWS(t, srv)
		send(r)
		assert.Equal(t, code, r.closeCode(), name)
		r.waitEOF()
		rec.waitClosed(t, 1)
		time.Sleep(20 * time.Millisecond) // a second OnError would show up by now
		opens, closes, errs := rec.counts()
		assert.Equal(t, 1, opens)
		assert.Equal(t, 1, closes)
		require.Len(t, errs, 1, "OnError exactly once")
		var se *getty.SessionError
		assert.ErrorAs(t, errs[0], &se)
		if code == 1009 {
			assert.ErrorIs(t, errs[0], getty.ErrMsgTooLong)
		}

		// The server keeps serving.
		ok := dialRawWS(t, srv)
		ok.send(0x80|opBinary, true, frame("still served"))
		_, op, p, err := ok.read()
		require.NoError(t, err)
		assert.Equal(t, byte(opBinary), op)
		assert.Equal(t, frame("still served"), p)
	}
	// Each case waits out the close handshake's grace period (1 s: the
	// raw peer never answers the close), so they run at once.
	atOnce(t, cases, func(c wsViolation) string { return c.name }, func(t *testing.T, c wsViolation) {
		runWSPlain(t, c.name, c.send, c.code)
	})
}

// One WritePkg, WriteBytes or WriteBytesArray is one binary message; text
// messages are read too; pings are answered.
func TestWSMessageFraming(t *testing.T) {
	l := &framingListener{recorder: newRecorder(false)}
	srv := startServer(t, row("ws").newServer(t), withCodec(l))
	r := dialRawWS(t, srv)

	expect := func(want []byte) {
		t.Helper()
		fin, op, p, err := r.read()
		require.NoError(t, err)
		assert.True(t, fin, "one frame per message")
		assert.Equal(t, byte(opBinary), op)
		assert.Equal(t, want, p)
	}
	r.send(0x80|opBinary, true, frame("pkg"))
	expect(frame("pkg"))
	r.send(0x80|opText, true, frame("bytes"))
	expect(frame("bytes"))
	r.send(0x80|opBinary, true, frame("array"))
	expect(append(frame("a"), frame("rray")...))
	// A fragmented message reaches the Reader whole.
	whole := frame("fragmented")
	r.send(opBinary, true, whole[:3])
	r.send(opCont, true, whole[3:7])
	r.send(0x80|opCont, true, whole[7:])
	expect(whole)

	r.send(0x80|opPing, true, []byte("are you there"))
	_, op, p, err := r.read()
	require.NoError(t, err)
	assert.Equal(t, byte(opPong), op)
	assert.Equal(t, "are you there", string(p))

	// The peer closes: the server echoes 1000 and closes; no OnError.
	r.send(0x80|opClose, true, closePayload(1000, "bye"))
	assert.Equal(t, 1000, r.closeCode())
	r.waitEOF()
	l.waitClosed(t, 1)
	_, _, errs := l.counts()
	assert.Empty(t, errs)
}

type framingListener struct{ *recorder }

func (l *framingListener) OnMessage(s getty.Session, pkg any) {
	switch p := string(payload(pkg)); p {
	case "pkg", "fragmented":
		_, _, _ = s.WritePkg(p, 0)
	case "bytes":
		_, _ = s.WriteBytes(frame(p))
	case "array":
		_, _ = s.WriteBytesArray(frame("a"), frame("rray"))
	}
}

// Session.Close sends close 1000 and waits for the peer's answer.
func TestWSSessionCloseSendsNormalClosure(t *testing.T) {
	var got getty.Session
	opened := make(chan struct{})
	rec := newRecorder(false)
	srv := startServer(t, row("ws").newServer(t), withCodec(rec, func(s getty.Session) { got = s; close(opened) }))
	r := dialRawWS(t, srv)
	<-opened
	eventually(t, "OnOpen", func() bool { o, _, _ := rec.counts(); return o == 1 })
	got.Close()
	assert.Equal(t, 1000, r.closeCode())
	r.send(0x80|opClose, true, closePayload(1000, ""))
	r.waitEOF()
	rec.waitClosed(t, 1)
	_, _, errs := rec.counts()
	assert.Empty(t, errs)
}

// A peer that never answers the close is dropped after the grace period.
func TestWSCloseWithSilentPeer(t *testing.T) {
	var got getty.Session
	opened := make(chan struct{})
	rec := newRecorder(false)
	srv := startServer(t, row("ws").newServer(t), withCodec(rec, func(s getty.Session) { got = s; close(opened) }))
	r := dialRawWS(t, srv)
	<-opened
	start := time.Now()
	got.Close()
	assert.Equal(t, 1000, r.closeCode())
	r.waitEOF()
	rec.waitClosed(t, 1)
	assert.Less(t, time.Since(start), 3*time.Second)
}

// The server pings every cron period; a pong marks the session active.
func TestWSServerPings(t *testing.T) {
	var got getty.Session
	opened := make(chan struct{})
	rec := newRecorder(false)
	srv := startServer(t, row("ws").newServer(t), withCodec(rec, func(s getty.Session) {
		s.SetCronPeriod(30)
		got = s
		close(opened)
	}))
	r := dialRawWS(t, srv)
	<-opened
	_, op, _, err := r.read()
	require.NoError(t, err)
	require.Equal(t, byte(opPing), op)
	before := got.GetActive()
	time.Sleep(20 * time.Millisecond)
	r.send(0x80|opPong, true, nil)
	eventually(t, "pong marks the session active", func() bool { return got.GetActive().After(before) })
	_, op, _, err = r.read()
	require.NoError(t, err)
	assert.Equal(t, byte(opPing), op, "pings keep coming")
}

func TestWSOriginAndPath(t *testing.T) {
	t.Run("default origin check", func(t *testing.T) {
		srv := startServer(t, row("ws").newServer(t), withCodec(newRecorder(false)))
		addr := srv.Addr().String()
		for origin, want := range map[string]int{
			"":                      http.StatusSwitchingProtocols,
			"http://" + addr:        http.StatusSwitchingProtocols,
			"https://" + addr:       http.StatusSwitchingProtocols,
			"http://evil.example":   http.StatusForbidden,
			"http://" + addr + ".x": http.StatusForbidden,
		} {
			h := map[string]string{}
			if origin != "" {
				h["Origin"] = origin
			}
			_, resp := wsHandshake(t, addr, "/", h)
			assert.Equal(t, want, resp.StatusCode, "origin %q", origin)
		}
	})
	t.Run("custom origin check", func(t *testing.T) {
		srv := startServer(t, row("ws").newServer(t, getty.WithWebsocketOriginCheck(func(o string) bool {
			return o == "https://good.example"
		})), withCodec(newRecorder(false)))
		addr := srv.Addr().String()
		_, resp := wsHandshake(t, addr, "/", map[string]string{"Origin": "https://good.example"})
		assert.Equal(t, http.StatusSwitchingProtocols, resp.StatusCode)
		_, resp = wsHandshake(t, addr, "/", map[string]string{"Origin": "https://bad.example"})
		assert.Equal(t, http.StatusForbidden, resp.StatusCode)
		_, resp = wsHandshake(t, addr, "/", nil)
		assert.Equal(t, http.StatusForbidden, resp.StatusCode, "a custom check sees the missing Origin as \"\"")
	})
	t.Run("path", func(t *testing.T) {
		srv := startServer(t, row("ws").newServer(t, getty.WithWebsocketServerPath("/echo")), withCodec(newRecorder(true)))
		addr := srv.Addr().String()
		_, resp := wsHandshake(t, addr, "/other", nil)
		assert.Equal(t, http.StatusNotFound, resp.StatusCode)
		_, resp = wsHandshake(t, addr, "/echo/sub", nil)
		assert.Equal(t, http.StatusNotFound, resp.StatusCode)
		_, resp = wsHandshake(t, addr, "/echo", nil)
		assert.Equal(t, http.StatusSwitchingProtocols, resp.StatusCode)

		rec := newRecorder(false)
		cli := startClient(t, getty.NewWSClient(getty.WithServerAddress(wsURL(srv, "ws", "/echo"))), withCodec(rec))
		s, err := cli.Session()
		require.NoError(t, err)
		_, _, err = s.WritePkg("via /echo", 0)
		require.NoError(t, err)
		assert.Equal(t, "via /echo", rec.next(t))
	})
	t.Run("empty path means /", func(t *testing.T) {
		srv := startServer(t, row("ws").newServer(t, getty.WithWebsocketServerPath("")), withCodec(newRecorder(false)))
		_, resp := wsHandshake(t, srv.Addr().String(), "/", nil)
		assert.Equal(t, http.StatusSwitchingProtocols, resp.StatusCode)
	})
	t.Run("plain HTTP", func(t *testing.T) {
		srv := startServer(t, row("ws").newServer(t), withCodec(newRecorder(false)))
		resp, err := http.Get("http://" + srv.Addr().String() + "/")
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
		http.DefaultClient.CloseIdleConnections()
	})
}

// A request that stalls in its headers (or, for WSS, in the TLS
// handshake) is dropped after the handshake timeout, before any callback.
func TestWSHandshakeTimeout(t *testing.T) {
	run(t, func(t *testing.T, tr transport) {
		var calls atomic.Int32
		srv := startServer(t, tr.newServer(t, getty.WithServerHandshakeTimeout(200*time.Millisecond)),
			func(getty.Session) error { calls.Add(1); return nil })
		c := rawDial(t, srv)
		if tr.name == "ws" {
			_, _ = io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n")
		}
		start := time.Now()
		waitEOF(t, c)
		assert.Less(t, time.Since(start), 3*time.Second)
		assert.GreaterOrEqual(t, time.Since(start), 150*time.Millisecond)
		assert.Zero(t, calls.Load())
	}, overWebSocket)
}

// Close and Shutdown with live sessions close them all, run every OnClose,
// and leave no goroutine behind.
func TestWSServerCloseWithLiveSessions(t *testing.T) {
	for _, graceful := range []bool{false, true} {
		name := "Close"
		if graceful {
			name = "Shutdown"
		}
		t.Run(name, func(t *testing.T) {
			run(t, func(t *testing.T, tr transport) {
				ignore := goleak.IgnoreCurrent()
				srvRec := newRecorder(true)
				srv := tr.newServer(t)
				srv.RunEventLoop(withCodec(srvRec))
				cliRec := newRecorder(false)
				cli := tr.newClient(t, srv, getty.WithConnectionNumber(4), getty.WithReconnectInterval(int(10*time.Millisecond)))
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				require.NoError(t, cli.RunEventLoopContext(ctx, withCodec(cliRec)))
				for _, s := range cli.Sessions() {
					_, _, err := s.WritePkg("ping", 0)
					require.NoError(t, err)
				}
				for range 4 {
					cliRec.next(t)
				}

				done := make(chan error, 1)
				go func() {
					if graceful {
						done <- srv.Shutdown(ctx)
					} else {
						srv.Close()
						done <- nil
					}
				}()
				select {
				case err := <-done:
					require.NoError(t, err)
				case <-time.After(5 * time.Second):
					t.Fatal("server close did not return")
				}
				opens, closes, errs := srvRec.counts()
				assert.Equal(t, 4, opens)
				assert.Equal(t, 4, closes, "every OnClose ran before Close returned")
				assert.Empty(t, errs)
				assert.True(t, srv.IsClosed())
				srv.Close() // again: no-op

				cliRec.waitClosed(t, 4)
				cli.Close()
				goleak.VerifyNone(t, leakcheck.Options(ignore)...)
			}, overWebSocket)
		})
	}
}

// Closing a WSS server that never ran, or twice, does not panic; a bad
// certificate is Serve's error.
func TestWSSServerCloseAndConfigErrors(t *testing.T) {
	srv := getty.NewWSSServer(getty.WithLocalAddress("127.0.0.1:0"))
	srv.Close()
	srv.Close()
	assert.ErrorIs(t, srv.Serve(withCodec(newRecorder(false))), getty.ErrServerClosed)

	srv = getty.NewWSSServer(getty.WithLocalAddress("127.0.0.1:0"))
	err := srv.Serve(withCodec(newRecorder(false)))
	assert.ErrorContains(t, err, "certificate")
	srv.Close()

	srv = getty.NewWSSServer(getty.WithLocalAddress("127.0.0.1:0"),
		getty.WithWebsocketServerCert("/nonexistent.pem"), getty.WithWebsocketServerPrivateKey("/nonexistent-key.pem"))
	srv.RunEventLoop(withCodec(newRecorder(false))) // logs the error
	srv.Close()
}

// A WSS server with a root certificate requires verified client
// certificates; it keeps serving good clients after refusing bad ones.
func TestWSSClientCertificates(t *testing.T) {
	set := testcert.New(t)
	srvRec := newRecorder(true)
	var callbacks sync.Map
	srv := startServer(t, getty.NewWSSServer(
		getty.WithLocalAddress("127.0.0.1:0"),
		getty.WithWebsocketServerCert(set.Server.Cert),
		getty.WithWebsocketServerPrivateKey(set.Server.Key),
		getty.WithWebsocketServerRootCert(set.CA),
	), withCodec(srvRec, func(s getty.Session) { callbacks.Store(s.RemoteAddr(), true) }))
	url := wsURL(srv, "wss", "/")

	for name, pair := range map[string]*testcert.Pair{
		"no client certificate": nil,
		"unknown CA":            &set.UnknownCA,
		"expired":               &set.Expired,
	} {
		t.Run(name, func(t *testing.T) {
			b := &getty.ClientTlsConfigBuilder{ClientTrustCertCollectionPath: set.CA}
			if pair != nil {
				b.ClientKeyCertChainPath, b.ClientPrivateKeyPath = pair.Cert, pair.Key
			}
			reported := make(chan error, 1)
			cli := getty.NewWSSClient(getty.WithServerAddress(url), getty.WithClientTlsConfigBuilder(b),
				getty.WithReconnectAttempts(1),
				getty.WithClientErrorHandler(func(_ getty.Client, err error) { reported <- err }))
			defer cli.Close()
			cli.Start(withCodec(newRecorder(false)))
			select {
			case err := <-reported:
				assert.ErrorIs(t, err, getty.ErrReconnectGaveUp)
				// Under TLS 1.3 the server refuses the certificate after the
				// client's side of the handshake is done; older Go
				// toolchains then report the reset of the upgrade request
				// instead of the TLS alert.
				if !strings.Contains(err.Error(), "tls") {
					assert.ErrorIs(t, err, syscall.ECONNRESET)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("the client was not refused")
			}
		})
	}
	opens, _, _ := srvRec.counts()
	assert.Zero(t, opens, "no refused client reached OnOpen")

	rec := newRecorder(false)
	cli := startClient(t, getty.NewWSSClient(getty.WithServerAddress(url),
		getty.WithClientTlsConfigBuilder(&getty.ClientTlsConfigBuilder{
			ClientKeyCertChainPath: set.Client.Cert, ClientPrivateKeyPath: set.Client.Key,
			ClientTrustCertCollectionPath: set.CA,
		})), withCodec(rec))
	s, err := cli.Session()
	require.NoError(t, err)
	_, _, err = s.WritePkg("mutual", 0)
	require.NoError(t, err)
	assert.Equal(t, "mutual", rec.next(t))
}

// A WSS client verifies the server: a server certificate of an unknown CA
// is refused.
func TestWSSClientVerifiesServer(t *testing.T) {
	set := testcert.New(t)
	srvRec := newRecorder(true)
	srv := startServer(t, getty.NewWSSServer(
		getty.WithLocalAddress("127.0.0.1:0"),
		getty.WithWebsocketServerCert(set.UnknownCA.Cert),
		getty.WithWebsocketServerPrivateKey(set.UnknownCA.Key),
	), withCodec(srvRec))
	reported := make(chan error, 1)
	cli := getty.NewWSSClient(getty.WithServerAddress(wsURL(srv, "wss", "/")), getty.WithRootCertificateFile(set.CA),
		getty.WithReconnectAttempts(1),
		getty.WithClientErrorHandler(func(_ getty.Client, err error) { reported <- err }))
	defer cli.Close()
	cli.Start(withCodec(newRecorder(false)))
	select {
	case err := <-reported:
		assert.ErrorContains(t, err, "unknown authority")
	case <-time.After(5 * time.Second):
		t.Fatal("the client accepted an unknown CA")
	}
	opens, _, _ := srvRec.counts()
	assert.Zero(t, opens)
}

// A peer that stops reading cannot hold Close up: the blocked write fails
// at its deadline and Close returns.
func TestWSCloseWithStuckPeer(t *testing.T) {
	sessCh := make(chan getty.Session, 1)
	rec := newRecorder(false)
	srv := row("ws").newServer(t)
	srv.RunEventLoop(withCodec(rec, func(s getty.Session) { s.SetWriteTimeout(300 * time.Millisecond); sessCh <- s }))
	r := dialRawWS(t, srv)
	_ = r // never reads
	s := <-sessCh
	blocked := make(chan struct{})
	go func() {
		defer close(blocked)
		big := make([]byte, 64<<10)
		for i := 0; i < 2000; i++ {
			if _, err := s.WriteBytes(big); err != nil {
				return
			}
		}
	}()
	time.Sleep(100 * time.Millisecond)
	start := time.Now()
	srv.Close()
	assert.Less(t, time.Since(start), 3*time.Second)
	select {
	case <-blocked:
	case <-time.After(5 * time.Second):
		t.Fatal("writer still blocked after Close")
	}
	_, closes, _ := rec.counts()
	assert.Equal(t, 1, closes)
}
