package getty

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync/atomic"
	"time"
)

// Errors of the PROXY protocol (see ProxyProtocol). Every refusal matches
// ErrProxyHeader; the other two name the common causes.
var (
	// ErrProxyHeader reports a connection refused for its PROXY protocol
	// header: malformed, truncated, over the size limit, not complete
	// within the handshake timeout, missing or from an untrusted source.
	ErrProxyHeader = errors.New("getty: bad PROXY protocol header")

	// ErrProxyHeaderMissing reports a connection from a trusted proxy
	// whose first bytes are not a PROXY protocol signature (see
	// ProxyProtocol.Optional). It matches ErrProxyHeader too.
	ErrProxyHeaderMissing = fmt.Errorf("%w: none sent", ErrProxyHeader)

	// ErrProxyHeaderUntrusted reports a PROXY protocol header sent from an
	// address outside ProxyProtocol.Trusted: a client forging its address.
	// It matches ErrProxyHeader too.
	ErrProxyHeaderUntrusted = fmt.Errorf("%w: sent from an untrusted address", ErrProxyHeader)
)

// ProxyProtocol configures a stream server (TCP, TLS, Unix socket,
// WebSocket) behind a load balancer that speaks the PROXY protocol,
// versions 1 and 2 (HAProxy's send-proxy and send-proxy-v2, AWS NLB, GCP,
// Envoy, nginx). See WithProxyProtocol.
type ProxyProtocol struct {
	// Trusted lists the proxies allowed to name the client: networks in
	// CIDR form ("10.0.0.0/8", "fd00::/8") or single addresses
	// ("127.0.0.1"); "unix" trusts every peer of a Unix socket. Required: a
	// server with an empty or unparsable list refuses to start.
	Trusted []string
	// Optional lets a trusted proxy connect without a header; the session
	// then keeps the connection's own addresses. Default false: such a
	// connection is refused with ErrProxyHeaderMissing, as the spec asks
	// (a receiver must not guess whether a header is present). Optional
	// needs to peek at the socket, which getty does on Unix systems only;
	// elsewhere a server with Optional set refuses to start.
	Optional bool
	// OnRefused, when set, is told about each connection refused because
	// of its header (or lack of one), with an error matching
	// ErrProxyHeader. It runs on that connection's goroutine, so it may be
	// called concurrently; keep it short. Refusals are also logged at WARN.
	OnRefused func(remote net.Addr, err error)
}

// ProxyHeaderOf returns the PROXY protocol header a session's connection
// started with; ok is false for a session without one (no
// WithProxyProtocol, an untrusted source, Optional and none sent) and for a
// Session getty did not make. It is safe for concurrent use.
func ProxyHeaderOf(s Session) (h *ProxyHeader, ok bool) {
	ss, ok := s.(*session)
	if !ok {
		return nil, false
	}
	if pt, ok := ss.tr.(*proxyTransport); ok {
		h = pt.header.Load()
	} else {
		h = wsProxyHeader(ss.tr.conn())
	}
	return h, h != nil
}

// proxyConfig is a ProxyProtocol checked and compiled at listen time.
type proxyConfig struct {
	trusted   []netip.Prefix
	trustUnix bool
	optional  bool
	onRefused func(net.Addr, error)
}

func compileProxy(p *ProxyProtocol) (*proxyConfig, error) {
	if len(p.Trusted) == 0 {
		return nil, fmt.Errorf("getty: WithProxyProtocol without Trusted networks: a header would be accepted from nobody")
	}
	if p.Optional && !peekSupported {
		return nil, fmt.Errorf("getty: WithProxyProtocol: Optional is not supported on this system")
	}
	c := &proxyConfig{optional: p.Optional, onRefused: p.OnRefused}
	for _, t := range p.Trusted {
		t = strings.TrimSpace(t)
		if t == "unix" {
			c.trustUnix = true
			continue
		}
		pfx, err := netip.ParsePrefix(t)
		if err != nil {
			a, aerr := netip.ParseAddr(t)
			if aerr != nil {
				return nil, fmt.Errorf("getty: WithProxyProtocol: trusted network %q: want a CIDR (10.0.0.0/8), an address or \"unix\"", t)
			}
			pfx = netip.PrefixFrom(a, a.BitLen())
		}
		c.trusted = append(c.trusted, pfx.Masked())
	}
	return c, nil
}

// trusts reports whether a connection from remote may send a header.
func (c *proxyConfig) trusts(remote net.Addr) bool {
	switch a := remote.(type) {
	case *net.TCPAddr:
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok {
			return false
		}
		ip = ip.Unmap()
		for _, p := range c.trusted {
			if p.Contains(ip) || ip.Is4() && p.Addr().Is4In6() && p.Contains(netip.AddrFrom16(ip.As16())) {
				return true
			}
		}
	case *net.UnixAddr:
		return c.trustUnix
	}
	return false
}

// proxyTransport is a stream transport whose connection starts with a
// PROXY header. It reads the header in the handshake step (on the
// session's goroutine, before TLS and every callback) and then is the
// stream transport it wraps.
type proxyTransport struct {
	*tcpTransport
	raw     net.Conn // the accepted socket, under any TLS
	cfg     *proxyConfig
	timeout time.Duration
	typ     EndPointType
	ep      *endpoint // for the log
	// untrusted: no header is read; the first read is checked for a
	// forged one.
	untrusted bool
	header    atomic.Pointer[ProxyHeader]
}

// withProxy wraps a server's new stream transport when the server reads
// PROXY headers.
func (s *server) withProxy(c net.Conn, tr transport) transport {
	tt, ok := tr.(*tcpTransport)
	cfg := s.opts.proxyCfg
	if cfg == nil || !ok {
		return tr
	}
	return &proxyTransport{
		tcpTransport: tt,
		raw:          c,
		cfg:          cfg,
		timeout:      s.opts.handshakeTimeout,
		typ:          s.typ,
		ep:           s.endpoint,
		untrusted:    !cfg.trusts(c.RemoteAddr()),
	}
}

// remoteAddrOf is the address Session.RemoteAddr shows: the client a
// trusted proxy named, else the connection's peer.
func remoteAddrOf(tr transport) net.Addr {
	if pt, ok := tr.(*proxyTransport); ok {
		if h := pt.header.Load(); h != nil && h.Source != nil {
			return h.Source
		}
	}
	return tr.conn().RemoteAddr()
}

func (p *proxyTransport) handshake() error {
	if !p.untrusted {
		h, err := p.readHeader()
		if err != nil {
			p.refused(err)
			return err
		}
		if h != nil {
			p.header.Store(h)
		}
	}
	return p.tcpTransport.handshake()
}

// refused reports a refusal to OnRefused and the log.
func (p *proxyTransport) refused(err error) {
	remote := p.raw.RemoteAddr()
	p.ep.log(slog.LevelWarn, "getty: connection refused: PROXY protocol", slog.String(logKeyRemoteAddr, remote.String()), slog.String(logKeyError, err.Error()))
	if f := p.cfg.onRefused; f != nil {
		if perr := protect("ProxyProtocol.OnRefused", func() { f(remote, err) }); perr != nil {
			p.ep.log(slog.LevelError, "getty: panic in ProxyProtocol.OnRefused", errAttrs(perr)...)
		}
	}
}

// readHeader reads the header, bounded by the handshake timeout; nil
// without error means Optional and none sent.
func (p *proxyTransport) readHeader() (*ProxyHeader, error) {
	if err := p.raw.SetReadDeadline(time.Now().Add(p.timeout)); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrProxyHeader, err)
	}
	var (
		h   *ProxyHeader
		err error
	)
	if peekSupported {
		h, err = readProxyPeek(p.raw, p.cfg.optional)
	} else {
		h, err = readProxyExact(p.raw)
	}
	if err == nil {
		err = p.raw.SetReadDeadline(time.Time{})
	}
	return h, err
}

// readFailed turns a read error in the middle of a header into one that
// matches ErrProxyHeader and keeps the cause (io.ErrUnexpectedEOF,
// os.ErrDeadlineExceeded).
func readFailed(got int, err error) error {
	switch {
	case errors.Is(err, io.EOF) && got == 0:
		return fmt.Errorf("%w: the connection closed before sending anything", ErrProxyHeaderMissing)
	case errors.Is(err, io.EOF):
		err = io.ErrUnexpectedEOF
	case errors.Is(err, os.ErrDeadlineExceeded):
		return fmt.Errorf("%w: not complete within the handshake timeout (%d bytes read): %w", ErrProxyHeader, got, os.ErrDeadlineExceeded)
	}
	return fmt.Errorf("%w: truncated after %d bytes: %w", ErrProxyHeader, got, err)
}

// readProxyPeek reads exactly the header's bytes, looking at what arrived
// without consuming it where it must, so that nothing after the header is
// taken from the stream (the raw reader and TLS read the socket directly).
// With optional, a connection that starts with anything else is left
// untouched.
func readProxyPeek(c net.Conn, optional bool) (*ProxyHeader, error) {
	var buf [proxyV1Max]byte
	// Look until the first bytes decide the version (or that there is no
	// header), then take the header in as few reads as it allows. n bytes
	// are consumed into buf, seen more are waiting after them.
	n, seen := 0, 0
	for {
		m, err := peekConn(c, buf[n:proxyV2Fixed], seen)
		if err != nil {
			return nil, readFailed(n+seen, err)
		}
		seen = m
		switch classifyProxy(buf[:n+seen]) {
		case proxyNone:
			if optional {
				return nil, nil
			}
			_, _, err := parseProxyHeader(buf[:n+seen])
			return nil, err
		case proxyV1:
			return readProxyV1(c, buf[:], n)
		case proxyV2:
			if n+seen == proxyV2Fixed {
				return readProxyV2Rest(c, buf[:proxyV2Fixed], n)
			}
		}
		// A signature still incomplete. Unless the header is optional these
		// bytes are the header's or the connection is refused, so take them:
		// then a peer that closes now is seen at once, not at the timeout.
		// Fewer than 16 bytes never reach past a header: the shortest one,
		// "PROXY UNKNOWN\r\n", has 15, and a version 1 line is decided (and
		// read up to its line feed) after 6.
		if !optional {
			if got, err := io.ReadFull(c, buf[n:n+seen]); err != nil {
				return nil, readFailed(n+got, err)
			}
			n, seen = n+seen, 0
		}
	}
}

// readProxyV2Rest reads a version 2 header whose fixed part is in fixed:
// its first n bytes consumed, the rest peeked.
func readProxyV2Rest(c net.Conn, fixed []byte, n int) (*ProxyHeader, error) {
	if _, _, err := parseProxyHeader(fixed); err != nil && err != errProxyIncomplete {
		return nil, err // over the size limit
	}
	total := proxyV2Fixed + (int(fixed[14])<<8 | int(fixed[15]))
	b := make([]byte, total)
	copy(b, fixed[:n])
	if got, err := io.ReadFull(c, b[n:]); err != nil {
		return nil, readFailed(n+got, err)
	}
	h, _, err := parseProxyHeader(b)
	return h, err
}

// readProxyV1 reads a version 1 line whose first n bytes are consumed into
// buf: it peeks at what arrived, consumes up to the line feed, and repeats
// while the line is not complete.
func readProxyV1(c net.Conn, buf []byte, n int) (*ProxyHeader, error) {
	for {
		m, err := peekConn(c, buf[n:proxyV1Max], 0)
		if err != nil {
			return nil, readFailed(n, err)
		}
		take := m
		if i := bytes.IndexByte(buf[n:n+m], '\n'); i >= 0 {
			take = i + 1
		}
		if got, err := io.ReadFull(c, buf[n:n+take]); err != nil {
			return nil, readFailed(n+got, err)
		}
		n += take
		h, _, err := parseProxyHeader(buf[:n])
		if err != errProxyIncomplete {
			return h, err
		}
	}
}

// readProxyExact reads a header without peeking: never past its end, so
// version 1 lines are read a byte at a time after the signature.
func readProxyExact(c net.Conn) (*ProxyHeader, error) {
	var buf [proxyV1Max]byte
	n := len(proxyV1Sig)
	if got, err := io.ReadFull(c, buf[:n]); err != nil {
		return nil, readFailed(got, err)
	}
	for {
		h, _, err := parseProxyHeader(buf[:n])
		if err != errProxyIncomplete {
			return h, err
		}
		if classifyProxy(buf[:n]) != proxyV1 {
			// Version 2: the rest of the fixed part, then its length.
			if got, err := io.ReadFull(c, buf[n:proxyV2Fixed]); err != nil {
				return nil, readFailed(n+got, err)
			}
			if _, _, err := parseProxyHeader(buf[:proxyV2Fixed]); err != errProxyIncomplete {
				return nil, err
			}
			total := proxyV2Fixed + (int(buf[14])<<8 | int(buf[15]))
			b := make([]byte, total)
			copy(b, buf[:proxyV2Fixed])
			if got, err := io.ReadFull(c, b[proxyV2Fixed:]); err != nil {
				return nil, readFailed(proxyV2Fixed+got, err)
			}
			h, _, err := parseProxyHeader(b)
			return h, err
		}
		if _, err := io.ReadFull(c, buf[n:n+1]); err != nil {
			return nil, readFailed(n, err)
		}
		n++
	}
}

// readLoop checks an untrusted connection's first read for a forged
// header; other connections read as the wrapped transport does.
func (p *proxyTransport) readLoop(s sessionPort) error {
	if p.untrusted {
		return s.readStream(p)
	}
	return p.tcpTransport.readLoop(s)
}

// readFresh is the wrapped transport's, except that an untrusted
// connection's first read must not start with a PROXY signature. It is a
// courtesy check that turns a forged header into a clear error: the
// address is never taken from an untrusted source either way.
func (p *proxyTransport) readFresh(size int) (*[]byte, int, error) {
	bp, n, err := p.tcpTransport.readFresh(size)
	if !p.untrusted || n == 0 {
		return bp, n, err
	}
	p.untrusted = false // checked once: later reads go straight through
	b := (*bp)[:n]
	if k := classifyProxy(b); k == proxyV1 || k == proxyV2 {
		ferr := fmt.Errorf("%w: %q from %s", ErrProxyHeaderUntrusted, shortPrefix(b), p.raw.RemoteAddr())
		p.refused(ferr)
		return bp, 0, ferr
	}
	return bp, n, err
}
