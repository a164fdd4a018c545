package getty

import (
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"time"
)

// NewTCPServer returns a TCP server (TLS when WithServerSslEnabled is
// given). RunEventLoop listens on WithLocalAddress and accepts in the
// background; a listen error is logged and closes the server, so prefer
// Serve, which returns it.
func NewTCPServer(opts ...ServerOption) Server {
	s := newServer(TCP_SERVER, "tcp-session", opts)
	s.serveLn = s.acceptLoop
	return s
}

// acceptLoop accepts until the listener closes, backing off on errors
// such as descriptor exhaustion (5 ms doubling to 1 s) instead of spinning.
func (s *server) acceptLoop(ln net.Listener, cb NewSessionCallback) error {
	var backoff time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if s.closed.Load() || errors.Is(err, net.ErrClosed) {
				return nil
			}
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.log(slog.LevelWarn, "getty: accept failed; retrying", slog.String("addr", ln.Addr().String()), slog.String(logKeyError, err.Error()), slog.Duration("retry_in", backoff))
			t := time.NewTimer(backoff)
			select {
			case <-t.C:
			case <-s.done:
				t.Stop()
				return nil
			}
			continue
		}
		backoff = 0
		if s.opts.maxConns > 0 && s.count() >= s.opts.maxConns {
			s.log(slog.LevelWarn, "getty: connection refused: WithServerMaxConnections reached", slog.String(logKeyRemoteAddr, c.RemoteAddr().String()), slog.Int("max_connections", s.opts.maxConns))
			c.Close()
			continue
		}
		s.startSession(s.withProxy(c, s.newStreamTransport(c)), cb)
	}
}

func (s *server) newStreamTransport(c net.Conn) transport {
	if s.tlsCfg != nil {
		t := newTCPTransport(tls.Server(c, s.tlsCfg))
		t.setTLSTimeout(s.opts.handshakeTimeout)
		return t
	}
	return newTCPTransport(c)
}
