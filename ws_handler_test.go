package getty_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	getty "github.com/getty-go/getty"
)

// serveMux serves h on a loopback http.Server until the test ends.
func serveMux(t *testing.T, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() { defer close(done); _ = hs.Serve(ln) }()
	t.Cleanup(func() { hs.Close(); <-done })
	return ln.Addr().String()
}

// kindCodec takes each message whole and records whether it was text.
type kindPkg struct {
	text bool
	data []byte
}

var kindCodec = getty.NewReadWriter(
	getty.ReaderFunc(func(s getty.Session, buf []byte) (any, int, error) {
		return kindPkg{text: getty.WSMessageIsText(s), data: bytes.Clone(buf)}, len(buf), nil
	}),
	getty.WriterFunc(func(_ getty.Session, pkg any) ([]byte, error) { return pkg.([]byte), nil }),
)

// kindEcho answers "text:<data>" or "binary:<data>", as text messages.
type kindEcho struct {
	getty.BaseListener
	opens, closes atomic.Int32
}

func (e *kindEcho) OnOpen(getty.Session) error { e.opens.Add(1); return nil }
func (e *kindEcho) OnClose(getty.Session)      { e.closes.Add(1) }
func (e *kindEcho) OnMessage(s getty.Session, pkg any) {
	p := pkg.(kindPkg)
	kind := "binary:"
	if p.text {
		kind = "text:"
	}
	_, _, _ = s.WritePkg(append([]byte(kind), p.data...), 0)
}

func TestWSHandlerOnAMux(t *testing.T) {
	srv := getty.NewWSServer()
	t.Cleanup(srv.Close)
	l := &kindEcho{}
	h, err := getty.NewWSHandler(srv, func(s getty.Session) error {
		s.SetPkgHandler(kindCodec)
		s.SetEventListener(l)
		require.True(t, getty.SetWSTextMessages(s, true))
		return nil
	})
	require.NoError(t, err)
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "<html>page</html>") })
	mux.Handle("/ws", h)
	addr := serveMux(t, mux)

	// The page and the socket share the port.
	resp, err := http.Get("http://" + addr + "/")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	http.DefaultClient.CloseIdleConnections()
	assert.Equal(t, "<html>page</html>", string(body))

	r, resp := wsHandshake(t, addr, "/ws", map[string]string{"Origin": "http://" + addr})
	require.Equal(t, http.StatusSwitchingProtocols, resp.StatusCode)
	r.send(0x80|opText, true, []byte("hi"))
	_, op, p, err := r.read()
	require.NoError(t, err)
	assert.Equal(t, byte(opText), op, "the session writes text messages")
	assert.Equal(t, "text:hi", string(p))
	r.send(0x80|opBinary, true, []byte{1, 2})
	_, op, p, err = r.read()
	require.NoError(t, err)
	assert.Equal(t, byte(opText), op)
	assert.Equal(t, "binary:\x01\x02", string(p))
	eventually(t, "the session counts on srv", func() bool { return srv.SessionCount() == 1 })

	// A foreign origin is refused as on srv.
	_, resp = wsHandshake(t, addr, "/ws", map[string]string{"Origin": "http://evil.example"})
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)

	// A getty client works too.
	rec := newRecorder(false)
	cli := startClient(t, getty.NewWSClient(getty.WithServerAddress("ws://"+addr+"/ws")), func(s getty.Session) error {
		s.SetPkgHandler(wholeMessageCodec)
		s.SetEventListener(rec)
		return nil
	})
	s, err := cli.Session()
	require.NoError(t, err)
	_, _, err = s.WritePkg([]byte("from getty"), 0)
	require.NoError(t, err)
	assert.Equal(t, "binary:from getty", rec.next(t))
	cli.Close()

	// srv owns the sessions: Shutdown ends them, and the handler refuses
	// new ones.
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- srv.Shutdown(ctx) }()
	assert.Equal(t, 1000, r.closeCode())
	r.send(0x80|opClose, true, closePayload(1000, ""))
	r.waitEOF()
	require.NoError(t, <-done)
	assert.Equal(t, l.opens.Load(), l.closes.Load())
	_, resp = wsHandshake(t, addr, "/ws", nil)
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
}

func TestWSHandlerErrors(t *testing.T) {
	cb := withCodec(newRecorder(false))
	tcp := getty.NewTCPServer()
	defer tcp.Close()
	_, err := getty.NewWSHandler(tcp, cb)
	assert.Error(t, err)
	ws := getty.NewWSServer()
	_, err = getty.NewWSHandler(ws, nil)
	assert.Error(t, err)
	ws.Close()
	_, err = getty.NewWSHandler(ws, cb)
	assert.ErrorIs(t, err, getty.ErrServerClosed)
	assert.False(t, getty.SetWSTextMessages(nil, true))
	assert.False(t, getty.WSMessageIsText(nil))
}
