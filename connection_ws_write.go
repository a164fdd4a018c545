package getty

import (
	"encoding/binary"
	"net"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/getty-go/getty/internal/bufpool"
)

// wsNetConn's write side. A server writes its uncompressed data messages
// here itself (writeMessage): the frame header is a few bytes, and going
// through gorilla's writer would cost a copy into its buffer, an
// allocation (its write buffer pool boxes the buffer it puts back) and its
// locks. gorilla still writes control frames, compressed messages, and a
// client's masked ones.
//
// Frames, whoever builds them, are:
//
//   - written through at once when nothing asks otherwise;
//   - gathered while a batch is corked (the reader between messages that
//     arrived together, a message of several packages, a mailbox drain,
//     queued unordered tasks: each holds one cork), and written in one
//     write when the last cork goes, so the replies to messages that
//     arrived together leave together, in every dispatch mode, each its
//     own frame;
//   - for a large message (wsHoldMin and up), written with one writev:
//     the header (and what was gathered before) is copied, the caller's
//     payload only referenced, and written before the call returns.
//     gorilla writes such a payload apart from its buffered header and
//     first bytes, through net.Buffers, which cannot writev through a
//     wrapper such as this one: its writes are held (dataFor/dataDone)
//     and the payload recognised as the end of the caller's slice.
//
// Deadlines: a data message is due within the timeout its transport write
// gives (dataFor), a control frame by the deadline gorilla sets before it
// (SetWriteDeadline, which only records it). Either is applied to the
// socket lazily, as writeDeadline does for the send queue: a write may
// fail up to a quarter of its timeout late, never early, and the clock is
// read once per write that reaches the socket.
type wsWriteSide struct {
	mu        sync.Mutex
	corks     int  // batches gathering the writes
	final     bool // the close frame went: write through from now on
	closeSent bool // gorilla wrote a close frame: no data frame may follow

	data     bool          // a data message is being written (dataFor)
	timeout  time.Duration // its write timeout (<= 0: none)
	hold     bool          // it is large: its writes are held
	ownFirst []byte        // while holding: the writer's slices, referenced
	ownMore  [][]byte      // rather than copied when gorilla writes them as is

	buf  *[]byte // gathered bytes, pooled; nil when none
	n    int     // bytes of *buf in use
	refs []wsRef // while holding: payloads referenced, in order

	refBase [2]wsRef
	iov     net.Buffers // the writev list, reused
	iovBase [5][]byte

	want     time.Time     // the write deadline gorilla asked for (control frames)
	deadline writeDeadline // the one set on the socket

	writes uint64 // writes handed to the socket (Write or one writev); for tests
}

// wsRef is a referenced payload: it goes after (*buf)[:at].
type wsRef struct {
	at int
	p  []byte
}

// wsCorkMax bounds what a corked connection gathers before it writes.
const wsCorkMax = 64 << 10

// wsHoldMin is the message size from which the transport holds the writes
// of a message (gorilla writes the payload past its buffer on its own).
const wsHoldMin = wsWriteBufferSize / 2

func (c *wsNetConn) Write(p []byte) (int, error) {
	w := &c.w
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.data && len(p) > 0 && p[0] == 0x80|websocket.CloseMessage {
		// Outside a data message gorilla writes control frames only,
		// each whole in one Write: this one is a close (gorilla's own,
		// on a protocol error, or the transport's).
		w.closeSent = true
	}
	switch {
	case w.hold:
		w.add(p, w.owns(p))
		return len(p), nil
	case w.corks > 0 && !w.final:
		if w.n+len(p) > wsCorkMax {
			if err := c.flushLocked(w.due()); err != nil {
				return 0, err
			}
		}
		if len(p) <= wsCorkMax/2 {
			w.append(p)
			return len(p), nil
		}
	case w.n > 0:
		// The batch ended without a flush (uncork(false)): this write
		// takes what was gathered along.
		w.append(p)
		if err := c.flushLocked(w.due()); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	c.armWrite(w.due())
	w.writes++
	return c.Conn.Write(p)
}

// writeMessage writes one data message (opcode op) made of first and more
// as one unmasked frame, within timeout: while a batch is corked a small
// one is gathered; else it goes now, what was gathered first, in one write
// (a small message is copied behind its header) or one writev (a large
// payload is referenced, and written before the call returns).
func (c *wsNetConn) writeMessage(op int, first []byte, more [][]byte, timeout time.Duration) (int, error) {
	size := len(first) + sizeOf(more)
	var hb [10]byte
	h := wsFrameHeader(&hb, op, size)
	big := size >= wsHoldMin
	w := &c.w
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closeSent {
		return 0, websocket.ErrCloseSent
	}
	w.append(h)
	w.add(first, big)
	for _, b := range more {
		w.add(b, big)
	}
	if !big && w.corks > 0 && !w.final && w.n <= wsCorkMax {
		return size, nil
	}
	if err := c.flushLocked(wsDue{timeout: max(timeout, 0)}); err != nil {
		return 0, err
	}
	return size, nil
}

// wsFrameHeader is the header of a final, unmasked frame of op holding n
// bytes, built in b.
func wsFrameHeader(b *[10]byte, op, n int) []byte {
	b[0] = 0x80 | byte(op)
	switch {
	case n < 126:
		b[1] = byte(n)
		return b[:2]
	case n <= 0xffff:
		b[1] = 126
		binary.BigEndian.PutUint16(b[2:], uint16(n))
		return b[:4]
	}
	b[1] = 127
	binary.BigEndian.PutUint64(b[2:], uint64(n))
	return b[:10]
}

// add gathers p: a copy, or, when ref, a reference that the caller flushes
// before it returns.
func (w *wsWriteSide) add(p []byte, ref bool) {
	if !ref || len(p) == 0 {
		w.append(p)
		return
	}
	if w.refs == nil {
		w.refs = w.refBase[:0]
	}
	w.refs = append(w.refs, wsRef{at: w.n, p: p})
}

// wsDue is when a write must be done: within timeout when it is set, else
// by deadline (zero: no limit).
type wsDue struct {
	timeout  time.Duration
	deadline time.Time
}

// due is the limit of the write being made; w.mu held.
func (w *wsWriteSide) due() wsDue {
	if w.data {
		return wsDue{timeout: max(w.timeout, 0), deadline: time.Time{}}
	}
	return wsDue{deadline: w.want}
}

// SetWriteDeadline records the deadline; the socket gets it when a write
// reaches it (armWrite).
func (c *wsNetConn) SetWriteDeadline(d time.Time) error {
	c.w.mu.Lock()
	c.w.want = d
	c.w.mu.Unlock()
	return nil
}

// SetDeadline sets the read deadline on the socket and records the write
// one.
func (c *wsNetConn) SetDeadline(d time.Time) error {
	_ = c.SetWriteDeadline(d)
	return c.Conn.SetReadDeadline(d)
}

// armWrite sets the socket's write deadline for a write due by d (see
// writeDeadline); w.mu held.
func (c *wsNetConn) armWrite(d wsDue) {
	if d.timeout > 0 {
		c.w.deadline.arm(c.Conn, d.timeout)
		return
	}
	c.w.deadline.armBy(c.Conn, d.deadline)
}

// owns reports whether p is the end of one of the holding writer's slices
// (gorilla writes a large payload as a suffix of the caller's slice).
func (w *wsWriteSide) owns(p []byte) bool {
	if len(p) == 0 {
		return false
	}
	end := &p[len(p)-1]
	if n := len(w.ownFirst); len(p) <= n && end == &w.ownFirst[n-1] {
		return true
	}
	for _, s := range w.ownMore {
		if n := len(s); len(p) <= n && end == &s[n-1] {
			return true
		}
	}
	return false
}

func (w *wsWriteSide) append(p []byte) { w.n = bufpool.Append(&w.buf, w.n, p) }

// flushLocked writes what was gathered and referenced, in one write or
// writev, by d; w.mu held. The buffer goes back to the pool, so an idle
// connection holds none.
func (c *wsNetConn) flushLocked(d wsDue) error {
	w := &c.w
	if w.n == 0 && len(w.refs) == 0 {
		return nil
	}
	c.armWrite(d)
	w.writes++
	var err error
	if len(w.refs) == 0 {
		_, err = c.Conn.Write((*w.buf)[:w.n])
	} else {
		w.iov = w.iovBase[:0]
		at := 0
		for _, r := range w.refs {
			if r.at > at {
				w.iov = append(w.iov, (*w.buf)[at:r.at])
				at = r.at
			}
			w.iov = append(w.iov, r.p)
		}
		if w.n > at {
			w.iov = append(w.iov, (*w.buf)[at:w.n])
		}
		// *net.TCPConn writes the list with one writev.
		_, err = w.iov.WriteTo(c.Conn)
		clear(w.iovBase[:])
		clear(w.refBase[:])
		w.refs = w.refBase[:0]
	}
	if w.buf != nil {
		bufpool.Put(w.buf)
		w.buf, w.n = nil, 0
	}
	return err
}

// cork starts a batch: writes are gathered until its uncork.
func (c *wsNetConn) cork() {
	c.w.mu.Lock()
	c.w.corks++
	c.w.mu.Unlock()
}

// uncork ends a batch; with flush, the last one to end writes what was
// gathered, within timeout.
func (c *wsNetConn) uncork(flush bool, timeout time.Duration) error {
	w := &c.w
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.corks > 0 {
		w.corks--
	}
	if !flush || w.corks > 0 || w.hold || w.n == 0 {
		// Still gathering, or a holding writer writes it all at release.
		return nil
	}
	return c.flushLocked(wsDue{timeout: timeout})
}

// closing writes what was gathered before the close frame, by deadline,
// and makes every later write go through.
func (c *wsNetConn) closing(deadline time.Time) error {
	w := &c.w
	w.mu.Lock()
	defer w.mu.Unlock()
	w.final = true
	return c.flushLocked(wsDue{deadline: deadline})
}

// dataFor starts the write of one data message made of first and more,
// due within timeout (the transport's write, under its lock). A large one
// is held: see above.
func (c *wsNetConn) dataFor(timeout time.Duration, first []byte, more [][]byte) {
	w := &c.w
	hold := len(first)+sizeOf(more) >= wsHoldMin
	w.mu.Lock()
	w.data, w.timeout = true, timeout
	if hold {
		w.hold, w.ownFirst, w.ownMore = true, first, more
	}
	w.mu.Unlock()
}

// dataDone ends the write dataFor began. What a hold referenced is written
// now, with what was gathered before it, so no payload outlives the call;
// without references a corked batch keeps gathering.
func (c *wsNetConn) dataDone() error {
	w := &c.w
	w.mu.Lock()
	defer w.mu.Unlock()
	d := w.due()
	held := w.hold
	w.data, w.hold, w.ownFirst, w.ownMore = false, false, nil, nil
	if !held || len(w.refs) == 0 && w.corks > 0 && !w.final && w.n <= wsCorkMax {
		return nil
	}
	return c.flushLocked(d)
}

// socketWrites is how many writes reached the socket (tests).
func (c *wsNetConn) socketWrites() uint64 {
	c.w.mu.Lock()
	defer c.w.mu.Unlock()
	return c.w.writes
}

// sizeOf is the total length of bs.
func sizeOf(bs [][]byte) int {
	n := 0
	for _, b := range bs {
		n += len(b)
	}
	return n
}
