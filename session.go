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
	pt   packetTransport // tr, when its packages carry their peer; else nil
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
	handling  atomic.Int32 // unordered dispatch: OnMessage calls running now (dispatch_unordered.go)
	onMessage func(any)    // method value made once, so Post allocates nothing
	onQueued  func(any)    // runQueued, likewise
	gateMu    sync.RWMutex
	gateShut  bool

	// cron
	cronMu   sync.Mutex
	cron     *wheel.Timer
	cronNext time.Time // the beat the timer is armed for; under cronMu
	cronBusy atomic.Bool
	cronLink *session // next in the endpoint's cron queue; under its lock

	// life cycle
	opened    atomic.Bool // OnOpen succeeded: OnClose is owed
	ended     atomic.Bool // end ran: counted in the endpoint's totals
	closing   atomic.Bool
	unhandled atomic.Bool // BaseListener.OnError saw the ending error
	errMu     sync.Mutex
	err       error          // the error that ends the session; nil for an orderly close
	endBegun  atomic.Bool    // end has run or is running: it runs once
	endDone   sync.WaitGroup // 1 until end has finished; no channel, one object fewer per session

	// read buffer and stream state, owned by the reader goroutine
	rbuf *[]byte
	rlen int
	rs   readState
}

func newSession(ep *endpoint, tr transport) *session {
	s := &session{
		id: connID.Add(1),
		ep: ep,
		tr: tr,
	}
	s.pt, _ = tr.(packetTransport)
	s.Reset()
	s.onMessage = s.runMessage
	s.onQueued = s.runQueued
	s.endDone.Add(1)
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
	s.checkCronPeriod(ms)
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
