package getty

import (
	"context"
	"fmt"
	"net"
)

// DialContextFunc opens a client's connections; see WithDialContext.
type DialContextFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// dialOptions are the client options of this file, embedded in
// ClientOptions.
type dialOptions struct {
	dialer DialContextFunc
}

// dialConn opens one connection within the dial timeout: with the user's
// dialer when there is one.
func (c *client) dialConn(ctx context.Context, network, addr string) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, c.opts.dialTimeout)
	defer cancel()
	if c.opts.dialer == nil {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
	conn, err := callDialer(c.opts.dialer, ctx, network, addr)
	switch {
	case err != nil:
		if conn != nil {
			conn.Close()
		}
		return nil, fmt.Errorf("getty: dial %s %s: %w", network, addr, err)
	case conn == nil:
		return nil, fmt.Errorf("getty: dial %s %s: the dialer returned neither a connection nor an error", network, addr)
	case ctx.Err() != nil:
		conn.Close()
		return nil, fmt.Errorf("getty: dial %s %s: the dialer returned after its context ended: %w", network, addr, context.Cause(ctx))
	}
	return conn, nil
}

// callDialer calls the user's dialer under recover: a panic is a failed
// dial (conn stays nil, since dial never returned).
func callDialer(dial DialContextFunc, ctx context.Context, network, addr string) (conn net.Conn, err error) {
	defer recoverAs("the dialer (WithDialContext)", &err)
	return dial(ctx, network, addr)
}
