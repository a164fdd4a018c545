package getty

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
)

// NewTCPClient returns a client of a TCP server (TLS when
// WithClientSslEnabled is given). A missing address does not panic: dials
// fail and are retried, and RunEventLoopContext reports the error.
func NewTCPClient(opts ...ClientOption) Client {
	c := newClient(TCP_CLIENT, "tcp-session", opts)
	c.dial = c.dialTCP
	return c
}

func (c *client) dialTCP(ctx context.Context) (transport, error) {
	network, addr := splitNetwork(c.opts.addr)
	conn, err := c.dialConn(ctx, network, addr) // dial.go
	if err != nil {
		return nil, err
	}
	if !c.opts.sslEnabled {
		return newTCPTransport(conn), nil
	}
	cfg, err := c.clientTLSConfig()
	if err != nil {
		conn.Close()
		return nil, asConfigError(err)
	}
	// Handshake here, so a rejected certificate is a dial error the slot
	// reports (lastErr, ErrReconnectGaveUp) rather than a silent refusal.
	tc := tls.Client(conn, cfg)
	hctx, cancel := context.WithTimeout(ctx, c.opts.dialTimeout)
	err = tc.HandshakeContext(hctx)
	cancel()
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("getty: tls handshake with %s: %w", c.opts.addr, err)
	}
	t := newTCPTransport(tc)
	t.setTLSTimeout(c.opts.dialTimeout)
	return t, nil
}

func (c *client) clientTLSConfig() (*tls.Config, error) {
	cfg, err := requiredTLSConfig(c.opts.tlsConfigBuilder, "client")
	if err != nil {
		return nil, err
	}
	if cfg.ServerName == "" {
		host, _, _ := net.SplitHostPort(c.opts.addr)
		cfg = cfg.Clone()
		cfg.ServerName = host
	}
	return cfg, nil
}
