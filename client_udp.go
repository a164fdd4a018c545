package getty

import (
	"context"
	"fmt"
	"net"
)

// NewUDPClient returns a client of a UDP server: each of its
// WithConnectionNumber sessions is a UDP socket connected to
// WithServerAddress. Nothing is sent before the first write (upstream sent
// a "connect-ping" datagram, which non-getty peers see as garbage).
//
// A datagram is decoded whole (see Reader), and OnMessage receives a
// UDPContext{Pkg, PeerAddr} as upstream. Bad datagrams are dropped and
// counted (EndpointStatsOf(client).Drops). The ICMP "port unreachable"
// that a connected socket reports as "connection refused" when nobody
// listens is ignored: the session stays open, so a server that comes up
// later is reached without a reconnect. A session ends only on Close or a
// hard socket error, and is then redialled like a TCP one.
func NewUDPClient(opts ...ClientOption) Client {
	c := newClient(UDP_CLIENT, "udp-session", opts)
	c.dial = c.dialUDP
	return c
}

// dialUDP opens a UDP socket connected to the server address.
func (c *client) dialUDP(ctx context.Context) (transport, error) {
	conn, err := c.dialConn(ctx, "udp", c.opts.addr) // dial.go
	if err != nil {
		return nil, err
	}
	uc, ok := conn.(*net.UDPConn)
	if !ok {
		conn.Close()
		return nil, fmt.Errorf("getty: dial udp: unexpected %T", conn)
	}
	return newUDPTransport(uc, true), nil
}
