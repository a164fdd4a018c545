package getty

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/golang/snappy"
	"github.com/klauspost/compress/flate"

	"github.com/getty-go/getty/internal/bufpool"
)

// tcpTransport carries a session over a stream: TCP, or TLS over TCP.
type tcpTransport struct {
	c   net.Conn     // *net.TCPConn or *tls.Conn
	tcp *net.TCPConn // the socket, for linger and raw waits

	// raw lets the reader wait for readability without holding a buffer;
	// nil for TLS, whose records must be read through the tls.Conn.
	raw syscall.RawConn
	rawRead

	out sendQueue
	// zr decompresses the read side once SetCompressType turned
	// compression on; nil for raw bytes.
	zr io.Reader

	tlsTimeout time.Duration // handshake bound for TLS
}

func newTCPTransport(c net.Conn) *tcpTransport {
	t := &tcpTransport{c: c}
	switch cc := c.(type) {
	case *net.TCPConn:
		t.tcp = cc
		if raw, err := cc.SyscallConn(); err == nil && rawReadSupported {
			t.raw = raw
			t.rawRead.init()
		}
	case *net.UnixConn:
		if raw, err := cc.SyscallConn(); err == nil && rawReadSupported {
			t.raw = raw
			t.rawRead.init()
		}
	case *tls.Conn:
		t.tcp, _ = cc.NetConn().(*net.TCPConn)
	}
	t.out.init(t.c)
	return t
}

func (t *tcpTransport) conn() net.Conn { return t.c }

func (t *tcpTransport) readLoop(s *session) error { return s.readStream(t) }

func (t *tcpTransport) readFresh(size int) (*[]byte, int, error) {
	if t.raw == nil {
		bp := bufpool.Get(size)
		n, err := t.read(*bp)
		return bp, n, err
	}
	return t.rawRead.read(t.raw, size)
}

func (t *tcpTransport) read(p []byte) (int, error) {
	if t.zr != nil {
		return t.zr.Read(p)
	}
	return t.c.Read(p)
}

func (t *tcpTransport) setReadDeadline(d time.Time) error { return t.c.SetReadDeadline(d) }

// stickyErrors: flate and snappy readers keep the first error they see.
func (t *tcpTransport) stickyErrors() bool { return t.zr != nil }

func (t *tcpTransport) write(_ *session, first []byte, more [][]byte, _ *net.UDPAddr, timeout time.Duration) (int, error) {
	return t.out.write(first, more, timeout)
}

func (t *tcpTransport) cork() { t.out.cork() }

func (t *tcpTransport) uncork(s *session, flush bool) error {
	return t.out.uncork(s.WriteTimeout(), flush)
}

func (t *tcpTransport) shutdown(deadline time.Time) error {
	err := t.out.close(deadline)
	if t.tcp != nil && t.c != net.Conn(t.tcp) {
		// tls.Conn.Close writes a close_notify under its own 5 s deadline;
		// a peer that stopped reading must not hold Close that long.
		if err != nil {
			t.tcp.Close()
		} else {
			grace := min(max(time.Until(deadline), 10*time.Millisecond), time.Second)
			timer := time.AfterFunc(grace, func() { t.tcp.Close() })
			defer timer.Stop()
		}
	}
	t.c.Close()
	return err
}

func (t *tcpTransport) closeNow(linger int) {
	if linger >= 0 && t.tcp != nil {
		_ = t.tcp.SetLinger(linger)
	}
	t.out.abort()
	t.c.Close()
}

// setCompress wraps both directions of the stream: flate (raw deflate, as
// upstream) at the given level, or snappy's framed format. Every flush of
// the send queue ends with a compressor flush, so each write reaches the
// peer whole and deadlines keep applying to the socket underneath. Call it
// before any byte flows (the new-session callback).
func (t *tcpTransport) setCompress(c CompressType) bool {
	var (
		zw  flusher
		err error
	)
	switch c {
	case CompressNone:
		t.zr = nil
		t.out.setCompressor(nil)
		return true
	case CompressSnappy:
		zw = snappy.NewBufferedWriter(t.c)
		t.zr = snappy.NewReader(t.c)
	case CompressZip, CompressBestSpeed, CompressBestCompression, CompressHuffman:
		zw, err = flate.NewWriter(t.c, int(c))
		if err != nil {
			return false
		}
		t.zr = flate.NewReader(t.c)
	default:
		if c < CompressHuffman || c > CompressBestCompression {
			return false
		}
		zw, _ = flate.NewWriter(t.c, int(c))
		t.zr = flate.NewReader(t.c)
	}
	// The decompressor must see every byte, so raw reads are off.
	t.raw = nil
	t.out.setCompressor(zw)
	return true
}

// flusher is a stream compressor.
type flusher interface {
	io.Writer
	Flush() error
}

// sendQueue is a stream's write side. Writers append their bytes to a
// pending buffer; one of them at a time (the flusher) hands the buffer to
// the kernel in one write while the others keep appending, so concurrent
// writers share syscalls instead of queueing for the socket. Each writer
// waits until its own bytes are written, so the pending buffer holds at
// most one package per waiting writer: bounded, and no extra goroutine.
//
// While corked (a dispatch batch is running) writes are only appended;
// uncork flushes them together, or a write flushes early once maxCorked
// bytes are pending.
type sendQueue struct {
	w    net.Conn
	z    flusher // compressor in front of w; nil for raw bytes
	mu   sync.Mutex
	cond sync.Cond

	buf      *[]byte // pending bytes, pooled; nil when none
	spare    *[]byte // the flusher's buffer, kept for the next swap
	pending  int     // len of *buf in use
	flushing bool
	corked   int
	appended uint64 // bytes ever accepted
	written  uint64 // bytes ever taken by the kernel
	err      error  // sticky: the stream is broken
	closed   bool

	deadline writeDeadline
}

func (q *sendQueue) init(w net.Conn) {
	q.w = w
	q.cond.L = &q.mu
}

func (q *sendQueue) setCompressor(z flusher) {
	q.mu.Lock()
	q.z = z
	q.mu.Unlock()
}

// bigWrite is where appending (a copy) stops paying for itself against a
// writev that points at the caller's bytes.
const bigWrite = 64 << 10

func (q *sendQueue) write(first []byte, more [][]byte, timeout time.Duration) (int, error) {
	size := len(first)
	for _, b := range more {
		size += len(b)
	}
	q.mu.Lock()
	if q.err != nil || q.closed {
		err := q.err
		q.mu.Unlock()
		if err == nil {
			err = ErrSessionClosed
		}
		return 0, err
	}
	if size >= bigWrite {
		return q.writeBig(first, more, size, timeout) // unlocks
	}
	start := q.appended
	q.append(first)
	for _, b := range more {
		q.append(b)
	}
	end := q.appended
	if q.corked > 0 && q.pending < maxCorked {
		q.mu.Unlock()
		return size, nil
	}
	var dl time.Time
	for q.written < end && q.err == nil {
		if q.flushing {
			q.waitLocked(&dl, timeout)
			continue
		}
		q.flushLocked(nil, timeout)
	}
	sent := sentOf(q.written, start, end)
	err := q.err
	q.mu.Unlock()
	return sent, err
}

func sentOf(written, start, end uint64) int {
	switch {
	case written >= end:
		return int(end - start)
	case written <= start:
		return 0
	}
	return int(written - start)
}

func (q *sendQueue) append(b []byte) {
	if q.buf == nil {
		q.buf = bufpool.Get(max(len(b), 4096))
	}
	if q.pending+len(b) > len(*q.buf) {
		nb := bufpool.Get(q.pending + len(b))
		copy(*nb, (*q.buf)[:q.pending])
		bufpool.Put(q.buf)
		q.buf = nb
	}
	q.pending += copy((*q.buf)[q.pending:], b)
	q.appended += uint64(len(b))
}

// writeBig writes a large package without copying it: it waits for the
// socket, then writes the pending bytes and the package in one writev.
func (q *sendQueue) writeBig(first []byte, more [][]byte, size int, timeout time.Duration) (int, error) {
	var dl time.Time
	for q.flushing && q.err == nil {
		q.waitLocked(&dl, timeout)
	}
	if q.err != nil {
		err := q.err
		q.mu.Unlock()
		return 0, err
	}
	start := q.appended
	bufs := make(net.Buffers, 0, 2+len(more))
	bufs = append(bufs, first)
	bufs = append(bufs, more...)
	q.appended += uint64(size)
	end := q.appended
	q.flushLocked(bufs, timeout)
	sent := sentOf(q.written, start, end)
	err := q.err
	q.mu.Unlock()
	return sent, err
}

// flushLocked writes the pending bytes (then extra, when given) with mu
// held on entry and exit but released around the syscall.
func (q *sendQueue) flushLocked(extra net.Buffers, timeout time.Duration) {
	q.flushing = true
	data, n := q.buf, q.pending
	q.buf, q.pending = q.spare, 0
	q.spare = nil
	q.mu.Unlock()

	var pending []byte
	if data != nil {
		pending = (*data)[:n]
	}
	wrote, err := q.writeOut(pending, extra, timeout)

	q.mu.Lock()
	q.written += uint64(wrote)
	if err != nil && q.err == nil {
		q.err = err
	}
	q.flushing = false
	// Keep a buffer for the next swap while writers keep coming; give both
	// back when nothing is pending, so an idle connection holds none.
	if q.pending == 0 {
		bufpool.Put(data)
		bufpool.Put(q.buf)
		q.buf = nil
	} else {
		q.spare = data
	}
	q.cond.Broadcast()
}

// writeOut hands pending, then extra, to the socket (through the
// compressor when there is one). A panic below it, a compressor's say, is
// turned into the stream's error: the stream may be corrupt, so the writer
// gets the error and the session closes, and flushLocked still clears the
// flushing mark, so no later writer waits on a queue that nobody flushes.
func (q *sendQueue) writeOut(pending []byte, extra net.Buffers, timeout time.Duration) (wrote int64, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = internalFault("the send queue", v)
		}
	}()
	if len(pending) == 0 && extra == nil {
		return 0, nil
	}
	q.deadline.arm(q.w, timeout)
	switch {
	case q.z != nil:
		return q.compress(pending, extra)
	case extra == nil:
		m, err := q.w.Write(pending)
		return int64(m), err
	}
	// Declared here: WriteTo's pointer receiver moves bufs to the heap, and
	// only big writes should pay for that.
	bufs := make(net.Buffers, 0, 1+len(extra))
	if len(pending) > 0 {
		bufs = append(bufs, pending)
	}
	bufs = append(bufs, extra...)
	return bufs.WriteTo(q.w)
}

// compress writes pending and extra through the compressor and flushes it,
// so the peer can decode everything written so far. It reports the
// uncompressed bytes taken, as a plain write would.
func (q *sendQueue) compress(pending []byte, extra net.Buffers) (int64, error) {
	n, err := q.z.Write(pending)
	total := int64(n)
	for i := 0; err == nil && i < len(extra); i++ {
		n, err = q.z.Write(extra[i])
		total += int64(n)
	}
	if err != nil {
		return total, err
	}
	return total, q.z.Flush()
}

// waitLocked waits (mu held) for the flusher to finish, but not past this
// caller's own deadline (*dl, set from timeout on the first wait). When the
// deadline passes with the flusher still stuck, the peer is not reading:
// the stream is failed and the socket closed, which also releases the
// flusher, so every writer returns within about its own timeout.
func (q *sendQueue) waitLocked(dl *time.Time, timeout time.Duration) {
	if timeout <= 0 {
		q.cond.Wait()
		return
	}
	now := time.Now()
	if dl.IsZero() {
		*dl = now.Add(timeout)
	}
	if !now.Before(*dl) {
		if q.err == nil {
			q.err = fmt.Errorf("%w: write waited %v for the connection", os.ErrDeadlineExceeded, timeout)
		}
		q.w.Close()
		q.cond.Broadcast()
		return
	}
	t := time.AfterFunc(dl.Sub(now), q.wake)
	q.cond.Wait()
	t.Stop()
}

func (q *sendQueue) wake() {
	q.mu.Lock()
	q.cond.Broadcast()
	q.mu.Unlock()
}

func (q *sendQueue) cork() {
	q.mu.Lock()
	q.corked++
	q.mu.Unlock()
}

// uncork ends a batch and, with flush, writes what it gathered.
func (q *sendQueue) uncork(timeout time.Duration, flush bool) error {
	q.mu.Lock()
	if q.corked > 0 {
		q.corked--
	}
	if !flush || q.corked > 0 || q.pending == 0 {
		q.mu.Unlock()
		return nil
	}
	end := q.appended
	var dl time.Time
	for q.written < end && q.err == nil {
		if q.flushing {
			q.waitLocked(&dl, timeout)
			continue
		}
		q.flushLocked(nil, timeout)
	}
	err := q.err
	q.mu.Unlock()
	return err
}

// close refuses new writes and flushes what was accepted before deadline.
func (q *sendQueue) close(deadline time.Time) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return q.err
	}
	q.closed = true
	q.corked = 0
	timeout := max(time.Until(deadline), time.Millisecond)
	var dl time.Time
	for q.err == nil && (q.pending > 0 || q.flushing) {
		if q.flushing {
			q.waitLocked(&dl, timeout)
			continue
		}
		q.flushLocked(nil, timeout)
	}
	if q.buf != nil {
		bufpool.Put(q.buf)
		q.buf, q.pending = nil, 0
	}
	return q.err
}

// abort refuses new writes and drops what is pending.
func (q *sendQueue) abort() {
	q.mu.Lock()
	q.closed = true
	if q.err == nil {
		q.err = ErrSessionClosed
	}
	q.cond.Broadcast()
	q.mu.Unlock()
}

// handshake runs the TLS handshake with its timeout before the session
// starts, so a failed or stalled handshake never reaches a callback.
func (t *tcpTransport) handshake(*session) error {
	tc, ok := t.c.(*tls.Conn)
	if !ok {
		return nil
	}
	timeout := t.tlsTimeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return tc.HandshakeContext(ctx)
}
