package getty

import (
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/getty-go/getty/internal/bufpool"
)

// Connection is the transport side of a session: counters, timeouts and raw
// sends. Every Session is a Connection. All methods are safe for concurrent
// use.
type Connection interface {
	// ID is unique among the connections of the process.
	ID() uint32
	// SetCompressType turns on stream compression for a TCP connection
	// (per-message deflate for WebSocket). Set it in the new-session
	// callback, before any byte flows, and the same on both ends.
	SetCompressType(CompressType)
	LocalAddr() string
	RemoteAddr() string
	// IncReadPkgNum and IncWritePkgNum bump the package counters that Stat
	// prints; the session counts its own packages, these are for callers
	// that move packages outside it.
	IncReadPkgNum()
	IncWritePkgNum()
	// UpdateActive marks the connection active now; the session does it on
	// every read.
	UpdateActive()
	// GetActive returns the last time the connection was marked active.
	GetActive() time.Time
	// ReadTimeout bounds how long a package may take to arrive once its
	// first byte has; an idle connection waits without a deadline.
	// Default 1 s; values <= 0 are ignored.
	ReadTimeout() time.Duration
	SetReadTimeout(time.Duration)
	// WriteTimeout bounds a write whose call gives no timeout of its own.
	// Default 1 s; values <= 0 are ignored.
	WriteTimeout() time.Duration
	SetWriteTimeout(time.Duration)
	// Send writes raw bytes, bypassing the Writer: a []byte, a string, a
	// [][]byte or net.Buffers (one writev), or on UDP a UDPContext whose Pkg
	// is one of those.
	Send(any) (int, error)
	// CloseConn closes the socket at once, without flushing. On TCP,
	// waitSec >= 0 sets SO_LINGER first (0 sends a reset).
	CloseConn(waitSec int)
	// SetSession is kept for compatibility: a session is its own
	// connection, so there is nothing to link.
	SetSession(Session)
}

// The boundary between a session and its transport is four interfaces, one
// per direction and kind, so neither side reaches into the other's fields:
//
//	session -> transport   transport (every kind), packetTransport (UDP)
//	transport -> session   streamConn (TCP, TLS), messageSession (UDP, WebSocket)
//
// The session owns the life cycle; a transport only moves bytes.

// transport is what a session needs from one kind of connection.
type transport interface {
	// conn is what Session.Conn returns: *net.TCPConn, *tls.Conn,
	// *net.UDPConn, or the net.Conn under a WebSocket.
	conn() net.Conn
	// readLoop runs on the reader goroutine until the connection fails or
	// closes, feeding what it reads to s: a stream transport hands itself to
	// s.readStream, a message transport hands each message to
	// s.handleMessage. A nil return is an orderly end (EOF or local close).
	readLoop(s sessionPort) error
	// write sends first and more as one unit (stream bytes, one datagram,
	// one WebSocket message) within timeout (<= 0: none). A timeout rather
	// than a deadline, so gathered writes read the clock only when they
	// reach the socket. It must not keep the slices after it returns.
	write(first []byte, more [][]byte, timeout time.Duration) (int, error)
	// writeFramed is write for a package a built-in codec framed, which
	// is smaller than bigWrite; the same rules apply.
	writeFramed(f framed, timeout time.Duration) (int, error)
	// cork and uncork bracket a dispatch batch: writes made in between may
	// be gathered and flushed together at uncork. uncork with flush false
	// only ends the batch, so the next write flushes everything at once;
	// uncork with flush true also writes out what is pending, within
	// timeout. Message transports make them no-ops.
	cork()
	uncork(flush bool, timeout time.Duration) error
	// shutdown flushes what was accepted for writing (bounded by deadline)
	// and closes the connection; it is idempotent and makes readLoop
	// return. reason is the error that ends the session, nil for an orderly
	// close (a WebSocket tells its peer with the close code).
	shutdown(deadline time.Time, reason error) error
	// closeNow closes the connection without flushing; linger as CloseConn.
	closeNow(linger int)
	// setCompress switches compression; false if the transport cannot.
	setCompress(CompressType) bool
}

// writeFramedCopy is writeFramed for a transport that writes each package
// as a unit of its own (a datagram, a WebSocket message): the package is
// put in a pooled buffer, written, and the buffer goes back.
func writeFramedCopy(t transport, f framed, timeout time.Duration) (int, error) {
	bp := bufpool.Get(f.size())
	defer bufpool.Put(bp)
	return t.write((*bp)[:f.put(*bp)], nil, timeout)
}

// packetTransport is a transport whose packages carry their peer (UDP): on
// an endpoint's one unconnected socket every write names its destination,
// and on every UDP socket OnMessage receives the package with the peer it
// came from. The session asks it rather than knowing what a peer is.
type packetTransport interface {
	// peerOf picks the destination of pkg, before it is encoded; nil
	// without an error when the socket has one peer (a connected client).
	peerOf(pkg any) (net.Addr, error)
	// writeTo is write to peer; a nil peer is the default one.
	writeTo(peer net.Addr, first []byte, more [][]byte, timeout time.Duration) (int, error)
	// wrap makes what OnMessage receives from a decoded package, with the
	// peer of the message being handled (on the reader goroutine);
	// unwrap gives back the decoded package, for PkgReleaser.
	wrap(pkg any) any
	unwrap(pkg any) any
	// dropped counts the datagrams dropped without reaching OnMessage
	// (truncated, oversize, undecodable).
	dropped() uint64
}

// handshaker is a transport with a step between accept (or dial) and the
// new-session callback: a TLS handshake. A failure closes the connection
// before any callback.
type handshaker interface {
	handshake() error
}

// streamConn is what readStream needs from a stream transport.
type streamConn interface {
	// readFresh reads into a new pooled buffer of at least size bytes. It
	// waits for the socket without holding a buffer where it can, so an
	// idle connection holds none. The buffer is returned even with n == 0.
	readFresh(size int) (buf *[]byte, n int, err error)
	// read reads into p, the free part of the buffer being filled.
	read(p []byte) (int, error)
	setReadDeadline(time.Time) error
	// timeoutIsFatal reports a reader that stays broken after an error, a
	// timeout included (a decompressor): its deadline must never fire on
	// an idle connection.
	timeoutIsFatal() bool
}

// messageSession is what a message transport (UDP, WebSocket) needs from
// the session it carries: the mirror of streamConn. It reads the session's
// settings, hands it whole messages, and ends it; it never touches the
// session's fields.
type messageSession interface {
	// handleMessage decodes every package of one whole message and
	// dispatches them. The transport marks the session active when it
	// reads (UpdateActive), once per read, however many messages it holds.
	// gathering tells that the transport holds the replies corked
	// around this call (more messages arrived with this one).
	handleMessage(data []byte, gathering bool) error
	// ending reports that the session is closing: a message read now is
	// dropped, and a failed write is not the session's error.
	ending() bool
	msgLimit() int
	ReadTimeout() time.Duration
	WriteTimeout() time.Duration
	cronInterval() time.Duration
	UpdateActive()
	// touch is UpdateActive returning the time it marked.
	touch() time.Time
	// debugEnabled reports whether log would write at debug level, so that
	// a flood of bad datagrams builds no log attributes for nothing.
	debugEnabled() bool
	// log writes a line with the session's attributes (see logattrs.go).
	log(level slog.Level, msg string, err error, attrs ...slog.Attr)
	// token names the session in logs.
	token() string
	opError(op string, err error) error
	// readError classifies the error that ended a read: nil for EOF or the
	// session's own close.
	readError(err error) error
	// peerClosing records why the peer is closing (nil: in order) and marks
	// the session closing, so later writes report it closed rather than
	// failing it.
	peerClosing(reason error)
	// fail closes the session with err, which OnError receives.
	fail(err error)
}

// sessionPort is what every transport's readLoop receives: the stream
// entry and the message one. *session is the only implementation.
type sessionPort interface {
	readStream(c streamConn) error
	messageSession
}

// writeDeadline sets a connection's write deadline lazily: only when the
// armed one is off by more than a quarter of the time left, so steady
// writes do not touch the runtime's timers each time. A write may thus fail
// up to a quarter of its timeout late, never early. The caller serializes
// calls (it holds the connection's write side).
type writeDeadline struct {
	// armed is the deadline set on the socket, a monoNow instant (0:
	// none): 8 bytes where a time.Time is 24, with the same monotonic
	// reading.
	armed int64
}

// arm sets the deadline for a write due within timeout (<= 0: none).
func (w *writeDeadline) arm(c net.Conn, timeout time.Duration) {
	if timeout <= 0 {
		w.set(c, time.Time{}, 0)
		return
	}
	w.set(c, time.Now().Add(timeout), timeout)
}

// armBy sets the deadline for a write due by dl (zero: none).
func (w *writeDeadline) armBy(c net.Conn, dl time.Time) {
	if dl.IsZero() {
		w.set(c, dl, 0)
		return
	}
	w.set(c, dl, time.Until(dl))
}

// set puts dl plus a quarter of timeout on the socket unless the armed
// deadline already lies between dl and that; a zero dl clears it.
func (w *writeDeadline) set(c net.Conn, dl time.Time, timeout time.Duration) {
	if dl.IsZero() {
		if w.armed != 0 {
			w.armed = 0
			_ = c.SetWriteDeadline(time.Time{})
		}
		return
	}
	at := monoOf(dl)
	slack := int64(max(timeout/4, 0))
	if w.armed == 0 || w.armed < at || w.armed > at+slack {
		w.armed = at + slack
		_ = c.SetWriteDeadline(monoTime(w.armed))
	}
}

// monoOf is the monoNow instant of t (at least 1: 0 means none).
func monoOf(t time.Time) int64 { return max(int64(t.Sub(monoBase))+1, 1) }

// closeTLS runs close, a TLS Close or CloseWrite. Those write a
// close_notify under tls's own 5 s deadline, and a peer that stopped
// reading must not hold a close that long: the TCP socket underneath is
// closed once grace has passed, which releases the write.
func closeTLS(tcp *net.TCPConn, grace time.Duration, close func() error) {
	timer := time.AfterFunc(grace, func() { tcp.Close() })
	defer timer.Stop()
	_ = close()
}

// tcpConnOf finds the TCP socket under a connection, through TLS.
func tcpConnOf(c net.Conn) *net.TCPConn {
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

// writeLock serializes a connection's writers like a mutex, but a writer
// can give up after its own timeout instead of queueing behind a write
// that is stuck on a peer that does not read.
type writeLock chan struct{}

func newWriteLock() writeLock { return make(writeLock, 1) }

func (l writeLock) lock()   { l <- struct{}{} }
func (l writeLock) unlock() { <-l }

func (l writeLock) tryLock() bool {
	select {
	case l <- struct{}{}:
		return true
	default:
		return false
	}
}

// lockWithin locks, waiting at most d (d <= 0: as long as it takes).
func (l writeLock) lockWithin(d time.Duration) bool {
	if l.tryLock() {
		return true
	}
	if d <= 0 {
		l.lock()
		return true
	}
	// Writers from a worker pool contend for a connection all the time: the
	// timer is pooled, so waiting allocates nothing.
	t, _ := lockTimers.Get().(*time.Timer)
	if t == nil {
		t = time.NewTimer(d)
	} else {
		t.Reset(d)
	}
	defer lockTimers.Put(t)
	select {
	case l <- struct{}{}:
		if !t.Stop() {
			// Fired meanwhile: drain it for the next user (Go before
			// 1.23 buffers the value; later Go never delivers it).
			select {
			case <-t.C:
			default:
			}
		}
		return true
	case <-t.C:
		return false
	}
}

// lockTimers holds lockWithin's timers, stopped and drained.
var lockTimers sync.Pool
