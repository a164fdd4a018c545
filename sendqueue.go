package getty

import (
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/getty-go/getty/internal/bufpool"
)

// compressor is a stream compressor (flate, snappy): what it buffers goes
// out on Flush.
type compressor interface {
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
	w  net.Conn
	z  compressor // in front of w; nil for raw bytes
	mu sync.Mutex
	// cond wakes writers waiting for the flusher. It is made on the first
	// wait (waitCond): most connections never have a writer wait for
	// another, and a sync.Cond is 56 bytes.
	cond *sync.Cond

	buf      *[]byte // pending bytes, pooled; nil when none
	spare    *[]byte // the flusher's buffer, kept for the next swap
	pending  int     // len of *buf in use
	appended uint64  // bytes ever accepted
	written  uint64  // bytes ever taken by the kernel
	err      error   // sticky: the stream is broken
	// handlers counts the session's OnMessage calls running now, once
	// gatherWith has set gatherOn (unordered dispatch).
	handlers  atomic.Int32
	corked    int32
	flushing  bool
	gatherOn  bool // writes gather the replies of concurrent handlers
	gathering bool // a writer yields before its flush (gather)
	closed    bool

	deadline writeDeadline
}

// iovList is a flusher's writev list. Lists are pooled rather than kept in
// each queue: only a write of a big package or through a compressor needs
// one, and an idle connection then holds none (120 bytes less per queue).
type iovList struct {
	bufs net.Buffers
	base [4][]byte
}

var iovLists = sync.Pool{New: func() any { return new(iovList) }}

func (q *sendQueue) init(w net.Conn) { q.w = w }

// waitCond returns cond, making it (mu held).
func (q *sendQueue) waitCond() *sync.Cond {
	if q.cond == nil {
		q.cond = sync.NewCond(&q.mu)
	}
	return q.cond
}

// broadcast wakes the waiting writers (mu held). Nobody waits on a nil
// cond: a writer makes it before waiting, with mu held.
func (q *sendQueue) broadcast() {
	if q.cond != nil {
		q.cond.Broadcast()
	}
}

func (q *sendQueue) setCompressor(z compressor) {
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
	if err := q.refusal(); err != nil {
		q.mu.Unlock()
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
	return q.commit(start, size, timeout)
}

// writeFramed is write for a package a built-in codec framed (below
// bigWrite): its pieces are copied straight into the pending bytes.
func (q *sendQueue) writeFramed(f *framed, timeout time.Duration) (int, error) {
	size := f.size()
	q.mu.Lock()
	if err := q.refusal(); err != nil {
		q.mu.Unlock()
		return 0, err
	}
	start := q.appended
	f.put(bufpool.Grow(&q.buf, q.pending, size))
	q.pending += size
	q.appended += uint64(size)
	return q.commit(start, size, timeout)
}

// refusal (mu held) is why the queue takes no more bytes; nil when it does.
func (q *sendQueue) refusal() error {
	if q.err != nil {
		return q.err
	}
	if q.closed {
		return ErrSessionClosed
	}
	return nil
}

// commit (mu held; it unlocks) ends a write of size bytes appended from
// start: a corked or gathering queue only keeps them, else they are
// flushed. It returns what write returns.
func (q *sendQueue) commit(start uint64, size int, timeout time.Duration) (int, error) {
	end := q.appended
	if (q.corked > 0 || q.gathering) && q.pending < maxCorked {
		q.mu.Unlock()
		return size, nil
	}
	q.gather()
	q.flushThrough(end, timeout)
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
	q.pending = bufpool.Append(&q.buf, q.pending, b)
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
	q.appended += uint64(size)
	end := q.appended
	q.flushLocked(first, more, timeout)
	sent := sentOf(q.written, start, end)
	err := q.err
	q.mu.Unlock()
	return sent, err
}

// flushThrough (mu held) flushes, or waits for the flusher, until every
// byte up to end is written or the stream fails; the waits are bounded by
// timeout (see waitLocked).
func (q *sendQueue) flushThrough(end uint64, timeout time.Duration) {
	var dl time.Time
	for q.written < end && q.err == nil {
		if q.flushing {
			q.waitLocked(&dl, timeout)
			continue
		}
		q.flushLocked(nil, nil, timeout)
	}
}

// flushLocked writes the pending bytes, then first and more (a big write's
// own slices, when given), with mu held on entry and exit but released
// around the syscall.
func (q *sendQueue) flushLocked(first []byte, more [][]byte, timeout time.Duration) {
	q.flushing = true
	data, n := q.buf, q.pending
	q.buf, q.pending = q.spare, 0
	q.spare = nil
	q.mu.Unlock()

	var pending []byte
	if data != nil {
		pending = (*data)[:n]
	}
	wrote, err := q.writeOut(pending, first, more, timeout)

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
	q.broadcast()
}

// writeOut hands pending, then first and more, to the socket (through the
// compressor when there is one). A panic below it, a compressor's say, is
// turned into the stream's error: the stream may be corrupt, so the writer
// gets the error and the session closes, and flushLocked still clears the
// flushing mark, so no later writer waits on a queue that nobody flushes.
func (q *sendQueue) writeOut(pending, first []byte, more [][]byte, timeout time.Duration) (wrote int64, err error) {
	defer recoverFault("the send queue", &err)
	big := first != nil || more != nil
	if len(pending) == 0 && !big {
		return 0, nil
	}
	q.deadline.arm(q.w, timeout)
	if q.z == nil && !big {
		m, err := q.w.Write(pending)
		return int64(m), err
	}
	l := iovLists.Get().(*iovList)
	defer putIOV(l)
	l.bufs = l.base[:0]
	if len(pending) > 0 {
		l.bufs = append(l.bufs, pending)
	}
	if big {
		l.bufs = append(l.bufs, first)
		l.bufs = append(l.bufs, more...)
	}
	if q.z != nil {
		return q.compress(l.bufs)
	}
	return l.bufs.WriteTo(q.w)
}

// putIOV pools l again. WriteTo consumed l.bufs; clearing the base drops
// what it left, so the pool keeps no reference to the writers' slices. A
// list grown past its base for many slices is dropped with them.
func putIOV(l *iovList) {
	clear(l.base[:])
	l.bufs = nil
	iovLists.Put(l)
}

// compress writes bufs through the compressor and flushes it, so the peer
// can decode everything written so far. It reports the uncompressed bytes
// taken, as a plain write would.
func (q *sendQueue) compress(bufs net.Buffers) (int64, error) {
	var (
		total int64
		err   error
	)
	for i := 0; err == nil && i < len(bufs); i++ {
		var n int
		n, err = q.z.Write(bufs[i])
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
		q.waitCond().Wait()
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
		q.broadcast()
		return
	}
	t := time.AfterFunc(dl.Sub(now), q.wake)
	q.waitCond().Wait()
	t.Stop()
}

func (q *sendQueue) wake() {
	q.mu.Lock()
	q.broadcast()
	q.mu.Unlock()
}

// gatherWith makes writes gather the replies of handlers running at once;
// the session's dispatch then counts its running handlers in q.handlers.
func (q *sendQueue) gatherWith() {
	q.mu.Lock()
	q.gatherOn = true
	q.mu.Unlock()
}

// gather (mu held) lets other handlers of the session append their replies
// before a flush, when some run besides the writer: handlers that block
// often wake together (their timers expire in one scheduler round), and on
// a busy CPU the kernel is not slow enough for the writers to meet on their
// own, so without it each reply costs a write(2) of its own. The writer
// reserves the flush (flushing, gathering), yields once, and then flushes
// what was appended meanwhile; writers that come in the meantime only
// append, as in a corked batch, since that flush is sure to follow. One
// yield at most per flush, so a reply is delayed by one round of the
// runnable goroutines, never by a handler.
func (q *sendQueue) gather() {
	if !q.gatherOn || q.flushing || q.handlers.Load() < 2 {
		return
	}
	q.flushing, q.gathering = true, true
	q.mu.Unlock()
	runtime.Gosched()
	q.mu.Lock()
	q.flushing, q.gathering = false, false
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
	q.flushThrough(q.appended, timeout)
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
	// Everything accepted is written once written reaches appended: while
	// the stream is healthy, bytes pending or in flight are exactly the
	// difference.
	q.flushThrough(q.appended, max(time.Until(deadline), time.Millisecond))
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
	q.broadcast()
	q.mu.Unlock()
}
