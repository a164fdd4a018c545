package getty

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// gorilla reads frames through a bufio.Reader of its own and makes every
// read error sticky, so getty cannot arm a read deadline on an idle
// connection (it would kill it) and cannot tell from above when a frame
// has started. wsNetConn sits under gorilla instead: it follows the frame
// boundaries in the bytes as they arrive (a header parse per frame, the
// payload skipped by its length), so it knows when the peer is in the
// middle of a frame (or of a fragmented message), and owns the read
// deadline:
//
//   - between frames the connection waits without a deadline; a stale
//     deadline that fires then is absorbed and never reaches gorilla;
//   - from the first byte of a frame, the frame (for a data frame: the
//     whole message, control frames in between included) must arrive
//     within the session's read timeout;
//   - time the reader spends outside the connection (dispatching a
//     message) does not count against the peer (resume).
//
// It also fails the frames gorilla accepts against the RFCs: a close frame
// with a 1-byte body (RFC 6455 §5.5.1) and, with permessage-deflate, RSV1 on
// a control or continuation frame (RFC 7692 §6.1). The bytes before such a
// frame still reach gorilla; the read after them returns errWSProtocol,
// and the transport answers with close code 1002.

// errWSProtocol is a frame the RFC says must fail the connection with
// 1002 (protocol error) but gorilla accepts.
var errWSProtocol = errors.New("getty: websocket protocol error")

// wsFrameTracker follows frame boundaries in a WebSocket byte stream.
type wsFrameTracker struct {
	http    int      // client: bytes of "\r\n\r\n" matched; -1 once past the upgrade response
	hdr     [14]byte // the header being parsed
	hdrLen  int      // bytes of hdr filled
	payload uint64   // payload bytes of the current frame still to come
	inFrame bool     // a frame has started and not ended
	inMsg   bool     // a fragmented data message has started and not ended
	deflate bool     // permessage-deflate: RSV1 allowed on a message's first frame
	last    bool     // the current frame ends a data message
	msgs    uint64   // data messages received whole
}

// wsHeaderLen is the length of a frame header from its first two bytes.
func wsHeaderLen(b1 byte) int {
	n := 2
	switch b1 & 0x7f {
	case 126:
		n += 2
	case 127:
		n += 8
	}
	if b1&0x80 != 0 {
		n += 4
	}
	return n
}

// open reports whether the peer is in the middle of a frame or message.
func (f *wsFrameTracker) open() bool { return f.inFrame || f.inMsg }

// feed follows p. It returns how many bytes of p precede a frame that
// breaks the protocol, with the error; else len(p), nil. started reports
// that a frame began in p while none was open before.
func (f *wsFrameTracker) feed(p []byte) (n int, started bool, err error) {
	i := 0
	if f.http >= 0 {
		// The client sees the upgrade response first: frames start after
		// the blank line that ends its header.
		const end = "\r\n\r\n"
		for ; i < len(p) && f.http < len(end); i++ {
			switch {
			case p[i] == end[f.http]:
				f.http++
			case p[i] == end[0]:
				f.http = 1
			default:
				f.http = 0
			}
		}
		if f.http < len(end) {
			return len(p), false, nil
		}
		f.http = -1
	}
	for i < len(p) {
		if f.payload > 0 {
			skip := uint64(len(p) - i)
			if skip > f.payload {
				skip = f.payload
			}
			f.payload -= skip
			i += int(skip)
			if f.payload == 0 {
				f.endFrame()
			}
			continue
		}
		if f.hdrLen == 0 {
			if !f.open() {
				started = true
			}
			f.inFrame = true
		}
		start := i - f.hdrLen // where this frame began, if in p
		f.hdr[f.hdrLen] = p[i]
		f.hdrLen++
		i++
		if f.hdrLen < 2 || f.hdrLen < wsHeaderLen(f.hdr[1]) {
			continue
		}
		if perr := f.header(); perr != nil {
			return max(start, 0), started, perr
		}
		if f.payload == 0 {
			f.endFrame()
		}
	}
	return len(p), started, nil
}

// header checks a complete header and sets up its payload.
func (f *wsFrameTracker) header() error {
	h := f.hdr[:f.hdrLen]
	f.hdrLen = 0
	fin, rsv1, op := h[0]&0x80 != 0, h[0]&0x40 != 0, h[0]&0x0f
	var n uint64
	switch l := h[1] & 0x7f; l {
	case 126:
		n = uint64(binary.BigEndian.Uint16(h[2:]))
	case 127:
		n = binary.BigEndian.Uint64(h[2:])
	default:
		n = uint64(l)
	}
	f.payload = n
	control := op >= 8
	switch {
	case op == 8 && n == 1:
		return fmt.Errorf("%w: close frame with a 1-byte body", errWSProtocol)
	case rsv1 && f.deflate && control:
		return fmt.Errorf("%w: RSV1 on a control frame", errWSProtocol)
	case rsv1 && f.deflate && op == 0:
		return fmt.Errorf("%w: RSV1 on a continuation frame", errWSProtocol)
	}
	f.last = false
	if !control {
		// gorilla fails the other sequence errors itself; this only
		// follows where a message ends.
		f.inMsg = !fin
		f.last = fin
	}
	return nil
}

func (f *wsFrameTracker) endFrame() {
	f.inFrame = false
	if f.last {
		f.msgs++
	}
}

// wsNetConn is the net.Conn gorilla reads and writes through; see above.
// Read runs on the session's reader goroutine only (and, before the
// transport takes it over, the upgrade's).
type wsNetConn struct {
	net.Conn
	t       *wsTransport // set when the session starts reading; nil: pass-through
	f       wsFrameTracker
	started time.Time // when the open frame or message began (zero: none)
	armed   time.Time // the read deadline set on Conn (zero: none)
	err     error     // a protocol error to return on the next Read
	resumed bool      // the open frame's clock restarts at the next Read (resume)
	client  bool      // the dialing side: its frames are masked (gorilla writes them)

	w wsWriteSide // gorilla's writes: gathering, one writev, lazy deadline
}

func newWSNetConn(c net.Conn, client bool) *wsNetConn {
	w := &wsNetConn{Conn: c, client: client}
	if !client {
		w.f.http = -1
	}
	return w
}

func (c *wsNetConn) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	for {
		if c.t != nil {
			c.arm()
		}
		n, err := c.Conn.Read(p)
		if n > 0 {
			var now time.Time
			if c.t != nil {
				if s := c.t.session(); s != nil {
					now = s.touch() // one clock read for the read's messages
				}
			}
			m, started, perr := c.f.feed(p[:n])
			switch {
			case !c.f.open():
				c.started = time.Time{}
			case started || c.started.IsZero():
				if now.IsZero() {
					now = time.Now()
				}
				c.started = now
			}
			if perr != nil {
				c.err = perr
				if m == 0 {
					return 0, perr
				}
				return m, nil
			}
			return n, err
		}
		if err == nil || c.t == nil || !isTimeout(err) || c.t.closing.Load() {
			return n, err
		}
		now := time.Now()
		if c.f.open() && !now.Before(c.started.Add(c.t.readTimeout())) {
			return n, err
		}
		// A deadline armed for an earlier frame: the peer is idle, or
		// within its time. Re-arm (none when idle) and read on.
		c.armed = now
	}
}

// arm sets the read deadline the frame in progress allows, or none when
// no frame is in progress. It keeps an armed deadline that is not later
// than the allowed one and not yet past (an early one is absorbed by Read).
// It reads the clock only when it must: once a frame's deadline is armed,
// the reads that follow cost none.
func (c *wsNetConn) arm() {
	rt := c.t.readTimeout()
	if !c.f.open() || rt <= 0 {
		// Idle: a pending deadline is absorbed if it fires; a past one
		// is cleared.
		if c.armed.IsZero() || c.armed.After(time.Now()) {
			return
		}
		c.armed = time.Time{}
		c.t.setReadDeadline(c.armed)
		return
	}
	var now time.Time
	if c.resumed {
		now = time.Now()
		c.started, c.resumed = now, false
	}
	want := c.started.Add(rt)
	if c.armed.Equal(want) {
		return
	}
	if now.IsZero() {
		now = time.Now()
	}
	if !c.armed.IsZero() && !c.armed.After(want) && c.armed.After(now) {
		return
	}
	c.armed = want
	c.t.setReadDeadline(want)
}

// resume restarts the clock of a frame already begun: the reader was busy
// dispatching, which is not the peer's time. The clock restarts when the
// reader comes back to the connection (arm), so a message handled from
// what gorilla had buffered reads none.
func (c *wsNetConn) resume() {
	if !c.started.IsZero() {
		c.resumed = true
	}
}

// wsHijacker hands gorilla's Upgrader the hijacked connection wrapped in a
// wsNetConn, so the frames read after the upgrade go through it.
type wsHijacker struct {
	http.ResponseWriter
	conn *wsNetConn
}

func (h *wsHijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := h.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("getty: websocket: the http.ResponseWriter cannot be hijacked")
	}
	c, brw, err := hj.Hijack()
	if err != nil {
		return nil, nil, err
	}
	if brw.Reader.Buffered() > 0 {
		// gorilla refuses this (data before the handshake completed);
		// let it see the original.
		return c, brw, nil
	}
	h.conn = newWSNetConn(c, false)
	// gorilla resets the hijacked bufio.Reader onto the connection it is
	// given, so every later read goes through the wrapper.
	return h.conn, brw, nil
}
