package getty

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/getty-go/getty/internal/bufpool"
)

// UDPContext is a package with its peer: what OnMessage receives on a UDP
// endpoint or client, and what WritePkg takes on an endpoint to name the
// destination.
//
// On received packages PeerAddr comes from a small per-session cache so
// that a known peer costs no allocation: treat it as read-only.
type UDPContext struct {
	Pkg      any
	PeerAddr *net.UDPAddr
}

// String prints the package and the peer, as upstream.
func (c UDPContext) String() string {
	return fmt.Sprintf("{pkg:%#v, peer addr:%s}", c.Pkg, c.PeerAddr)
}

// udpTransport carries a session over a UDP socket: the unconnected socket
// of a UDP endpoint (one session for every peer) or the connected socket of
// a UDP client.
//
// Reading: one datagram per read into a pooled buffer the reader keeps
// while the session lives; a datagram is decoded whole. A datagram that
// is empty, truncated or longer than the max message length is dropped and
// counted without reaching the Reader. A Reader error or a broken Reader
// contract drops that datagram (counted) and the session carries on, unlike
// on a stream; a panic in the Reader still ends the session, as everywhere.
// The read timeout does not apply: a datagram arrives whole or not at all.
//
// Writing: one datagram per WritePkg, WriteBytes or WriteBytesArray (whose
// parts are concatenated). A failed write spoils that datagram only: the
// error wraps errDatagram, so the session stays open.
type udpTransport struct {
	c         *net.UDPConn
	connected bool // a client's socket: writes go to the dialled peer

	// last is the peer the latest datagram came from: where an endpoint's
	// WriteBytes, WriteBytesArray and WritePkg without a PeerAddr go.
	last atomic.Pointer[net.UDPAddr]

	// owned by the reader goroutine
	peers map[netip.AddrPort]*net.UDPAddr // peer address cache
	cur   *net.UDPAddr                    // the current datagram's peer

	wmu      sync.Mutex    // serializes write deadlines with their writes
	deadline writeDeadline // wmu held

	// drops counts datagrams dropped without reaching OnMessage; here
	// rather than in the session, which a TCP session would carry unused.
	drops atomic.Uint64
}

// maxPeerCache bounds the peer address cache; it is cleared when full.
const maxPeerCache = 1024

// maxDatagram is the largest UDP payload there is (65,535 minus headers);
// no read buffer needs more.
const maxDatagram = 64 << 10

// connectPing is what an upstream getty UDP client sends when it connects;
// an endpoint skips it, as upstream's does, so such clients keep working.
const connectPing = "connect-ping"

func newUDPTransport(c *net.UDPConn, connected bool) *udpTransport {
	return &udpTransport{c: c, connected: connected}
}

func (t *udpTransport) conn() net.Conn { return t.c }

// udpReadBufSize sizes the read buffer so that a datagram over maxLen is seen:
// where recvmsg reports MSG_TRUNC a buffer of maxLen is enough, elsewhere
// one spare byte shows it.
func udpReadBufSize(maxLen int) int {
	size := maxLen
	if msgTrunc == 0 {
		size++
	}
	return min(max(size, 1), maxDatagram)
}

func (t *udpTransport) readLoop(s sessionPort) error { return t.readDatagrams(s) }

// readDatagrams reads one datagram at a time into a buffer it keeps while
// the session lives, and hands each good one to the session whole.
func (t *udpTransport) readDatagrams(s messageSession) error {
	t.peers = make(map[netip.AddrPort]*net.UDPAddr)
	var bp *[]byte
	defer func() { bufpool.Put(bp) }()
	for {
		if s.ending() {
			return nil
		}
		maxLen := s.msgLimit()
		size := udpReadBufSize(maxLen)
		if bp == nil || len(*bp) < size || len(*bp) > 2*size && len(*bp) > 512 {
			bufpool.Put(bp)
			bp = bufpool.Get(size)
		}
		n, _, flags, ap, err := t.c.ReadMsgUDPAddrPort(*bp, nil)
		if err != nil {
			if s.ending() {
				return nil
			}
			if t.readErrorIsTransient(s, err) {
				continue
			}
			return s.readError(err)
		}
		if n == 0 || n > maxLen || flags&msgTrunc != 0 {
			t.drops.Add(1)
			if s.debugEnabled() {
				s.log(slog.LevelDebug, "getty: datagram dropped: empty, truncated or over the max message length", nil,
					slog.Int("bytes", n), slog.String("peer", ap.String()), slog.Int("max_msg_len", maxLen))
			}
			continue
		}
		data := (*bp)[:n]
		if !t.connected && n == len(connectPing) && string(data) == connectPing {
			continue
		}
		t.cur = t.peer(ap)
		s.UpdateActive()
		if err := s.handleMessage(data, false); err != nil {
			if s.ending() || errors.Is(err, ErrPanic) {
				return err
			}
			t.drops.Add(1)
			if s.debugEnabled() {
				s.log(slog.LevelDebug, "getty: datagram dropped", err, slog.String("peer", ap.String()))
			}
		}
	}
}

// readErrorIsTransient handles a read error that does not end the session:
// a truncated datagram (dropped), a deadline someone set on Conn(), or the
// ICMP echo of an earlier write.
func (t *udpTransport) readErrorIsTransient(s messageSession, err error) bool {
	switch {
	case isTruncErr(err):
		t.drops.Add(1)
	case isTimeout(err):
		// Someone set a read deadline on Conn(); datagrams do not need
		// one.
		_ = t.c.SetReadDeadline(time.Time{})
	case isUDPRefused(err):
		// ICMP port unreachable for an earlier write on a connected
		// socket: the peer may come (back) up, and the next datagrams may
		// get through. Keep the session.
		if s.debugEnabled() {
			s.log(slog.LevelDebug, "getty: ICMP port unreachable ignored", err)
		}
	default:
		return false
	}
	return true
}

// peer returns the *net.UDPAddr for ap, from the cache so that a known peer
// costs no allocation. The cached addresses are shared: treat
// UDPContext.PeerAddr as read-only.
func (t *udpTransport) peer(ap netip.AddrPort) *net.UDPAddr {
	ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	p, ok := t.peers[ap]
	if !ok {
		if len(t.peers) >= maxPeerCache {
			clear(t.peers)
		}
		p = net.UDPAddrFromAddrPort(ap)
		t.peers[ap] = p
	}
	if t.last.Load() != p {
		t.last.Store(p)
	}
	return p
}

func (t *udpTransport) dropped() uint64 { return t.drops.Load() }

// wrap makes what OnMessage receives, as upstream: the package with its
// peer.
func (t *udpTransport) wrap(pkg any) any { return UDPContext{Pkg: pkg, PeerAddr: t.cur} }

// unwrap gives back what wrap wrapped.
func (t *udpTransport) unwrap(pkg any) any {
	if c, ok := pkg.(UDPContext); ok {
		return c.Pkg
	}
	return pkg
}

// peerOf picks an endpoint's destination: the PeerAddr of a UDPContext,
// else the peer the latest datagram came from. A connected socket has its
// one peer: nil.
func (t *udpTransport) peerOf(pkg any) (net.Addr, error) {
	if t.connected {
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
		peer = t.last.Load()
	}
	if peer == nil {
		return nil, ErrNullPeerAddr
	}
	return peer, nil
}

func (t *udpTransport) write(first []byte, more [][]byte, timeout time.Duration) (int, error) {
	return t.writeTo(nil, first, more, timeout)
}

func (t *udpTransport) writeFramed(f framed, timeout time.Duration) (int, error) {
	return writeFramedCopy(t, f, timeout)
}

// writeTo sends one datagram: to peer (nil: the peer heard from last) on
// an endpoint's socket, to the dialled peer on a connected one.
func (t *udpTransport) writeTo(to net.Addr, first []byte, more [][]byte, timeout time.Duration) (int, error) {
	var ap netip.AddrPort
	if !t.connected {
		peer, _ := to.(*net.UDPAddr)
		if peer == nil {
			peer = t.last.Load()
		}
		if peer == nil {
			return 0, fmt.Errorf("%w: %w", errDatagram, ErrNullPeerAddr)
		}
		ap = peer.AddrPort()
		ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
		if !ap.Addr().IsValid() {
			return 0, fmt.Errorf("%w: invalid peer address %v", errDatagram, peer)
		}
	}
	b := first
	var bp *[]byte
	if len(more) > 0 {
		size := len(first)
		for _, m := range more {
			size += len(m)
		}
		bp = bufpool.Get(size)
		b = append((*bp)[:0], first...)
		for _, m := range more {
			b = append(b, m...)
		}
	}
	t.wmu.Lock()
	t.deadline.arm(t.c, timeout)
	var (
		n   int
		err error
	)
	if t.connected {
		n, err = t.c.Write(b)
	} else {
		n, _, err = t.c.WriteMsgUDPAddrPort(b, nil, ap)
	}
	t.wmu.Unlock()
	bufpool.Put(bp)
	if err != nil && !errors.Is(err, net.ErrClosed) {
		err = fmt.Errorf("%w: %w", errDatagram, err)
	}
	return n, err
}

func (t *udpTransport) cork()                            {}
func (t *udpTransport) uncork(bool, time.Duration) error { return nil }

// shutdown closes the socket: a datagram write is synchronous, so there is
// nothing to flush.
func (t *udpTransport) shutdown(time.Time, error) error {
	_ = t.c.Close()
	return nil
}

func (t *udpTransport) closeNow(int) { _ = t.c.Close() }

func (t *udpTransport) setCompress(c CompressType) bool { return c == CompressNone }
