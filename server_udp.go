package getty

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
)

// udpEndpoint is a server over one unconnected UDP socket, with one session
// for every peer, as upstream.
type udpEndpoint struct {
	*server

	umu   sync.Mutex
	pc    *net.UDPConn
	bound bool
}

var _ PacketServer = (*udpEndpoint)(nil)

// NewUDPEndPoint returns a UDP endpoint: one unconnected socket bound to
// WithLocalAddress ("127.0.0.1:0" picks a free port; Addr tells which)
// carrying one session for all peers. It also implements PacketServer.
//
// OnMessage receives a UDPContext{Pkg, PeerAddr}. Reply with
// WritePkg(UDPContext{Pkg: reply, PeerAddr: ctx.PeerAddr}, timeout): the
// Writer receives the whole UDPContext (the built-in codecs accept it), and
// the datagram goes to PeerAddr. Each write is one datagram. WritePkg without a PeerAddr, WriteBytes
// and WriteBytesArray go to the peer the last datagram came from (an error
// matching ErrNullPeerAddr before any came); Send(UDPContext{Pkg: []byte,
// PeerAddr}) sends raw bytes to PeerAddr. A failed write (no peer, or a
// socket error) spoils that datagram only: the session stays open.
//
// A datagram is decoded whole (see Reader). Bad datagrams (empty, truncated, longer
// than the max message length, or rejected by the Reader) are dropped and
// counted (SessionStats.Drops, EndpointStats.Drops) and the endpoint keeps serving; a panic in a
// callback still ends the session, as everywhere. The read timeout does not
// apply: a datagram arrives whole or not at all. The endpoint closes when its session ends: on Close, on a
// hard socket error, when the new-session callback or OnOpen refuses the
// session (logged; Serve returns the error), or when the session is closed.
// A datagram "connect-ping", which upstream getty clients send on
// connecting, is skipped.
func NewUDPEndPoint(opts ...ServerOption) Server {
	s := newServer(UDP_ENDPOINT, "udp-session", opts)
	u := &udpEndpoint{server: s}
	s.endpoint.self = u
	s.stopLn = u.closeSocket
	return u
}

// PacketConn returns the socket, or nil before RunEventLoop or Serve.
func (u *udpEndpoint) PacketConn() net.PacketConn {
	u.umu.Lock()
	defer u.umu.Unlock()
	if u.pc == nil {
		return nil
	}
	return u.pc
}

// Addr returns the bound address, or nil before RunEventLoop or Serve.
func (u *udpEndpoint) Addr() net.Addr {
	if pc := u.PacketConn(); pc != nil {
		return pc.LocalAddr()
	}
	return nil
}

// bind opens the socket once and counts the caller in loops, under umu so
// that Close (whose stopLn takes umu) either sees the socket or stops bind.
func (u *udpEndpoint) bind() (*net.UDPConn, error) {
	u.umu.Lock()
	defer u.umu.Unlock()
	if u.closed.Load() {
		return nil, ErrServerClosed
	}
	if u.bound {
		return nil, errors.New("getty: UDP endpoint already running")
	}
	if err := u.checkPacketOptions(); err != nil { // listen.go
		return nil, err
	}
	pc, err := net.ListenPacket("udp", listenAddr(u.opts.addr))
	if err != nil {
		return nil, fmt.Errorf("getty: listen: %w", err)
	}
	uc, ok := pc.(*net.UDPConn)
	if !ok {
		pc.Close()
		return nil, fmt.Errorf("getty: listen: unexpected %T", pc)
	}
	u.pc, u.bound = uc, true
	u.loops.Add(1)
	return uc, nil
}

// closeSocket is the server's stopLn: Close and Shutdown close the socket.
func (u *udpEndpoint) closeSocket() {
	u.umu.Lock()
	pc := u.pc
	u.umu.Unlock()
	if pc != nil {
		_ = pc.Close()
	}
}

// RunEventLoop binds the socket and runs the session on its own goroutine.
// A bind error is logged and closes the endpoint; prefer Serve, which
// returns it.
func (u *udpEndpoint) RunEventLoop(newSession NewSessionCallback) {
	pc, err := u.bind()
	if err != nil {
		u.log(slog.LevelError, "getty: UDP endpoint cannot bind (Serve returns this error)", slog.String("addr", u.opts.addr), slog.String(logKeyError, err.Error()))
		if !u.isRunning() {
			u.mu.Lock()
			u.serveErr = err
			u.mu.Unlock()
			u.Close()
		}
		return
	}
	go func() {
		defer u.loops.Done()
		_ = u.run(pc, newSession)
	}()
}

func (u *udpEndpoint) isRunning() bool {
	u.umu.Lock()
	defer u.umu.Unlock()
	return u.bound
}

// Serve binds the socket and runs the session on the calling goroutine
// until the endpoint closes. It returns ErrServerClosed after Close or
// Shutdown, and otherwise the error that ended the session: the bind
// error, the new-session callback's error, an OnOpen refusal or a socket
// error.
func (u *udpEndpoint) Serve(newSession NewSessionCallback) error {
	pc, err := u.bind()
	if err != nil {
		return err
	}
	defer u.loops.Done()
	return u.run(pc, newSession)
}

// run serves the endpoint's one session; when it ends, the endpoint
// closes (without waiting for itself, since Close waits for run).
func (u *udpEndpoint) run(pc *net.UDPConn, cb NewSessionCallback) error {
	var cbErr error
	guarded := func(s Session) error {
		cbErr = callNewSession(cb, s)
		return cbErr
	}
	s := u.serveSession(newUDPTransport(pc, false), guarded)
	if u.closed.Load() {
		return ErrServerClosed
	}
	var err error
	switch {
	case cbErr != nil:
		err = fmt.Errorf("getty: %s %s: new-session callback: %w", u.typ, pc.LocalAddr(), cbErr)
	case !s.flags.has(flagOpened) && s.reader == nil:
		err = fmt.Errorf("getty: %s %s: %w", u.typ, pc.LocalAddr(), ErrNoCodec)
	case !s.flags.has(flagOpened):
		err = fmt.Errorf("getty: %s %s: OnOpen refused the session", u.typ, pc.LocalAddr())
	default:
		err = s.endErr()
	}
	if err != nil {
		u.log(slog.LevelError, "getty: UDP session ended; closing the endpoint", slog.String(logKeyError, err.Error()))
	} else {
		u.log(slog.LevelInfo, "getty: UDP session closed; closing the endpoint", slog.String("addr", pc.LocalAddr().String()))
		err = ErrServerClosed
	}
	u.mu.Lock()
	if u.serveErr == nil {
		u.serveErr = err
	}
	u.mu.Unlock()
	u.stopListening()
	u.closeAndWait(nil)
	return err
}
