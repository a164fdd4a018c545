package getty

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/getty-go/getty/internal/bufpool"
	"github.com/getty-go/getty/internal/dispatch"
	"github.com/getty-go/getty/internal/wheel"
)

// Session is one connection with its codec, listener and settings. The
// setters are meant for the new-session callback, before the first read;
// SetCronPeriod, SetMaxMsgLen, the timeouts, SetName and the attributes may
// change at any time. Writes and Close are safe for concurrent use.
type Session interface {
	Connection
	// Reset restores the default settings (name, limits, timeouts, cron
	// period, attributes). It is for a session that has not started.
	Reset()
	// Conn returns the transport connection: *net.TCPConn for TCP,
	// *tls.Conn for TLS, *net.UDPConn for UDP, the net.Conn under a
	// WebSocket.
	Conn() net.Conn
	// Stat returns "session {name:type:id:local<->remote}, Read Bytes: ...",
	// as upstream.
	Stat() string
	IsClosed() bool
	EndPoint() EndPoint

	// SetMaxMsgLen caps a package's length on the wire; a longer one closes
	// the session with ErrMsgTooLong as soon as its length is known.
	// Default 4096; values <= 0 are ignored.
	SetMaxMsgLen(int)
	SetName(string)
	SetEventListener(EventListener)
	// SetPkgHandler sets the Reader and the Writer at once.
	SetPkgHandler(ReadWriter)
	SetReader(Reader)
	SetWriter(Writer)
	// SetCronPeriod sets the OnCron period in milliseconds, at any time.
	// Default 60000; values <= 0 are ignored.
	SetCronPeriod(int)
	// SetWaitTime bounds how long Close waits to flush what was accepted
	// for writing. Default 3 s; values <= 0 are ignored.
	SetWaitTime(time.Duration)
	GetAttribute(any) any
	SetAttribute(any, any)
	RemoveAttribute(any)

	// WritePkg encodes pkg with the Writer and writes it. timeout bounds
	// this call only (<= 0: the session's WriteTimeout). It returns the
	// encoded length, the bytes handed to the kernel, and an error that
	// matches ErrSessionClosed once the session is closing. A write error
	// other than an encoding error closes the session, since the stream may
	// hold part of a package. On a UDP endpoint pkg is a UDPContext (or
	// *UDPContext) naming the peer.
	//
	// While the session dispatches several packages that arrived together,
	// replies written from OnMessage are gathered and flushed in one write
	// after the last of them; WritePkg then reports them as sent. A handler
	// that blocks after writing delays the replies gathered before it.
	WritePkg(pkg any, timeout time.Duration) (totalBytesLength int, sendBytesLength int, err error)
	// WriteBytes writes raw bytes, bypassing the Writer.
	WriteBytes([]byte) (int, error)
	// WriteBytesArray writes several slices as one unit (one writev on
	// TCP, one datagram on UDP, one message on WebSocket).
	WriteBytesArray(...[]byte) (int, error)
	// Close flushes what was accepted for writing (bounded by the wait
	// time), closes the connection at once, and makes OnClose fire once
	// the callbacks in flight are done. It does not wait for OnClose, so
	// handlers may call it. Idempotent.
	Close()
}

// connID numbers connections process-wide, as upstream does.
var connID atomic.Uint32

// dispatch modes
const (
	dispatchInline    = iota // OnMessage on the reader goroutine
	dispatchMailbox          // per-session FIFO on an executor
	dispatchUnordered        // straight onto a gost pool
)

type session struct {
	id   uint32
	ep   *endpoint
	tr   transport
	name atomic.Pointer[string]

	// user pieces; set in the new-session callback, read by the reader
	listener EventListener
	reader   Reader
	writer   Writer
	appender PkgAppender // writer, when it can append
	releaser PkgReleaser // reader, when its packages are pooled

	maxMsgLen    atomic.Int64
	readTimeout  atomic.Int64 // ns
	writeTimeout atomic.Int64 // ns
	cronPeriod   atomic.Int64 // ns
	waitTime     atomic.Int64 // ns

	attrMu sync.Mutex
	attrs  map[any]any

	readBytes  atomic.Uint64
	writeBytes atomic.Uint64
	readPkgs   atomic.Uint64
	writePkgs  atomic.Uint64
	drops      atomic.Uint64 // datagrams dropped (UDP)
	active     atomic.Int64  // unix ns

	// dispatch
	mode      int
	mbox      *dispatch.Mailbox
	ex        dispatch.Executor
	onMessage func(any) // method value made once, so Post allocates nothing
	gateMu    sync.RWMutex
	gateShut  bool

	// cron
	cronMu   sync.Mutex
	cron     *wheel.Timer
	cronBusy atomic.Bool

	// life cycle
	opened    atomic.Bool // OnOpen succeeded: OnClose is owed
	ended     atomic.Bool // final ran: counted in the endpoint's totals
	closing   atomic.Bool
	errMu     sync.Mutex
	err       error // the error that ends the session; nil for an orderly close
	finalOnce sync.Once
	finalDone chan struct{}

	// read buffer and stream state, owned by the reader goroutine
	rbuf *[]byte
	rlen int
	rs   readState
}

func newSession(ep *endpoint, tr transport) *session {
	s := &session{
		id:        connID.Add(1),
		ep:        ep,
		tr:        tr,
		finalDone: make(chan struct{}),
	}
	s.Reset()
	s.onMessage = s.runMessage
	s.cron = wheel.Default().NewTimer(s.cronFire)
	s.UpdateActive()
	return s
}

// ---- settings -------------------------------------------------------------

func (s *session) Reset() {
	name := defaultSessionName
	if s.ep != nil {
		name = s.ep.sessionName
	}
	s.name.Store(&name)
	s.maxMsgLen.Store(defaultMaxMsgLen)
	s.readTimeout.Store(int64(defaultReadTimeout))
	s.writeTimeout.Store(int64(defaultWriteTimeout))
	s.cronPeriod.Store(int64(defaultCronPeriod))
	s.waitTime.Store(int64(defaultWaitTime))
	s.attrMu.Lock()
	s.attrs = nil
	s.attrMu.Unlock()
}

func (s *session) SetMaxMsgLen(n int) {
	if n > 0 {
		s.maxMsgLen.Store(int64(n))
	}
}

func (s *session) SetName(name string) { s.name.Store(&name) }

func (s *session) SetEventListener(l EventListener) { s.listener = l }

func (s *session) SetPkgHandler(rw ReadWriter) {
	s.SetReader(rw)
	s.SetWriter(rw)
}

func (s *session) SetReader(r Reader) {
	s.reader = r
	s.releaser, _ = r.(PkgReleaser)
}

func (s *session) SetWriter(w Writer) {
	s.writer = w
	s.appender, _ = w.(PkgAppender)
}

func (s *session) SetCronPeriod(ms int) {
	if ms <= 0 {
		return
	}
	d := time.Duration(ms) * time.Millisecond
	if s.cronPeriod.Swap(int64(d)) != int64(d) && s.opened.Load() {
		s.armCron()
	}
}

func (s *session) SetWaitTime(d time.Duration) {
	if d > 0 {
		s.waitTime.Store(int64(d))
	}
}

func (s *session) GetAttribute(key any) any {
	s.attrMu.Lock()
	defer s.attrMu.Unlock()
	return s.attrs[key]
}

func (s *session) SetAttribute(key, value any) {
	s.attrMu.Lock()
	defer s.attrMu.Unlock()
	if s.attrs == nil {
		s.attrs = make(map[any]any)
	}
	s.attrs[key] = value
}

func (s *session) RemoveAttribute(key any) {
	s.attrMu.Lock()
	defer s.attrMu.Unlock()
	delete(s.attrs, key)
}

// ---- Connection -----------------------------------------------------------

func (s *session) ID() uint32 { return s.id }

func (s *session) SetCompressType(c CompressType) {
	if !s.tr.setCompress(c) {
		log().Warnf("getty: %s: compression %d not supported here", s.token(), c)
	}
}

func (s *session) LocalAddr() string  { return addrString(s.tr.conn().LocalAddr()) }
func (s *session) RemoteAddr() string { return addrString(remoteAddrOf(s.tr)) } // proxyproto.go

func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}

func (s *session) IncReadPkgNum()  { s.readPkgs.Add(1) }
func (s *session) IncWritePkgNum() { s.writePkgs.Add(1) }

func (s *session) UpdateActive()        { s.active.Store(time.Now().UnixNano()) }
func (s *session) GetActive() time.Time { return time.Unix(0, s.active.Load()) }

func (s *session) ReadTimeout() time.Duration { return time.Duration(s.readTimeout.Load()) }

func (s *session) SetReadTimeout(d time.Duration) {
	if d > 0 {
		s.readTimeout.Store(int64(d))
	}
}

func (s *session) WriteTimeout() time.Duration { return time.Duration(s.writeTimeout.Load()) }

func (s *session) SetWriteTimeout(d time.Duration) {
	if d > 0 {
		s.writeTimeout.Store(int64(d))
	}
}

func (s *session) Send(pkg any) (int, error) {
	switch p := pkg.(type) {
	case []byte:
		return s.WriteBytes(p)
	case string:
		return s.WriteBytes([]byte(p))
	case [][]byte:
		return s.WriteBytesArray(p...)
	case net.Buffers:
		return s.WriteBytesArray(p...)
	case UDPContext, *UDPContext:
		_, n, err := s.writeRaw(pkg)
		return n, err
	}
	return 0, s.opError("send", fmt.Errorf("getty: Send cannot write %T", pkg))
}

func (s *session) CloseConn(waitSec int) {
	s.closing.Store(true)
	s.tr.closeNow(waitSec)
}

func (s *session) SetSession(Session) {}

// ---- Session --------------------------------------------------------------

func (s *session) Conn() net.Conn { return s.tr.conn() }

func (s *session) EndPoint() EndPoint {
	if s.ep == nil {
		return nil
	}
	return s.ep.self
}

func (s *session) IsClosed() bool { return s.closing.Load() }

func (s *session) Stat() string {
	return fmt.Sprintf("session %s, Read Bytes: %d, Write Bytes: %d, Read Pkgs: %d, Write Pkgs: %d",
		s.token(), s.readBytes.Load(), s.writeBytes.Load(), s.readPkgs.Load(), s.writePkgs.Load())
}

// token names the session in errors and logs, as upstream's sessionToken.
func (s *session) token() string {
	typ := EndPointType(-1)
	if s.ep != nil {
		typ = s.ep.typ
	}
	return fmt.Sprintf("{%s:%s:%d:%s<->%s}", *s.name.Load(), typ, s.id, s.LocalAddr(), s.RemoteAddr())
}

func (s *session) opError(op string, err error) error {
	return &SessionError{Op: op, Session: s.token(), Err: err}
}

// ---- life cycle -----------------------------------------------------------

// run is the reader goroutine: set up, open, read until the end, then
// finish. It returns once OnClose has run.
//
// The frames on an idle reader's stack are kept small (setup runs and
// returns before reading; readStream keeps its state in the session), so a
// parked reader fits the runtime's smallest goroutine stack: 2 KiB per idle
// connection rather than 4.
func (s *session) run(newSession NewSessionCallback) {
	if !s.setup(newSession) {
		return
	}
	s.finish(s.tr.readLoop(s))
}

// setup takes the session from accepted to open: handshake, the
// new-session callback, OnOpen. False means the connection was closed.
//
//go:noinline
func (s *session) setup(newSession NewSessionCallback) bool {
	if h, ok := s.tr.(handshaker); ok {
		if err := h.handshake(s); err != nil {
			log().Infof("getty: %s: handshake: %v", s.token(), err)
			s.closing.Store(true)
			s.tr.closeNow(-1)
			return false
		}
	}
	if err := s.callNewSession(newSession); err != nil {
		s.notePanic(err)
		log().Infof("getty: %s: new-session callback: %v", s.token(), err)
		s.closing.Store(true)
		s.tr.closeNow(-1)
		return false
	}
	if err := s.open(); err != nil {
		s.notePanic(err)
		log().Infof("getty: %s: not opened: %v", s.token(), err)
		s.closing.Store(true)
		s.tr.closeNow(-1)
		if s.mbox != nil {
			s.mbox.Close(nil)
		}
		return false
	}
	return true
}

func (s *session) callNewSession(cb NewSessionCallback) (err error) {
	if cb == nil {
		return errors.New("getty: nil NewSessionCallback")
	}
	defer s.recoverInto("NewSessionCallback", &err)
	return cb(s)
}

// notePanic counts a panic that kept a session from opening; panics that
// end an open session are counted when it ends.
func (s *session) notePanic(err error) {
	if s.ep != nil && errors.Is(err, ErrPanic) {
		s.ep.counters.panics.Add(1)
	}
}

// recoverInto turns a panic into a *PanicError in *err. Deferred only.
func (s *session) recoverInto(callback string, err *error) {
	if v := recover(); v != nil {
		*err = &PanicError{Callback: callback, Value: v, Stack: debug.Stack()}
	}
}

func (s *session) open() (err error) {
	if s.reader == nil {
		return errors.New("getty: the session has no Reader (call SetPkgHandler or SetReader)")
	}
	if s.listener == nil {
		s.listener = BaseListener{}
	}
	s.setupDispatch()
	func() {
		defer s.recoverInto("OnOpen", &err)
		err = s.listener.OnOpen(s)
	}()
	if err != nil {
		return err
	}
	s.opened.Store(true)
	if s.ep != nil {
		s.ep.counters.opened.Add(1)
	}
	s.armCron()
	if s.ep != nil && s.ep.onOpen != nil {
		s.ep.onOpen(s)
	}
	return nil
}

func (s *session) setupDispatch() {
	ep := s.ep
	switch {
	case ep == nil || ep.executor == nil:
		s.mode = dispatchInline
	case ep.ordered:
		s.mode = dispatchMailbox
		s.mbox = dispatch.NewMailbox(ep.executor, uint64(s.id), ep.mailboxSize, 0)
		s.mbox.SetDrainHooks(s.tr.cork, s.uncork)
		s.mbox.SetPanicHandler(func(v any) {
			s.closeWith(&PanicError{Callback: "OnMessage", Value: v, Stack: debug.Stack()})
		})
	default:
		s.mode = dispatchUnordered
		s.ex = ep.executor
	}
}

// setErr records the error that ends the session; the first one wins.
func (s *session) setErr(err error) {
	s.errMu.Lock()
	if s.err == nil {
		s.err = err
	}
	s.errMu.Unlock()
}

func (s *session) endErr() error {
	s.errMu.Lock()
	defer s.errMu.Unlock()
	return s.err
}

func (s *session) Close() { s.closeWith(nil) }

// closeWith closes the session; a non-nil err is reported to OnError.
func (s *session) closeWith(err error) {
	if err != nil {
		var se *SessionError
		if !errors.As(err, &se) {
			err = s.opError("callback", err)
		}
		s.setErr(err)
	}
	if !s.closing.CompareAndSwap(false, true) {
		return
	}
	s.stopCron()
	if err := s.tr.shutdown(time.Now().Add(time.Duration(s.waitTime.Load()))); err != nil {
		log().Debugf("getty: %s: flush on close: %v", s.token(), err)
	}
	// The reader notices the closed socket and finishes the session; final
	// never runs here, since Close may be called from a callback that final
	// has to wait for.
}

// finish runs on the reader goroutine once readLoop has returned.
func (s *session) finish(readErr error) {
	if readErr != nil && !s.closing.Load() {
		s.setErr(readErr)
	}
	s.closing.Store(true)
	s.stopCron()
	if s.rbuf != nil {
		bufpool.Put(s.rbuf)
		s.rbuf, s.rlen = nil, 0
	}
	if s.mbox != nil {
		s.mbox.Close(s.final)
	} else {
		s.final()
	}
	<-s.finalDone
}

// final ends the session after its last OnMessage: it closes the socket
// (after flushing replies), waits out callbacks in flight, then reports.
func (s *session) final() {
	s.finalOnce.Do(func() {
		defer close(s.finalDone)
		s.closing.Store(true)
		s.stopCron()
		_ = s.tr.shutdown(time.Now().Add(time.Duration(s.waitTime.Load())))
		s.gateMu.Lock()
		s.gateShut = true
		s.gateMu.Unlock()
		err := s.endErr()
		if s.ep != nil {
			s.ep.noteEnd(s, err)
		}
		if err != nil {
			if errors.Is(err, ErrPanic) {
				// As upstream, a recovered panic is logged, whatever
				// OnError does with it.
				log().Errorf("%v", err)
			}
			s.callback("OnError", func() { s.listener.OnError(s, err) })
		}
		s.callback("OnClose", func() { s.listener.OnClose(s) })
		if s.ep != nil && s.ep.onEnd != nil {
			s.ep.onEnd(s)
		}
	})
}

// callback runs a closing callback under recover; a panic there can only be
// logged, the session is already ending.
func (s *session) callback(name string, f func()) {
	defer func() {
		if v := recover(); v != nil {
			if s.ep != nil {
				s.ep.counters.panics.Add(1)
			}
			log().Errorf("getty: %s: panic in %s: %v\n%s", s.token(), name, v, debug.Stack())
		}
	}()
	f()
}

// enter admits a callback that may overlap the reader (OnCron, unordered
// OnMessage); false once final has started.
func (s *session) enter() bool {
	s.gateMu.RLock()
	if s.gateShut {
		s.gateMu.RUnlock()
		return false
	}
	return true
}

func (s *session) leave() { s.gateMu.RUnlock() }

// ---- reading --------------------------------------------------------------

// streamConn is what readStream needs from a stream transport.
type streamConn interface {
	// readFresh reads into a new pooled buffer of at least size bytes. It
	// waits for the socket without holding a buffer where it can, so an
	// idle connection holds none. The buffer is returned even with n == 0.
	readFresh(size int) (buf *[]byte, n int, err error)
	// read reads into p, the free part of the buffer being filled.
	read(p []byte) (int, error)
	setReadDeadline(time.Time) error
	// stickyErrors reports a reader that stays broken after an error, a
	// timeout included (a decompressor): its deadline must never fire on
	// an idle connection.
	stickyErrors() bool
}

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
	need     int       // length of the package being assembled, when known
	started  time.Time // when the pending bytes began arriving
	deadline time.Time // armed read deadline; zero when none
	eof      bool      // the stream ended in order
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
		now := time.Now()
		s.active.Store(now.UnixNano())
		s.readBytes.Add(uint64(n))
		if s.rlen == 0 {
			rs.started = now
		}
		s.rlen += n
		before := s.rlen
		var perr error
		rs.need, perr = s.consume()
		if perr != nil {
			return perr
		}
		if s.rlen > 0 && s.rlen < before {
			// Packages completed: the timeout runs from the start of the
			// one still incomplete, which began in this read.
			rs.started = now
		}
		if s.rlen == 0 && !rs.deadline.IsZero() && c.stickyErrors() {
			rs.deadline = time.Time{}
			_ = c.setReadDeadline(rs.deadline)
		}
		if s.rlen > 0 && s.ReadTimeout() > 0 {
			// Arm lazily: re-arming costs a runtime timer update, so keep
			// a deadline that is still close enough.
			want := rs.started.Add(s.ReadTimeout())
			if rs.deadline.IsZero() || rs.deadline.Before(rs.started) || rs.deadline.After(want) {
				rs.deadline = want
				_ = c.setReadDeadline(rs.deadline)
			}
		}
	}
	if err == nil {
		return nil
	}
	if isTimeout(err) && !s.closing.Load() {
		if s.rlen > 0 && !time.Now().Before(rs.started.Add(s.ReadTimeout())) || c.stickyErrors() {
			return s.opError("read", fmt.Errorf("%w: %d of %d bytes after %v", ErrReadTimeout, s.rlen, max(rs.need, s.rlen), s.ReadTimeout()))
		}
		// An idle connection outlived an old deadline: clear it.
		rs.deadline = time.Time{}
		if s.rlen > 0 {
			rs.deadline = rs.started.Add(s.ReadTimeout())
		}
		_ = c.setReadDeadline(rs.deadline)
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
			return s.opError("read", fmt.Errorf("%w: peer closed in the middle of a package (%d bytes pending)", io.ErrUnexpectedEOF, s.rlen))
		}
		return nil
	}
	return s.opError("read", err)
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
		pkg, n, rerr := s.decode(buf[off:])
		if rerr != nil {
			return 0, rerr
		}
		if pkg == nil {
			if n == 0 {
				break
			}
			if n < 0 || n <= len(buf)-off {
				return 0, s.opError("decode", fmt.Errorf("%w: no package but length %d with %d bytes buffered", ErrReaderContract, n, len(buf)-off))
			}
			if n > maxLen {
				return 0, s.opError("decode", fmt.Errorf("%w: package of %d bytes, max %d", ErrMsgTooLong, n, maxLen))
			}
			need = n
			break
		}
		if n <= 0 || n > len(buf)-off {
			s.release(pkg)
			return 0, s.opError("decode", fmt.Errorf("%w: package with length %d, %d bytes buffered", ErrReaderContract, n, len(buf)-off))
		}
		if n > maxLen {
			s.release(pkg)
			return 0, s.opError("decode", fmt.Errorf("%w: package of %d bytes, max %d", ErrMsgTooLong, n, maxLen))
		}
		off += n
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
		if err := s.dispatch(pkg); err != nil {
			if corked {
				_ = s.uncorkErr()
			}
			return 0, err
		}
	}
	if corked || unflushed {
		if err := s.uncorkErr(); err != nil {
			return 0, err
		}
	}
	return need, s.compact(off, need, maxLen)
}

// compact moves the unconsumed bytes to the front and resizes the buffer:
// back to the pool when empty, larger when a longer package is coming.
func (s *session) compact(off, need, maxLen int) error {
	rest := s.rlen - off
	if rest == 0 {
		bufpool.Put(s.rbuf)
		s.rbuf, s.rlen = nil, 0
		return nil
	}
	if rest >= maxLen {
		// No package fits in what is already buffered: more bytes
		// cannot help.
		return s.opError("decode", fmt.Errorf("%w: no package within %d bytes (max %d)", ErrMsgTooLong, rest, maxLen))
	}
	buf := *s.rbuf
	if off > 0 {
		copy(buf, buf[off:s.rlen])
		s.rlen = rest
	}
	if s.rlen < len(buf) {
		return nil
	}
	// Full: grow, doubling, so a peer that declares a large package pays
	// with the bytes it sends before the buffer does; never past the
	// package's length when it is known, nor the max message length.
	if len(buf) >= maxLen {
		return s.opError("decode", fmt.Errorf("%w: no package within %d bytes (max %d)", ErrMsgTooLong, s.rlen, maxLen))
	}
	want := min(2*len(buf), maxLen)
	if need > len(buf) {
		want = min(want, need)
	}
	nb := bufpool.Get(want)
	copy(*nb, buf[:s.rlen])
	bufpool.Put(s.rbuf)
	s.rbuf = nb
	return nil
}

// decode calls the Reader under recover.
func (s *session) decode(b []byte) (pkg any, n int, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = s.opError("decode", &PanicError{Callback: "Reader.Read", Value: v, Stack: debug.Stack()})
		}
	}()
	pkg, n, err = s.reader.Read(s, b)
	if err != nil {
		err = s.opError("decode", err)
	}
	return pkg, n, err
}

// handleMessage decodes one whole message (a WebSocket message or a
// datagram of a connected UDP socket): exactly one Reader call.
func (s *session) handleMessage(data []byte, wrap func(any) any) error {
	s.UpdateActive()
	s.readBytes.Add(uint64(len(data)))
	if len(data) > int(s.maxMsgLen.Load()) {
		return s.opError("decode", fmt.Errorf("%w: message of %d bytes, max %d", ErrMsgTooLong, len(data), s.maxMsgLen.Load()))
	}
	pkg, n, err := s.decode(data)
	if err != nil {
		return err
	}
	if pkg == nil {
		return s.opError("decode", fmt.Errorf("%w: incomplete package in a whole message of %d bytes", ErrReaderContract, len(data)))
	}
	if n <= 0 || n > len(data) {
		s.release(pkg)
		return s.opError("decode", fmt.Errorf("%w: package with length %d in a message of %d bytes", ErrReaderContract, n, len(data)))
	}
	if wrap != nil {
		pkg = wrap(pkg)
	}
	return s.dispatch(pkg)
}

func (s *session) release(pkg any) {
	if s.releaser != nil {
		if c, ok := pkg.(UDPContext); ok { // wrapped by the UDP transport
			pkg = c.Pkg
		}
		s.releaser.ReleasePkg(pkg)
	}
}

// ---- dispatch -------------------------------------------------------------

// dispatch hands one package to OnMessage according to the mode.
func (s *session) dispatch(pkg any) error {
	s.readPkgs.Add(1)
	switch s.mode {
	case dispatchMailbox:
		if !s.mbox.Post(s.onMessage, pkg) {
			s.release(pkg)
		}
	case dispatchUnordered:
		if !s.ex.Execute(uint64(s.id), func() {
			if s.enter() {
				defer s.leave()
				s.runMessage(pkg)
			} else {
				s.release(pkg)
			}
		}) {
			s.release(pkg)
			s.closeWith(s.opError("dispatch", errors.New("getty: task pool closed")))
		}
	default:
		s.runMessage(pkg)
	}
	if s.closing.Load() { // the error lock only once the session is ending
		return s.endErr()
	}
	return nil
}

// runMessage calls OnMessage under recover and recycles the package.
func (s *session) runMessage(pkg any) {
	defer func() {
		s.release(pkg)
		if v := recover(); v != nil {
			s.closeWith(&PanicError{Callback: "OnMessage", Value: v, Stack: debug.Stack()})
		}
	}()
	s.listener.OnMessage(s, pkg)
}

// uncork flushes replies gathered during a mailbox drain.
func (s *session) uncork() { _ = s.uncorkErr() }

func (s *session) uncorkErr() error { return s.endBatch(true) }

// endBatch ends a dispatch batch; flush writes out the gathered replies.
func (s *session) endBatch(flush bool) error {
	if err := s.tr.uncork(s, flush); err != nil {
		err = s.opError("write", err)
		s.closeWith(err)
		return err
	}
	return nil
}

// ---- cron -----------------------------------------------------------------

// cronFire runs on the wheel goroutine: it re-arms and hands OnCron to the
// endpoint's cron runners, skipping a beat if the last OnCron is still busy.
func (s *session) cronFire() {
	if !s.armCron() {
		return
	}
	if !s.cronBusy.CompareAndSwap(false, true) {
		return
	}
	if s.ep == nil || !s.ep.crons.submit(s) {
		s.cronBusy.Store(false)
	}
}

// armCron (re)arms the cron timer unless the session is closing; the lock
// keeps a wheel callback from re-arming a timer that stopCron just stopped.
func (s *session) armCron() bool {
	s.cronMu.Lock()
	defer s.cronMu.Unlock()
	if s.closing.Load() {
		return false
	}
	s.cron.Reset(time.Duration(s.cronPeriod.Load()))
	return true
}

func (s *session) stopCron() {
	s.cronMu.Lock()
	s.cron.Stop()
	s.cronMu.Unlock()
}

// runCron runs on a cron runner.
func (s *session) runCron() {
	defer s.cronBusy.Store(false)
	if !s.enter() {
		return
	}
	defer s.leave()
	defer func() {
		if v := recover(); v != nil {
			s.closeWith(&PanicError{Callback: "OnCron", Value: v, Stack: debug.Stack()})
		}
	}()
	s.listener.OnCron(s)
}

// ---- writing --------------------------------------------------------------

func (s *session) WritePkg(pkg any, timeout time.Duration) (int, int, error) {
	if pkg == nil {
		return 0, 0, s.opError("write", errors.New("getty: nil package"))
	}
	if s.closing.Load() {
		return 0, 0, s.opError("write", ErrSessionClosed)
	}
	if s.writer == nil {
		return 0, 0, s.opError("write", ErrWriterNil)
	}
	peer, err := s.peerOf(pkg)
	if err != nil {
		return 0, 0, err
	}
	var (
		data []byte
		bp   *[]byte
	)
	if s.appender != nil {
		// Encode into a pooled scratch buffer (the transport copies or
		// writes it before send returns); one that append outgrew is left
		// to the collector and the scratch goes back.
		bp = bufpool.Get(4096)
		defer bufpool.Put(bp)
		data, err = s.encodeAppend((*bp)[:0], pkg)
	} else {
		data, err = s.encode(pkg)
	}
	if err != nil {
		return 0, 0, err
	}
	n, err := s.send(data, nil, peer, timeout)
	if err == nil {
		s.writePkgs.Add(1)
	}
	return len(data), n, err
}

func (s *session) encodeAppend(dst []byte, pkg any) (data []byte, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = s.panicked("Writer.Write", v)
		}
	}()
	data, err = s.appender.AppendPkg(s, dst, pkg)
	if err != nil {
		err = s.opError("encode", err)
	}
	return data, err
}

func (s *session) encode(pkg any) (data []byte, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = s.panicked("Writer.Write", v)
		}
	}()
	data, err = s.writer.Write(s, pkg)
	if err != nil {
		err = s.opError("encode", err)
	}
	return data, err
}

// panicked closes the session for a panic in a callback made on the
// caller's goroutine and returns the error for the caller.
func (s *session) panicked(callback string, v any) error {
	err := &PanicError{Callback: callback, Value: v, Stack: debug.Stack()}
	s.closeWith(err)
	return s.opError("encode", err)
}

// peerOf finds the UDP destination of a package; nil elsewhere.
func (s *session) peerOf(pkg any) (*net.UDPAddr, error) {
	if s.ep == nil || s.ep.typ != UDP_ENDPOINT {
		return nil, nil
	}
	var peer *net.UDPAddr
	switch c := pkg.(type) {
	case UDPContext:
		peer = c.PeerAddr
	case *UDPContext:
		if c != nil {
			peer = c.PeerAddr
		}
	}
	if peer == nil {
		if d, ok := s.tr.(interface{ defaultPeer() *net.UDPAddr }); ok {
			peer = d.defaultPeer()
		}
	}
	if peer == nil {
		return nil, s.opError("write", ErrNullPeerAddr)
	}
	return peer, nil
}

func (s *session) WriteBytes(b []byte) (int, error) {
	if s.closing.Load() {
		return 0, s.opError("write", ErrSessionClosed)
	}
	return s.send(b, nil, nil, 0)
}

func (s *session) WriteBytesArray(bs ...[]byte) (int, error) {
	if s.closing.Load() {
		return 0, s.opError("write", ErrSessionClosed)
	}
	if len(bs) == 0 {
		return 0, nil
	}
	return s.send(bs[0], bs[1:], nil, 0)
}

// writeRaw sends a UDPContext whose Pkg is raw bytes, for Send.
func (s *session) writeRaw(pkg any) (int, int, error) {
	peer, err := s.peerOf(pkg)
	if err != nil {
		return 0, 0, err
	}
	var inner any
	switch c := pkg.(type) {
	case UDPContext:
		inner = c.Pkg
	case *UDPContext:
		inner = c.Pkg
	}
	b, str, err := payloadOf(inner)
	if err != nil {
		return 0, 0, s.opError("send", err)
	}
	if str != "" {
		b = []byte(str)
	}
	n, err := s.send(b, nil, peer, 0)
	return len(b), n, err
}

// send hands encoded bytes to the transport with this call's deadline.
func (s *session) send(first []byte, more [][]byte, peer *net.UDPAddr, timeout time.Duration) (int, error) {
	if timeout <= 0 {
		timeout = time.Duration(s.writeTimeout.Load())
	}
	n, err := s.writeToTransport(first, more, peer, timeout)
	if n > 0 {
		s.writeBytes.Add(uint64(n))
	}
	if err != nil {
		if s.closing.Load() {
			return n, s.opError("write", fmt.Errorf("%w (%v)", ErrSessionClosed, err))
		}
		err = s.opError("write", err)
		if !errors.Is(err, errDatagram) {
			s.closeWith(err)
		}
	}
	return n, err
}

// writeToTransport calls the transport's write. A panic in it (a bug in
// getty or in a library it calls) comes back as an error, which closes the
// session in send, and never reaches the caller of WritePkg or WriteBytes.
func (s *session) writeToTransport(first []byte, more [][]byte, peer *net.UDPAddr, timeout time.Duration) (n int, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = internalFault("the transport's write", v)
		}
	}()
	return s.tr.write(s, first, more, peer, timeout)
}

// errDatagram marks write errors that spoil one datagram only, so the
// session stays open.
var errDatagram = errors.New("getty: datagram not sent")
