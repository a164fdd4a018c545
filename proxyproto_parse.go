package getty

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// The PROXY protocol (HAProxy's proxy-protocol.txt): a proxy that relays a
// connection writes one header before the client's first byte, naming the
// client (source) and the address it connected to (destination).
//
// Version 1 is one text line of at most 107 bytes, CRLF included:
//
//	PROXY TCP4 192.0.2.1 198.51.100.7 56324 443\r\n
//	PROXY UNKNOWN\r\n   (the proxy does not know; use the connection's own)
//
// Version 2 is binary: a 12-byte signature, a version/command byte, a
// family/transport byte, a 16-bit big-endian length, then that many bytes:
// the addresses (12 for IPv4, 36 for IPv6, 216 for Unix) and optional
// type-length-value extensions.

var (
	proxyV1Sig = []byte("PROXY ")
	proxyV2Sig = []byte("\r\n\r\n\x00\r\nQUIT\n")
)

const (
	// proxyV1Max is the spec's longest version 1 line, CRLF included.
	proxyV1Max = 107
	// proxyV2Fixed is the fixed part of a version 2 header.
	proxyV2Fixed = 16
	// proxyV2Max bounds a version 2 header. Its length field allows 64 KiB,
	// but the spec has the sender put the whole header in one segment (it
	// "is always smaller than an MSS"); 4 KiB leaves room for every
	// registered extension and refuses a header that is really a stream.
	proxyV2Max = 4096
)

// ProxyHeader is what a PROXY protocol header said about a connection; see
// ProxyHeaderOf.
type ProxyHeader struct {
	// Version is 1 (text) or 2 (binary).
	Version int
	// Local is set for a connection the proxy made on its own behalf (a
	// version 2 LOCAL command, a health check) and for a header that
	// carries no usable address (version 1 UNKNOWN, an unspecified or
	// datagram family): the session keeps the connection's own addresses.
	Local bool
	// Source is the client's address and Destination the address it
	// connected to: *net.TCPAddr, or *net.UnixAddr for a Unix socket
	// relayed by a version 2 header. Both nil when Local is set.
	Source, Destination net.Addr
	// TLVs are a version 2 header's extensions, in order (ALPN, authority,
	// TLS details, a cloud's endpoint ID, ...). Their values are copies the
	// caller may keep.
	TLVs []ProxyTLV
}

// ProxyTLV is one type-length-value extension of a version 2 header. Type
// 0x01 is ALPN, 0x02 the authority (SNI), 0x04 padding, 0x20 TLS details;
// see the specification for the rest.
type ProxyTLV struct {
	Type  byte
	Value []byte
}

// errProxyIncomplete is parseProxyHeader's "need more bytes".
var errProxyIncomplete = errors.New("incomplete")

// proxyKind tells what the first bytes of a connection are.
type proxyKind int

const (
	proxyUndecided proxyKind = iota // a prefix of a signature: need more bytes
	proxyNone                       // matches no signature
	proxyV1
	proxyV2
)

// classifyProxy decides from a connection's first bytes which version of
// the header, if any, they start; a version 1 signature needs 6 bytes, a
// version 2 one 12.
func classifyProxy(b []byte) proxyKind {
	for _, c := range [...]struct {
		sig  []byte
		kind proxyKind
	}{{proxyV1Sig, proxyV1}, {proxyV2Sig, proxyV2}} {
		n := min(len(b), len(c.sig))
		if !bytes.Equal(b[:n], c.sig[:n]) {
			continue
		}
		if n < len(c.sig) {
			return proxyUndecided
		}
		return c.kind
	}
	return proxyNone
}

// parseProxyHeader parses the header at the start of b. It returns the
// header and its length, errProxyIncomplete when b is a valid beginning
// that needs more bytes, or an error matching ErrProxyHeader. It never
// asks for more than the spec's limits.
func parseProxyHeader(b []byte) (*ProxyHeader, int, error) {
	switch classifyProxy(b) {
	case proxyUndecided:
		return nil, 0, errProxyIncomplete
	case proxyNone:
		return nil, 0, fmt.Errorf("%w: the connection starts with %q, not a PROXY protocol signature", ErrProxyHeaderMissing, shortPrefix(b))
	case proxyV1:
		i := bytes.IndexByte(b[:min(len(b), proxyV1Max)], '\n')
		if i < 0 {
			if len(b) >= proxyV1Max {
				return nil, 0, fmt.Errorf("%w: version 1 line longer than %d bytes", ErrProxyHeader, proxyV1Max)
			}
			return nil, 0, errProxyIncomplete
		}
		h, err := parseProxyV1(b[:i+1])
		return h, i + 1, err
	}
	if len(b) < proxyV2Fixed {
		return nil, 0, errProxyIncomplete
	}
	n := proxyV2Fixed + int(binary.BigEndian.Uint16(b[14:16]))
	if n > proxyV2Max {
		return nil, 0, fmt.Errorf("%w: version 2 header of %d bytes, over the limit of %d", ErrProxyHeader, n, proxyV2Max)
	}
	if len(b) < n {
		return nil, 0, errProxyIncomplete
	}
	h, err := parseProxyV2(b[:n])
	return h, n, err
}

func shortPrefix(b []byte) []byte {
	return b[:min(len(b), 16)]
}

// parseProxyV1 parses one complete version 1 line, "\r\n" included.
func parseProxyV1(line []byte) (*ProxyHeader, error) {
	bad := func(why string) error {
		return fmt.Errorf("%w: version 1 line %q: %s", ErrProxyHeader, line, why)
	}
	body, ok := bytes.CutSuffix(line, []byte("\r\n"))
	if !ok {
		return nil, bad("not ended by CRLF")
	}
	fields := strings.Split(string(body[len(proxyV1Sig):]), " ")
	switch fields[0] {
	case "UNKNOWN":
		// The rest of the line, whatever it holds, is to be ignored.
		return &ProxyHeader{Version: 1, Local: true}, nil
	case "TCP4", "TCP6":
	default:
		return nil, bad("unknown protocol " + strconv.Quote(fields[0]))
	}
	if len(fields) != 5 {
		return nil, bad("want protocol, two addresses and two ports separated by single spaces")
	}
	v4 := fields[0] == "TCP4"
	src, err1 := parseV1Addr(fields[1], fields[3], v4)
	dst, err2 := parseV1Addr(fields[2], fields[4], v4)
	if err := errors.Join(err1, err2); err != nil {
		return nil, bad(err.Error())
	}
	return &ProxyHeader{Version: 1, Source: src, Destination: dst}, nil
}

func parseV1Addr(ip, port string, v4 bool) (*net.TCPAddr, error) {
	a, err := netip.ParseAddr(ip)
	if err != nil || a.Zone() != "" || a.Is4() != v4 {
		return nil, fmt.Errorf("bad address %q", ip)
	}
	if port == "" || len(port) > 1 && port[0] == '0' {
		return nil, fmt.Errorf("bad port %q", port)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("bad port %q", port)
	}
	return net.TCPAddrFromAddrPort(netip.AddrPortFrom(a, uint16(p))), nil
}

// parseProxyV2 parses one complete version 2 header.
func parseProxyV2(b []byte) (*ProxyHeader, error) {
	verCmd, fam := b[12], b[13]
	if verCmd>>4 != 2 {
		return nil, fmt.Errorf("%w: version 2 signature with version nibble %d", ErrProxyHeader, verCmd>>4)
	}
	h := &ProxyHeader{Version: 2}
	rest := b[proxyV2Fixed:]
	var addrLen int
	switch verCmd & 0xf {
	case 0: // LOCAL: the proxy's own connection; the whole block is ignored
		h.Local = true
		return h, nil
	case 1: // PROXY
		switch fam {
		case 0x11: // TCP over IPv4
			addrLen = 12
		case 0x21: // TCP over IPv6
			addrLen = 36
		case 0x31: // Unix stream
			addrLen = 216
		case 0x00, 0x12, 0x22, 0x32: // unspecified, or datagrams: no usable address
			h.Local = true
			return h, nil
		default:
			return nil, fmt.Errorf("%w: version 2 address family/transport 0x%02x", ErrProxyHeader, fam)
		}
	default:
		return nil, fmt.Errorf("%w: version 2 command %d", ErrProxyHeader, verCmd&0xf)
	}
	if len(rest) < addrLen {
		return nil, fmt.Errorf("%w: version 2 length %d too short for family 0x%02x (needs %d)", ErrProxyHeader, len(rest), fam, addrLen)
	}
	a := rest[:addrLen]
	if addrLen == 216 {
		h.Source = &net.UnixAddr{Net: "unix", Name: cString(a[:108])}
		h.Destination = &net.UnixAddr{Net: "unix", Name: cString(a[108:])}
	} else {
		n := (addrLen - 4) / 2
		sip, _ := netip.AddrFromSlice(a[:n])
		dip, _ := netip.AddrFromSlice(a[n : 2*n])
		sp := binary.BigEndian.Uint16(a[2*n:])
		dp := binary.BigEndian.Uint16(a[2*n+2:])
		h.Source = net.TCPAddrFromAddrPort(netip.AddrPortFrom(sip, sp))
		h.Destination = net.TCPAddrFromAddrPort(netip.AddrPortFrom(dip, dp))
	}
	rest = rest[addrLen:]
	tlvs, err := parseTLVs(rest)
	if err != nil {
		return nil, err
	}
	h.TLVs = tlvs
	return h, nil
}

func parseTLVs(b []byte) ([]ProxyTLV, error) {
	var out []ProxyTLV
	for len(b) > 0 {
		if len(b) < 3 {
			return nil, fmt.Errorf("%w: version 2 extension truncated (%d bytes left)", ErrProxyHeader, len(b))
		}
		n := int(binary.BigEndian.Uint16(b[1:3]))
		if len(b) < 3+n {
			return nil, fmt.Errorf("%w: version 2 extension 0x%02x of %d bytes overruns the header", ErrProxyHeader, b[0], n)
		}
		out = append(out, ProxyTLV{Type: b[0], Value: bytes.Clone(b[3 : 3+n])})
		b = b[3+n:]
	}
	return out, nil
}

// cString returns the bytes before the first NUL, as a string.
func cString(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}
