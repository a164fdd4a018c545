package getty

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"

	"github.com/getty-go/getty/internal/bufpool"
	"github.com/getty-go/getty/internal/wheel"
)

// wsCloseGrace bounds the close handshake: how long a closing session waits
// to write its close frame and then to read the peer's close frame back.
const wsCloseGrace = time.Second

// wsTLSCloseGrace bounds the close_notify of a WSS connection (closeTLS):
// the close handshake has already had its time.
const wsTLSCloseGrace = 100 * time.Millisecond

// wsWriteBufferSize is the frame buffer a connection borrows from
// wsWriteBuffers while it writes a message (none while idle).
const wsWriteBufferSize = 16 << 10

// wsWriteBuffers lends write buffers to every WebSocket connection, so an
// idle connection holds none (gorilla's WriteBufferPool).
var wsWriteBuffers sync.Pool

// wsTransport carries a session over a WebSocket connection (gorilla).
//
// Reading happens on the session's reader goroutine only: one whole message
// at a time, handed to session.handleMessage. Writing is serialized by mu:
// data messages (one WebSocket message per WritePkg, WriteBytes or
// WriteBytesArray), pings, pongs and close frames all take it, so gorilla
// never sees two writers. The only frames written without mu are the close
// frames gorilla sends by itself when the peer breaks the protocol (1002) or
// a message is over the read limit (1009); gorilla writes those with
// WriteControl, which it documents as safe next to any other method, and
// they are written on the reader goroutine while the connection is failing.
type wsTransport struct {
	ws      *websocket.Conn
	raw     net.Conn   // the connection under nc: *net.TCPConn, or *tls.Conn for WSS
	nc      *wsNetConn // what gorilla reads through: frame tracking, read deadline
	deflate bool       // permessage-deflate was negotiated

	mu          writeLock // serializes every write; guards closeSent and compressing
	closeSent   bool
	compressing bool // write compression is on: data messages go through gorilla

	// dlMu orders the reader's per-message read deadline against the close
	// grace deadline that shutdown sets, so the reader never clears it.
	dlMu    sync.Mutex
	closing atomic.Bool // shutdown or closeNow began
	reading atomic.Bool // readLoop is running

	text     atomic.Bool // write text messages (SetWSTextMessages)
	readText atomic.Bool // the message being decoded is text (WSMessageIsText)

	handed    uint64 // data messages readMessages has read (to compare with nc.f.msgs)
	gathering bool   // nc is corked by readMessages

	s          atomic.Value // messageSession, set by readMessages; for pings
	ping       *wheel.Timer
	pingQueued atomic.Bool
}

func newWSTransport(ws *websocket.Conn, deflate bool) *wsTransport {
	t := &wsTransport{ws: ws, raw: ws.NetConn(), deflate: deflate, mu: newWriteLock()}
	if nc, ok := t.raw.(*wsNetConn); ok {
		t.nc, t.raw = nc, nc.Conn
		nc.f.deflate = deflate
		nc.t = t
	}
	// gorilla compresses every message by default once deflate is
	// negotiated; CompressNone means raw bytes until SetCompressType.
	ws.EnableWriteCompression(false)
	t.ping = wheel.Default().NewTimerFor((*pingTimer)(t))
	return t
}

func (t *wsTransport) conn() net.Conn { return t.raw }

// cork and uncork bracket a dispatch batch (a mailbox drain, a queued
// unordered task, a message of several packages): wsNetConn gathers the
// frames written meanwhile and writes them together when the last batch
// ends (connection_ws_write.go).
func (t *wsTransport) cork() {
	if t.nc != nil {
		t.nc.cork()
	}
}

func (t *wsTransport) uncork(flush bool, timeout time.Duration) error {
	if t.nc == nil {
		return nil
	}
	return t.nc.uncork(flush, timeout)
}

// setCompress switches per-message deflate for the messages written from
// now on: flate levels turn it on (when the peer negotiated it), CompressNone
// turns it off; snappy is not a WebSocket extension.
func (t *wsTransport) setCompress(c CompressType) bool {
	t.mu.lock()
	defer t.mu.unlock()
	switch {
	case c == CompressNone:
		t.ws.EnableWriteCompression(false)
		t.compressing = false
		return true
	case c >= CompressHuffman && c <= CompressBestCompression:
		if !t.deflate {
			return false
		}
		if err := t.ws.SetCompressionLevel(int(c)); err != nil {
			return false
		}
		t.ws.EnableWriteCompression(true)
		t.compressing = true
		return true
	}
	return false
}

// write sends first and more as one data message (binary, or text after
// SetWSTextMessages) within timeout.
func (t *wsTransport) write(first []byte, more [][]byte, timeout time.Duration) (int, error) {
	if !t.mu.lockWithin(timeout) {
		// Another write has held the connection for this call's whole
		// timeout: the peer is not reading. Fail the connection, which
		// also releases that writer.
		t.closeRaw()
		return 0, fmt.Errorf("%w: write waited %v for the connection", os.ErrDeadlineExceeded, timeout)
	}
	defer t.mu.unlock()
	if t.closeSent {
		return 0, ErrSessionClosed
	}
	if t.nc == nil {
		var d time.Time
		if timeout > 0 {
			d = time.Now().Add(timeout)
		}
		_ = t.ws.SetWriteDeadline(d)
		return t.writeMessage(first, more)
	}
	if !t.nc.client && !t.compressing {
		return t.nc.writeMessage(t.messageType(), first, more, timeout)
	}
	// wsNetConn applies the timeout, and writes a large message's header
	// and payload, which gorilla writes apart, in one writev.
	t.nc.dataFor(timeout, first, more)
	n, err := t.writeMessage(first, more)
	if derr := t.nc.dataDone(); err == nil && derr != nil {
		return 0, derr
	}
	return n, err
}

func (t *wsTransport) writeFramed(f framed, timeout time.Duration) (int, error) {
	return writeFramedCopy(t, f, timeout)
}

// writeMessage writes one data message through gorilla; mu held.
func (t *wsTransport) writeMessage(first []byte, more [][]byte) (int, error) {
	if len(more) == 0 {
		if err := t.ws.WriteMessage(t.messageType(), first); err != nil {
			return 0, err
		}
		return len(first), nil
	}
	w, err := t.ws.NextWriter(t.messageType())
	if err != nil {
		return 0, err
	}
	n, err := w.Write(first)
	for i := 0; err == nil && i < len(more); i++ {
		var m int
		m, err = w.Write(more[i])
		n += m
	}
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, err
	}
	return n, nil
}

// control writes a control frame under mu. A close frame is written once.
func (t *wsTransport) control(typ int, data []byte, deadline time.Time) error {
	if !t.mu.lockWithin(time.Until(deadline)) {
		return fmt.Errorf("%w: control frame waited for the connection", os.ErrDeadlineExceeded)
	}
	defer t.mu.unlock()
	if t.closeSent {
		return websocket.ErrCloseSent
	}
	if typ == websocket.CloseMessage {
		t.closeSent = true
		if t.nc != nil {
			// The close frame goes now, after what was gathered.
			if err := t.nc.closing(deadline); err != nil {
				return err
			}
		}
	}
	return t.ws.WriteControl(typ, data, deadline)
}

// sendClose writes a close frame with code (and a reason, cut to fit).
func (t *wsTransport) sendClose(code int, reason string, deadline time.Time) error {
	if len(reason) > 120 {
		reason = reason[:120]
		for !utf8.ValidString(reason) {
			reason = reason[:len(reason)-1]
		}
	}
	return t.control(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), deadline)
}

// closeCode is what a session ending with err tells its peer.
func closeCode(err error) int {
	var se *SessionError
	switch {
	case err == nil:
		return websocket.CloseNormalClosure
	case errors.Is(err, ErrMsgTooLong):
		return websocket.CloseMessageTooBig
	case errors.Is(err, ErrReadTimeout):
		// A frame that did not arrive within the read timeout.
		return websocket.ClosePolicyViolation
	case errors.As(err, &se) && se.Op == opDecode:
		return websocket.CloseInvalidFramePayloadData
	}
	return websocket.CloseInternalServerErr
}

// shutdown starts the close handshake: it sends a close frame (1000 for an
// orderly close, 1009 or 1007 or 1011 for a session ending with an error),
// then lets the reader wait for the peer's close frame for at most
// wsCloseGrace, so the peer reads our close before the socket goes. Once the
// reader is gone (the session's end calls shutdown again), it closes
// the socket.
func (t *wsTransport) shutdown(deadline time.Time, reason error) error {
	if t.closing.CompareAndSwap(false, true) {
		t.stopPing()
		d := time.Now().Add(wsCloseGrace)
		if deadline.Before(d) {
			d = deadline
		}
		err := t.sendClose(closeCode(reason), "", d)
		if err == nil && t.reading.Load() {
			t.dlMu.Lock()
			_ = t.raw.SetReadDeadline(d)
			t.dlMu.Unlock()
			return nil
		}
		if !t.reading.Load() {
			// The reader failed (and usually sent its close code, 1009
			// or 1007): let the peer read that close frame before the
			// socket goes, or unread input turns the close into a reset.
			t.lingerClose(d)
			return nil
		}
		// The close frame could not be written: close now, which also
		// ends the reader.
		t.closeRaw()
		return nil
	}
	if !t.reading.Load() {
		t.closeRaw()
	}
	return nil
}

// lingerClose half-closes the connection, discards what the peer still
// sends until it closes or d passes, then closes.
func (t *wsTransport) lingerClose(d time.Time) {
	switch c := t.raw.(type) {
	case *net.TCPConn:
		_ = c.CloseWrite()
	case interface{ CloseWrite() error }:
		// TLS: a close_notify tells the peer we are done.
		if tc := tcpConnOf(t.raw); tc != nil {
			closeTLS(tc, wsTLSCloseGrace, c.CloseWrite)
		}
	}
	_ = t.raw.SetReadDeadline(d)
	_, _ = io.CopyN(io.Discard, t.raw, 1<<20)
	t.closeRaw()
}

func (t *wsTransport) closeNow(linger int) {
	t.closing.Store(true)
	t.stopPing()
	if linger >= 0 {
		if tc := tcpConnOf(t.raw); tc != nil {
			_ = tc.SetLinger(linger)
		}
	}
	t.closeRaw()
}

// readLoop reads one message at a time and hands it to the session whole.
func (t *wsTransport) readLoop(s sessionPort) error { return t.readMessages(s) }

func (t *wsTransport) readMessages(s messageSession) error {
	t.s.Store(s)
	t.reading.Store(true)
	defer t.reading.Store(false)
	defer t.stopPing()

	if t.nc != nil {
		defer func() {
			if t.gathering {
				_ = t.gather(false, s)
			}
		}()
	}
	t.ws.SetPongHandler(t.onPong)
	t.ws.SetPingHandler(t.onPing)
	t.ws.SetCloseHandler(t.onClose)
	t.armPing(s)

	for {
		limit := s.msgLimit()
		// gorilla limits the bytes on the wire; a compressed message of
		// exactly the limit may be a little longer there. readMessage
		// checks the exact limit once inflated.
		wire := int64(limit)
		if t.deflate {
			wire += int64(limit)/8 + 1024
		}
		t.ws.SetReadLimit(wire)
		typ, r, err := t.ws.NextReader()
		if err != nil {
			return t.readError(s, err, false)
		}
		t.handed++ // one more data message read (wsNetConn counts those arrived)
		// wsNetConn marks the session active on every read that brings
		// bytes (one clock read for all the messages in it).
		bp, n, err := t.readMessage(s, r, limit)
		if err != nil {
			if bp != nil {
				bufpool.Put(bp)
			}
			if errors.Is(err, ErrMsgTooLong) {
				// Over the limit after inflating: gorilla only limits
				// what arrives on the wire.
				_ = t.sendClose(websocket.CloseMessageTooBig, "", time.Now().Add(wsCloseGrace))
				return s.opError(opRead, err)
			}
			return t.readError(s, err, true)
		}
		if t.closing.Load() || s.ending() {
			// Closing: drain until the peer's close frame arrives.
			bufpool.Put(bp)
			continue
		}
		data := (*bp)[:n]
		if typ == websocket.TextMessage && !utf8.Valid(data) {
			bufpool.Put(bp)
			_ = t.sendClose(websocket.CloseInvalidFramePayloadData, "invalid UTF-8 in a text message", time.Now().Add(wsCloseGrace))
			return s.opError(opRead, errors.New("getty: websocket: invalid UTF-8 in a text message"))
		}
		t.readText.Store(typ == websocket.TextMessage)
		if t.nc != nil && t.nc.f.msgs > t.handed && !t.gathering {
			// More messages arrived with this one: gather the replies
			// until the last of them is handled.
			_ = t.gather(true, s)
		}
		err = s.handleMessage(data, t.gathering)
		bufpool.Put(bp)
		if err != nil {
			return err
		}
		if t.nc != nil {
			if t.gathering && t.nc.f.msgs <= t.handed {
				if err := t.gather(false, s); err != nil {
					return s.opError(opWrite, err)
				}
			}
			t.nc.resume()
		}
	}
}

// gather corks (on) or uncorks and flushes (off) the connection's
// writes, on the reader goroutine: one cork among those of the dispatch
// batches. A close frame makes later writes go through (control).
func (t *wsTransport) gather(on bool, s messageSession) error {
	t.gathering = on
	if on {
		t.nc.cork()
		return nil
	}
	return t.nc.uncork(true, s.WriteTimeout())
}

// session is the session readMessages serves; nil before it starts.
func (t *wsTransport) session() messageSession {
	s, _ := t.s.Load().(messageSession)
	return s
}

// onPong is gorilla's pong handler: a pong marks the session active.
func (t *wsTransport) onPong(string) error {
	t.session().UpdateActive()
	return nil
}

// onPing is gorilla's ping handler: it answers with a pong.
func (t *wsTransport) onPing(data string) error {
	s := t.session()
	s.UpdateActive()
	// A pong that cannot be written is not this read's failure: a broken
	// connection shows up on the next read or write.
	_ = t.control(websocket.PongMessage, []byte(data), time.Now().Add(s.WriteTimeout()))
	return nil
}

// onClose is gorilla's close handler: the peer started the close
// handshake.
func (t *wsTransport) onClose(code int, text string) error {
	s := t.session()
	// A peer closing with an error or application code ends the session
	// with that error (for OnError); from here on writes report the
	// session closed rather than failing it (and reaching OnError).
	var reason error
	switch code {
	case websocket.CloseNormalClosure, websocket.CloseGoingAway, websocket.CloseNoStatusReceived:
	default:
		reason = s.opError(opRead, &websocket.CloseError{Code: code, Text: text})
	}
	s.peerClosing(reason)
	// Echo the peer's code, as RFC 6455 asks; nothing when we sent ours
	// first.
	_ = t.sendClose(code, "", time.Now().Add(wsCloseGrace))
	return nil
}

// readMessage reads the rest of a message into a pooled buffer (under the
// session's read timeout, which wsNetConn applies), and fails with
// ErrMsgTooLong past limit.
func (t *wsTransport) readMessage(s messageSession, r io.Reader, limit int) (*[]byte, int, error) {
	if t.nc == nil {
		// Not read through a wsNetConn: the message's deadline is set
		// here.
		if rt := s.ReadTimeout(); rt > 0 {
			t.setReadDeadline(time.Now().Add(rt))
			defer t.setReadDeadline(time.Time{})
		}
	}
	bp := bufpool.Get(min(limit, 4096))
	buf := (*bp)[:min(len(*bp), limit)] // pooled sizes round up; never read past limit
	n := 0
	for {
		if n == len(buf) {
			if n >= limit {
				// Full at the limit: the message must end here.
				var probe [1]byte
				m, err := io.ReadFull(r, probe[:])
				if m > 0 {
					return bp, n, fmt.Errorf("%w: message over %d bytes", ErrMsgTooLong, limit)
				}
				if err == io.EOF {
					return bp, n, nil
				}
				return bp, n, err
			}
			nb := bufpool.Get(min(2*len(buf), limit))
			copy(*nb, buf[:n])
			bufpool.Put(bp)
			bp = nb
			buf = (*bp)[:min(len(*bp), limit)]
		}
		m, err := r.Read(buf[n:])
		n += m
		if err == io.EOF {
			return bp, n, nil
		}
		if err != nil {
			return bp, n, err
		}
	}
}

// readTimeout is the session's read timeout (wsNetConn's frame limit).
func (t *wsTransport) readTimeout() time.Duration {
	if s := t.session(); s != nil {
		return s.ReadTimeout()
	}
	return 0
}

// setReadDeadline sets the per-message read deadline unless the close
// handshake has set its own.
func (t *wsTransport) setReadDeadline(d time.Time) {
	t.dlMu.Lock()
	if !t.closing.Load() {
		_ = t.raw.SetReadDeadline(d)
	}
	t.dlMu.Unlock()
}

// readError classifies what ended a read: nil for an orderly end (our own
// close, the peer's normal close, or the connection ending between
// messages, as EOF on TCP).
func (t *wsTransport) readError(s messageSession, err error, inMessage bool) error {
	if t.closing.Load() {
		return nil // our own close
	}
	if errors.Is(err, errWSProtocol) {
		// A frame gorilla accepts but the RFC does not: fail the
		// connection as gorilla does with the others.
		_ = t.sendClose(websocket.CloseProtocolError, "", time.Now().Add(wsCloseGrace))
		return s.opError(opRead, err)
	}
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		switch ce.Code {
		case websocket.CloseNormalClosure, websocket.CloseGoingAway, websocket.CloseNoStatusReceived:
			return nil
		case websocket.CloseAbnormalClosure:
			if !inMessage {
				return nil
			}
			return s.opError(opRead, fmt.Errorf("%w: peer closed in the middle of a message", io.ErrUnexpectedEOF))
		}
		return s.opError(opRead, err)
	}
	if s.ending() {
		return nil
	}
	switch {
	case errors.Is(err, websocket.ErrReadLimit):
		return s.opError(opRead, fmt.Errorf("%w: %v (max %d)", ErrMsgTooLong, err, s.msgLimit()))
	case errors.Is(err, net.ErrClosed), errors.Is(err, io.EOF) && !inMessage:
		return nil
	case isTimeout(err):
		return s.opError(opRead, fmt.Errorf("%w: %v", ErrReadTimeout, err))
	}
	return s.opError(opRead, err)
}

// closeRaw closes the connection; over TLS, the close_notify gets
// wsTLSCloseGrace.
func (t *wsTransport) closeRaw() {
	if tc := tcpConnOf(t.raw); tc != nil && net.Conn(tc) != t.raw {
		closeTLS(tc, wsTLSCloseGrace, t.raw.Close)
		return
	}
	t.raw.Close()
}
