package getty

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"github.com/getty-go/getty/internal/bufpool"
)

// readStream reassembles packages from a byte stream. It holds a read
// buffer only while bytes are pending, and sets a read deadline only while
// a package is incomplete. Its own frame stays small: the work after a read
// happens in afterRead, which is off the stack while the reader is parked.
func (s *session) readStream(c streamConn) error {
	for !s.closing.Load() {
		n, err := s.fill(c)
		if err := s.afterRead(c, n, err); err != nil || s.rs.eof {
			return err
		}
	}
	return nil
}

// readState is readStream's state between reads.
type readState struct {
	need     int   // length of the package being assembled, when known
	started  int64 // when the pending bytes began arriving (monoNow)
	deadline int64 // armed read deadline (monoNow); 0 when none
	eof      bool  // the stream ended in order
	corked   bool  // consume holds a cork of its own: a borrowed run needs none
	leased   bool  // the reader holds its mailbox and a worker token (session.post)
}

// monoBase anchors monoNow. Instants a session keeps are nanoseconds since
// it, 8 bytes instead of a time.Time's 24, and still monotonic: monoTime
// turns one back into a time.Time that carries the monotonic reading.
var monoBase = time.Now()

// monoNow is now in nanoseconds since monoBase; always positive.
func monoNow() int64 { return int64(time.Since(monoBase)) + 1 }

// monoTime is the time.Time of a monoNow instant.
func monoTime(t int64) time.Time { return monoBase.Add(time.Duration(t - 1)) }

// deadlineAt is the read deadline for a monoNow instant, 0 meaning none.
func deadlineAt(t int64) time.Time {
	if t == 0 {
		return time.Time{}
	}
	return monoTime(t)
}

// fill reads once: into a fresh pooled buffer when none is held, else
// into the free part of the held one.
func (s *session) fill(c streamConn) (int, error) {
	if s.rbuf != nil {
		return c.read((*s.rbuf)[s.rlen:])
	}
	bp, n, err := c.readFresh(readBufSize)
	if n > 0 {
		s.rbuf, s.rlen = bp, 0
	} else if bp != nil {
		bufpool.Put(bp)
	}
	return n, err
}

// afterRead consumes what fill read and handles its error. A nil error
// with s.rs.eof set ends the stream in order.
//
//go:noinline
func (s *session) afterRead(c streamConn, n int, err error) error {
	rs := &s.rs
	if n > 0 {
		nowT := time.Now()
		now := int64(nowT.Sub(monoBase)) + 1 // monoNow, from the clock read once
		s.active.Store(nowT.UnixNano())
		s.readBytes.Add(uint64(n))
		if s.rlen == 0 {
			rs.started = now
		}
		s.rlen += n
		before := s.rlen
		var perr error
		rs.need, perr = s.consume()
		s.endLease() // consume ends it; this covers its error returns
		if perr != nil {
			return perr
		}
		if s.rlen > 0 && s.rlen < before {
			// Packages completed: the timeout runs from the start of the
			// one still incomplete, which began in this read.
			rs.started = now
		}
		if s.rlen == 0 && rs.deadline != 0 && c.timeoutIsFatal() {
			rs.deadline = 0
			_ = c.setReadDeadline(time.Time{})
		}
		if s.rlen > 0 && s.ReadTimeout() > 0 {
			// Arm lazily: re-arming costs a runtime timer update, so keep
			// a deadline that is still close enough.
			want := rs.started + int64(s.ReadTimeout())
			if rs.deadline == 0 || rs.deadline < rs.started || rs.deadline > want {
				rs.deadline = want
				_ = c.setReadDeadline(monoTime(rs.deadline))
			}
		}
	}
	if err == nil {
		return nil
	}
	if isTimeout(err) && !s.closing.Load() {
		if s.rlen > 0 && monoNow() >= rs.started+int64(s.ReadTimeout()) || c.timeoutIsFatal() {
			return s.opError(opRead, fmt.Errorf("%w: %d of %d bytes after %v", ErrReadTimeout, s.rlen, max(rs.need, s.rlen), s.ReadTimeout()))
		}
		// An idle connection outlived an old deadline: clear it.
		rs.deadline = 0
		if s.rlen > 0 {
			rs.deadline = rs.started + int64(s.ReadTimeout())
		}
		_ = c.setReadDeadline(deadlineAt(rs.deadline))
		return nil
	}
	rs.eof = true
	return s.readError(err)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout() || errors.Is(err, os.ErrDeadlineExceeded)
}

// readError classifies what ended a read: nil for EOF or our own close.
func (s *session) readError(err error) error {
	if s.closing.Load() || errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
		if s.rlen > 0 && errors.Is(err, io.EOF) && !s.closing.Load() {
			return s.opError(opRead, fmt.Errorf("%w: peer closed in the middle of a package (%d bytes pending)", io.ErrUnexpectedEOF, s.rlen))
		}
		return nil
	}
	return s.opError(opRead, err)
}

// consume decodes and dispatches every complete package in the read
// buffer, keeps the rest at the front, and sizes the buffer for what comes
// next. It returns the pending package's length when the Reader knew it.
func (s *session) consume() (need int, err error) {
	buf := (*s.rbuf)[:s.rlen]
	maxLen := int(s.maxMsgLen.Load())
	off := 0
	corked := false    // replies are being gathered
	unflushed := false // the batch ended before the last package: flush at the end
	for off < len(buf) && !s.closing.Load() {
		pkg, n, rerr := s.decodeAt(buf, off)
		if rerr != nil {
			return 0, rerr
		}
		if pkg == nil {
			if n == 0 {
				break
			}
			if n < 0 || n <= len(buf)-off {
				return 0, s.opError(opDecode, fmt.Errorf("%w: no package but length %d with %d bytes buffered", ErrReaderContract, n, len(buf)-off))
			}
			if n > maxLen {
				return 0, s.opError(opDecode, fmt.Errorf("%w: package of %d bytes, max %d", ErrMsgTooLong, n, maxLen))
			}
			need = n
			break
		}
		if n <= 0 || n > len(buf)-off {
			s.recycle(pkg)
			return 0, s.opError(opDecode, fmt.Errorf("%w: package with length %d, %d bytes buffered", ErrReaderContract, n, len(buf)-off))
		}
		if n > maxLen {
			s.recycle(pkg)
			return 0, s.opError(opDecode, fmt.Errorf("%w: package of %d bytes, max %d", ErrMsgTooLong, n, maxLen))
		}
		off += n
		if off == len(buf) {
			// This package ends what is buffered, and the Reader copied
			// it out (or decodeAt handed the buffer over): give the
			// buffer back before OnMessage runs, so a large message is
			// not held twice while it is handled.
			s.releaseReadBuf()
		}
		// Gather replies while more bytes wait behind this package; the
		// last package's reply then flushes them all in one write.
		if more := off < len(buf); more != corked && s.mode == dispatchInline {
			if more {
				s.tr.cork()
			} else {
				_ = s.endBatch(false)
				unflushed = true
			}
			corked = more
		}
		if !corked && s.mode != dispatchInline && off < len(buf) {
			// Pool tasks and mailbox drains cork on their own; this cork
			// keeps the replies of those that run while the reader still
			// dispatches (on a worker, or on the reader itself when the
			// mailbox borrows a worker token) from leaving one by one.
			s.tr.cork()
			corked = true
		}
		s.rs.corked = corked
		err := s.dispatch(pkg)
		s.rs.corked = false
		if err != nil {
			s.endLease()
			if corked {
				_ = s.endBatch(true)
			}
			return 0, err
		}
	}
	s.endLease() // before the flush: the token is not held across the write
	if corked || unflushed {
		if err := s.endBatch(true); err != nil {
			return 0, err
		}
	}
	return need, s.compact(off, need, maxLen)
}

// compact moves the unconsumed bytes to the front and resizes the buffer:
// back to the pool when empty, larger when a longer package is coming.
func (s *session) compact(off, need, maxLen int) error {
	if s.rbuf == nil {
		return nil // consume gave it back: everything was read
	}
	rest := s.rlen - off
	if rest == 0 {
		s.releaseReadBuf()
		return nil
	}
	if rest >= maxLen {
		// No package fits in what is already buffered: more bytes
		// cannot help.
		return s.opError(opDecode, fmt.Errorf("%w: no package within %d bytes (max %d)", ErrMsgTooLong, rest, maxLen))
	}
	buf := *s.rbuf
	if off > 0 {
		copy(buf, buf[off:s.rlen])
		s.rlen = rest
	}
	if s.rlen < len(buf) {
		return nil
	}
	if len(buf) >= maxLen {
		return s.opError(opDecode, fmt.Errorf("%w: no package within %d bytes (max %d)", ErrMsgTooLong, s.rlen, maxLen))
	}
	nb := bufpool.Get(growTo(len(buf), s.rlen, need, maxLen))
	copy(*nb, buf[:s.rlen])
	bufpool.Put(s.rbuf)
	s.rbuf = nb
	return nil
}

// growTo is the size of a full read buffer's successor. It doubles, so a
// peer that declares a large package pays with the bytes it sends before
// the buffer does; but once the package's length is known and an eighth of
// it has arrived, it is the package's length at once: a large message then
// costs one buffer of its own size, not every power of two up to it (the
// pool hands out buffers above its largest class at their exact size).
func growTo(size, buffered, need, maxLen int) int {
	want := min(2*size, maxLen)
	if need > size && (need <= want || 8*buffered >= need) {
		want = need
	}
	return want
}

// releaseReadBuf gives the read buffer back to the pool.
func (s *session) releaseReadBuf() {
	bufpool.Put(s.rbuf)
	s.rbuf, s.rlen = nil, 0
}

// adoptMin is the size from which a package that fills the read buffer on
// its own takes the buffer over rather than being copied out of it.
const adoptMin = 64 << 10

// decodeAt decodes the package at buf[off:], where buf is the read buffer.
// When that package is all the buffer holds, is large, and the Reader is a
// LengthFieldCodec itself (not a type that embeds one and may read
// differently), the frame takes the read buffer over: no copy of the
// payload and no second message-sized buffer. The read buffer is then the
// frame's, and the session holds none.
func (s *session) decodeAt(buf []byte, off int) (any, int, error) {
	if off == 0 && len(buf) >= adoptMin {
		if c, ok := s.reader.(*LengthFieldCodec); ok {
			if f, ok := c.adopt(s.rbuf, len(buf)); ok {
				s.rbuf, s.rlen = nil, 0
				return f, len(buf), nil
			}
		}
	}
	return s.decode(buf[off:])
}

// decode calls the Reader under recover.
func (s *session) decode(b []byte) (any, int, error) {
	pkg, n, err := s.callReader(b)
	if err != nil {
		err = s.opError(opDecode, err)
	}
	return pkg, n, err
}

func (s *session) callReader(b []byte) (pkg any, n int, err error) {
	defer recoverAs("Reader.Read", &err)
	return s.reader.Read(s, b)
}

// handleMessage decodes every package of one whole message (a WebSocket
// message or a datagram) and dispatches them in order. Bytes at the end
// that the Reader cannot complete go to a MessageEndReader's ReadEnd;
// otherwise they are an incomplete package (no more bytes of this message
// can come): a decode error matching ErrReaderContract and
// io.ErrUnexpectedEOF, which closes a
// WebSocket session (1007) and drops the rest of a datagram (counted). An
// empty message holds no package. gathering: the transport holds a cork
// around this call, so the replies already wait for more (see post).
func (s *session) handleMessage(data []byte, gathering bool) error {
	s.readBytes.Add(uint64(len(data)))
	maxLen := int(s.maxMsgLen.Load())
	if len(data) > maxLen {
		return s.opError(opDecode, fmt.Errorf("%w: message of %d bytes, max %d", ErrMsgTooLong, len(data), maxLen))
	}
	corked := false
	s.rs.corked = gathering
	err := s.decodeMessage(data, maxLen, &corked)
	s.rs.corked = false
	s.endLease()
	if corked {
		if ferr := s.endBatch(true); err == nil {
			err = ferr
		}
	}
	return err
}

// decodeMessage is handleMessage's loop. When the message holds more than
// one package it corks the transport (*corked), in every dispatch mode, so
// the replies to its packages leave together when handleMessage ends the
// batch.
func (s *session) decodeMessage(data []byte, maxLen int, corked *bool) error {
	for off := 0; off < len(data) && !s.closing.Load(); {
		rest := data[off:]
		pkg, n, err := s.decode(rest)
		if err != nil {
			return err
		}
		if pkg == nil {
			if n < 0 || n > 0 && n <= len(rest) {
				return s.opError(opDecode, fmt.Errorf("%w: no package but length %d with %d bytes left in a message", ErrReaderContract, n, len(rest)))
			}
			if n > maxLen {
				return s.opError(opDecode, fmt.Errorf("%w: package of %d bytes, max %d", ErrMsgTooLong, n, maxLen))
			}
			return s.messageEnd(rest)
		}
		if n <= 0 || n > len(rest) {
			s.recycle(pkg)
			return s.opError(opDecode, fmt.Errorf("%w: package with length %d, %d bytes left in a message", ErrReaderContract, n, len(rest)))
		}
		off += n
		if off < len(data) && !*corked {
			s.tr.cork()
			*corked = true
			s.rs.corked = true
		}
		if err := s.dispatchMessagePkg(pkg); err != nil {
			return err
		}
	}
	return nil
}

// messageEnd handles the bytes at the end of a message that Read could
// not complete.
func (s *session) messageEnd(rest []byte) error {
	if r, ok := s.reader.(MessageEndReader); ok {
		pkg, err := s.callReadEnd(r, rest)
		if err != nil {
			return s.opError(opDecode, err)
		}
		if pkg != nil {
			return s.dispatchMessagePkg(pkg)
		}
	}
	return s.opError(opDecode, fmt.Errorf("%w: %w: incomplete package of %d bytes at the end of a message", ErrReaderContract, io.ErrUnexpectedEOF, len(rest)))
}

func (s *session) callReadEnd(r MessageEndReader, b []byte) (pkg any, err error) {
	defer recoverAs("MessageEndReader.ReadEnd", &err)
	return r.ReadEnd(s, b)
}

func (s *session) dispatchMessagePkg(pkg any) error {
	if pt := s.packetTr(); pt != nil {
		pkg = pt.wrap(pkg)
	}
	return s.dispatch(pkg)
}

// recycle gives a package back to a pooling Reader (PkgReleaser).
func (s *session) recycle(pkg any) {
	if s.releaser != nil {
		if pt := s.packetTr(); pt != nil { // wrapped by handleMessage
			pkg = pt.unwrap(pkg)
		}
		s.releaser.ReleasePkg(pkg)
	}
}

// What a message transport reads of the session (messageSession).

func (s *session) ending() bool                { return s.closing.Load() }
func (s *session) msgLimit() int               { return int(s.maxMsgLen.Load()) }
func (s *session) cronInterval() time.Duration { return time.Duration(s.cronPeriod.Load()) }
