package getty

import (
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

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
	// IsClosed reports whether the session is closed or closing: true from
	// the moment Close is called or the connection fails, before OnClose
	// has run. Writes fail with ErrSessionClosed from then on.
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
	// Default 60000; values <= 0 are ignored. Mind the unit:
	// SetCronPeriod(int(time.Second)) means 11.6 days, and a period over a
	// day is logged at WARN.
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

// defaultName is the name of a session without an endpoint.
var defaultName = defaultSessionName

// connID numbers connections process-wide, as upstream does.
var connID atomic.Uint32

// dispatch modes
const (
	dispatchInline    = iota // OnMessage on the reader goroutine
	dispatchMailbox          // per-session FIFO on an executor
	dispatchUnordered        // straight onto a gost pool
)

type session struct {
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

	readBytes  atomic.Uint64
	writeBytes atomic.Uint64
	readPkgs   atomic.Uint64
	writePkgs  atomic.Uint64
	active     atomic.Int64 // unix ns

	// mu guards rare and the cron schedule (cronNext, arming cron): each
	// is touched rarely, so one lock serves them all.
	mu   sync.Mutex
	rare *sessionRare // nil until a session sets what it holds

	// dispatch
	mq     *mailboxDispatch // the mailbox mode's state; nil otherwise
	gateMu sync.RWMutex

	// cron
	cron     *wheel.Timer
	cronNext int64    // the beat the timer is armed for (monoNow); under mu
	cronLink *session // next in the endpoint's cron queue; under its lock

	// Small fields together, so that padding does not cost a size class.
	id       uint32
	closing  atomic.Bool
	flags    sessionFlags
	gateShut bool  // under gateMu
	mode     uint8 // dispatch mode, set once before the first read
	packet   bool  // tr is a packetTransport (see packetTr)

	// read buffer and stream state, owned by the reader goroutine
	rbuf *[]byte
	rlen int
	rs   readState
}

// sessionRare is what few sessions set: attributes, the error that ends
// the session, a wait time of their own. Out of session, so that an idle
// session fits the 320-byte size class; under session.mu.
type sessionRare struct {
	attrs    map[any]any
	err      error         // the error that ends the session; nil for an orderly close
	waitTime time.Duration // 0: defaultWaitTime
}

// Session flags written once or rarely, in one word (sessionFlags).
const (
	flagCronBusy  uint32 = 1 << iota // an OnCron is queued or running
	flagOpened                       // OnOpen succeeded: OnClose is owed
	flagEnded                        // end ran: counted in the endpoint's totals
	flagUnhandled                    // BaseListener.OnError saw the ending error
	flagEndBegun                     // end has run or is running: it runs once
)

// sessionFlags packs five flags into one atomic word rather than an
// atomic.Bool (4 bytes) each. closing, read on every read and write, keeps
// a word of its own.
type sessionFlags struct{ v atomic.Uint32 }

func (f *sessionFlags) has(flag uint32) bool { return f.v.Load()&flag != 0 }

// set sets flag (on) or clears it, and reports whether it changed: set(x,
// true) is CompareAndSwap(false, true). A loop, since Go 1.22 has no
// atomic Or.
func (f *sessionFlags) set(flag uint32, on bool) bool {
	for {
		old := f.v.Load()
		v := old &^ flag
		if on {
			v |= flag
		}
		if v == old {
			return false
		}
		if f.v.CompareAndSwap(old, v) {
			return true
		}
	}
}

// mailboxDispatch is what a session dispatching through a mailbox (the
// ordered built-in or gost pool) needs; an inline or unordered session
// holds none of it.
type mailboxDispatch struct {
	mbox      *dispatch.Mailbox
	onMessage func(any) // method value made once, so Post allocates nothing
	onQueued  func(any) // runQueued, likewise
	// endDone is 1 until end, which the mailbox runs after the last
	// message, has finished; endReading waits for it. Without a mailbox,
	// end runs on the reader itself.
	endDone sync.WaitGroup
}

func newSession(ep *endpoint, tr transport) *session {
	s := &session{
		id: connID.Add(1),
		ep: ep,
		tr: tr,
	}
	_, s.packet = tr.(packetTransport)
	s.Reset()
	s.cron = wheel.Default().NewTimerFor((*cronTimer)(s))
	s.UpdateActive()
	return s
}

// packetTr returns the transport when its packages carry their peer (UDP),
// else nil. A flag and an assertion instead of a second interface field:
// 16 bytes less per session, for an assertion only on packet transports.
func (s *session) packetTr() packetTransport {
	if !s.packet {
		return nil
	}
	pt, _ := s.tr.(packetTransport)
	return pt
}

// ---- settings -------------------------------------------------------------

func (s *session) Reset() {
	// The default name is shared, not copied: one object fewer per session.
	if s.ep != nil {
		s.name.Store(&s.ep.sessionName)
	} else {
		s.name.Store(&defaultName)
	}
	s.maxMsgLen.Store(defaultMaxMsgLen)
	s.readTimeout.Store(int64(defaultReadTimeout))
	s.writeTimeout.Store(int64(defaultWriteTimeout))
	s.cronPeriod.Store(int64(defaultCronPeriod))
	s.mu.Lock()
	if s.rare != nil {
		s.rare.attrs, s.rare.waitTime = nil, 0
	}
	s.mu.Unlock()
}

// rareLocked returns s.rare, making it; under s.mu.
func (s *session) rareLocked() *sessionRare {
	if s.rare == nil {
		s.rare = new(sessionRare)
	}
	return s.rare
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
	s.checkCronPeriod(ms)
	d := time.Duration(ms) * time.Millisecond
	if s.cronPeriod.Swap(int64(d)) != int64(d) && s.flags.has(flagOpened) {
		s.armCron()
	}
}

func (s *session) SetWaitTime(d time.Duration) {
	if d > 0 {
		s.mu.Lock()
		s.rareLocked().waitTime = d
		s.mu.Unlock()
	}
}

// closeDeadline is when a close stops waiting to flush: the wait time
// from now.
func (s *session) closeDeadline() time.Time {
	d := defaultWaitTime
	s.mu.Lock()
	if s.rare != nil && s.rare.waitTime > 0 {
		d = s.rare.waitTime
	}
	s.mu.Unlock()
	return time.Now().Add(d)
}

func (s *session) GetAttribute(key any) any {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rare == nil {
		return nil
	}
	return s.rare.attrs[key]
}

func (s *session) SetAttribute(key, value any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.rareLocked()
	if r.attrs == nil {
		r.attrs = make(map[any]any)
	}
	r.attrs[key] = value
}

func (s *session) RemoveAttribute(key any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rare != nil {
		delete(s.rare.attrs, key)
	}
}

// ---- Connection -----------------------------------------------------------

func (s *session) ID() uint32 { return s.id }

func (s *session) SetCompressType(c CompressType) {
	if !s.tr.setCompress(c) {
		s.log(slog.LevelWarn, "getty: compression not supported on this transport", nil, slog.Int("compress_type", int(c)))
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

func (s *session) UpdateActive() { s.active.Store(time.Now().UnixNano()) }

// touch marks the session active now and returns now, for a transport
// that needs the time as well (messageSession).
func (s *session) touch() time.Time {
	now := time.Now()
	s.active.Store(now.UnixNano())
	return now
}
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
	return 0, s.opError(opSend, fmt.Errorf("getty: Send cannot write %T", pkg))
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
