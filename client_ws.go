package getty

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/gorilla/websocket"
)

// NewWSClient returns a WebSocket client of WithServerAddress
// ("ws://host:port/path"; a bare "host:port" means ws://host:port/). Each
// dial, upgrade included, is bounded by WithDialTimeout. Sessions decode
// whole messages and write one binary message per WritePkg, as on the
// server.
func NewWSClient(opts ...ClientOption) Client {
	c := newClient(WS_CLIENT, "ws-session", opts)
	c.dial = c.dialWS
	return c
}

// NewWSSClient returns a WebSocket client over TLS ("wss://host:port/path").
// The server is verified against WithRootCertificateFile (PEM), or the
// system roots without it. A TlsConfigBuilder given with
// WithClientTlsConfigBuilder supplies the base configuration, a client
// certificate for servers that require one in particular.
func NewWSSClient(opts ...ClientOption) Client {
	c := newClient(WSS_CLIENT, "wss-session", opts)
	c.dial = c.dialWS
	return c
}

// wsURL returns the server URL, adding the endpoint's scheme to a bare
// address.
func (c *client) wsURL() (*url.URL, error) {
	addr := c.opts.addr
	if addr == "" {
		return nil, errors.New("getty: websocket client without a server address")
	}
	if !strings.Contains(addr, "://") {
		scheme := "ws://"
		if c.typ == WSS_CLIENT {
			scheme = "wss://"
		}
		addr = scheme + addr
	}
	u, err := url.Parse(addr)
	if err != nil {
		return nil, fmt.Errorf("getty: websocket server address: %w", err)
	}
	if u.Scheme != "ws" && u.Scheme != "wss" {
		return nil, fmt.Errorf("getty: websocket server address %q: scheme must be ws or wss", c.opts.addr)
	}
	if u.Path == "" {
		u.Path = "/"
	}
	return u, nil
}

// wsTLSConfig is the WSS client configuration: the builder's, or TLS 1.2 or
// later with system roots, and WithRootCertificateFile as the roots.
func (c *client) wsTLSConfig() (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if b := c.opts.tlsConfigBuilder; b != nil {
		bc, err := buildTLSConfig(b)
		if err != nil {
			return nil, fmt.Errorf("getty: client tls config: %w", err)
		}
		cfg = bc.Clone()
	}
	if c.opts.cert != "" {
		pool, err := loadCertPool(c.opts.cert)
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = pool
	}
	// HTTP/1.1 only: a WebSocket upgrade cannot ride HTTP/2.
	cfg.NextProtos = nil
	return cfg, nil
}

func (c *client) dialWS(ctx context.Context) (transport, error) {
	u, err := c.wsURL()
	if err != nil {
		return nil, asConfigError(err)
	}
	d := websocket.Dialer{
		HandshakeTimeout:  c.opts.dialTimeout,
		WriteBufferSize:   wsWriteBufferSize,
		WriteBufferPool:   &wsWriteBuffers,
		EnableCompression: true,
	}
	// Frames are read through a wsNetConn (connection_ws_frames.go), so
	// getty dials, and over TLS handshakes, itself.
	d.NetDialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := c.dialConn(ctx, network, addr) // dial.go
		if err != nil {
			return nil, err
		}
		return newWSNetConn(conn, true), nil
	}
	if u.Scheme == "wss" {
		cfg, err := c.wsTLSConfig()
		if err != nil {
			return nil, asConfigError(err)
		}
		if cfg.ServerName == "" {
			cfg.ServerName = u.Hostname()
		}
		d.NetDialTLSContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			conn, err := c.dialConn(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			tc := tls.Client(conn, cfg)
			if err := tc.HandshakeContext(ctx); err != nil {
				conn.Close()
				return nil, err
			}
			return newWSNetConn(tc, true), nil
		}
	}
	ws, resp, err := d.DialContext(ctx, u.String(), nil)
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("getty: websocket dial %s: %w (HTTP %s)", u, err, resp.Status)
		}
		return nil, fmt.Errorf("getty: websocket dial %s: %w", u, err)
	}
	return newWSTransport(ws, acceptsDeflate(resp.Header)), nil
}

// acceptsDeflate reports whether the server's upgrade response negotiated
// permessage-deflate.
func acceptsDeflate(h http.Header) bool { return offersDeflate(h) }
