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

// udpTransport carries a session over a UDP socket: the unconnected socket
// of a UDP endpoint (one session for every peer) or the connected socket of
// a UDP client.
//
// Reading: one datagram per read into a pooled buffer the reader keeps
// while the session lives; one datagram is one Reader call. A datagram that
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
	peers  map[netip.AddrPort]*net.UDPAddr // peer address cache
	cur    *net.UDPAddr                    // the current datagram's peer
	wrapFn func(any) any                   // t.wrap, made once

	wmu      sync.Mutex    // serializes write deadlines with their writes
	deadline writeDeadline // wmu held
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

func (t *udpTransport) readLoop(s *session) error {
	t.wrapFn = t.wrap
	t.peers = make(map[netip.AddrPort]*net.UDPAddr)
	var bp *[]byte
	defer func() { bufpool.Put(bp) }()
	for {
		if s.closing.Load() {
			return nil
		}
		maxLen := int(s.maxMsgLen.Load())
		size := udpReadBufSize(maxLen)
		if bp == nil || len(*bp) < size || len(*bp) > 2*size && len(*bp) > 512 {
			bufpool.Put(bp)
			bp = bufpool.Get(size)
		}
		n, _, flags, ap, err := t.c.ReadMsgUDPAddrPort(*bp, nil)
		if err != nil {
			if s.closing.Load() {
				return nil
			}
			if isTruncErr(err) {
				s.drops.Add(1)
				continue
			}
			if isTimeout(err) {
				// Someone set a read deadline on Conn(); datagrams do
				// not need one.
				_ = t.c.SetReadDeadline(time.Time{})
				continue
			}
			if isUDPRefused(err) {
				// ICMP port unreachable for an earlier write on a
				// connected socket: the peer may come (back) up, and
				// the next datagrams may get through. Keep the session.
				if s.ep.logEnabled(slog.LevelDebug) {
					s.log(slog.LevelDebug, "getty: ICMP port unreachable ignored", err)
				}
				continue
			}
			return s.readError(err)
		}
		if n == 0 || n > maxLen || flags&msgTrunc != 0 {
			s.drops.Add(1)
			if s.ep.logEnabled(slog.LevelDebug) {
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
		if err := s.handleMessage(data, t.wrapFn); err != nil {
			if s.closing.Load() || errors.Is(err, ErrPanic) {
				return err
			}
			s.drops.Add(1)
			if s.ep.logEnabled(slog.LevelDebug) {
				s.log(slog.LevelDebug, "getty: datagram dropped", err, slog.String("peer", ap.String()))
			}
		}
	}
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

// wrap makes what OnMessage receives, as upstream: the package with its
// peer.
func (t *udpTransport) wrap(pkg any) any { return UDPContext{Pkg: pkg, PeerAddr: t.cur} }

// defaultPeer is the endpoint's destination for writes that name none.
func (t *udpTransport) defaultPeer() *net.UDPAddr { return t.last.Load() }

func (t *udpTransport) write(_ *session, first []byte, more [][]byte, peer *net.UDPAddr, timeout time.Duration) (int, error) {
	var ap netip.AddrPort
	if !t.connected {
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

func (t *udpTransport) cork()                       {}
func (t *udpTransport) uncork(*session, bool) error { return nil }

// shutdown closes the socket: a datagram write is synchronous, so there is
// nothing to flush.
func (t *udpTransport) shutdown(time.Time) error {
	_ = t.c.Close()
	return nil
}

func (t *udpTransport) closeNow(int) { _ = t.c.Close() }

func (t *udpTransport) setCompress(c CompressType) bool { return c == CompressNone }
