package getty

import (
	"crypto/tls"
	"net"
	"sync"
)

// proxyListener gives a WebSocket server's HTTP server connections that
// read their PROXY header themselves. Accept does not wait for the
// header: the HTTP server asks a new connection for its RemoteAddr on the
// connection's own goroutine, and that first call reads it.
type proxyListener struct {
	net.Listener
	cfg *proxyConfig
	srv *server
	typ EndPointType
}

func (l *proxyListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &proxyConn{Conn: c, l: l, trusted: l.cfg.trusts(c.RemoteAddr())}, nil
}

// proxyConn is a WebSocket server's connection behind a PROXY header. A
// refused header closes it: the HTTP server's reads then fail and it
// drops the connection before any request or callback.
type proxyConn struct {
	net.Conn
	l       *proxyListener
	trusted bool

	once   sync.Once
	header *ProxyHeader
	err    error
}

// init reads the header once, from a trusted source only.
func (c *proxyConn) init() {
	c.once.Do(func() {
		if !c.trusted {
			return
		}
		pt := &proxyTransport{raw: c.Conn, cfg: c.l.cfg, timeout: c.l.srv.opts.handshakeTimeout, typ: c.l.typ}
		c.header, c.err = pt.readHeader()
		if c.err != nil {
			pt.refused(c.err)
			c.Conn.Close()
		}
	})
}

func (c *proxyConn) Read(p []byte) (int, error) {
	c.init()
	if c.err != nil {
		return 0, c.err
	}
	return c.Conn.Read(p)
}

// RemoteAddr is the client the proxy named, or the peer.
func (c *proxyConn) RemoteAddr() net.Addr {
	c.init()
	if c.header != nil && c.header.Source != nil {
		return c.header.Source
	}
	return c.Conn.RemoteAddr()
}

// wsProxyHeader finds the header under a WebSocket session's connection.
func wsProxyHeader(c net.Conn) *ProxyHeader {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	if pc, ok := c.(*proxyConn); ok {
		pc.init()
		return pc.header
	}
	return nil
}
