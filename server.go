package getty

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"
)

// Server is a listening endpoint. Beyond upstream's EndPoint it offers
// Serve, which reports a listen error, and Shutdown for a graceful stop.
type Server interface {
	EndPoint
	// Serve listens and serves on the calling goroutine until the server
	// is closed; it returns the listen or accept error that stopped it, or
	// ErrServerClosed after Close or Shutdown.
	Serve(newSession NewSessionCallback) error
	// Shutdown stops accepting, closes every session gracefully (accepted
	// writes are flushed, queued messages still reach OnMessage) and waits
	// until they are gone or ctx ends; then it returns ctx.Err(), with the
	// sessions closed but their callbacks possibly still running.
	Shutdown(ctx context.Context) error
	// Addr returns the address the server listens on, or nil before it
	// listens.
	Addr() net.Addr
}

// StreamServer is a server over a stream listener (TCP, TLS, WebSocket).
type StreamServer interface {
	Server
	// Listener returns the listener, or nil before RunEventLoop.
	Listener() net.Listener
}

// PacketServer is a server over a packet socket (UDP).
type PacketServer interface {
	Server
	// PacketConn returns the socket, or nil before RunEventLoop.
	PacketConn() net.PacketConn
}

type server struct {
	*endpoint
	opts ServerOptions

	mu       sync.Mutex
	ln       net.Listener
	serveErr error
	loops    sync.WaitGroup // accept loop (or HTTP server) goroutines
	// serveLn runs the accept loop of the transport (TCP here, HTTP for
	// WebSocket); it returns when the listener closes.
	serveLn func(ln net.Listener, cb NewSessionCallback) error
	// stopLn stops what serveLn started, beyond closing the listener.
	stopLn func()
	tlsCfg *tls.Config
}

func newServer(typ EndPointType, name string, opts []ServerOption) *server {
	s := &server{}
	for _, opt := range opts {
		if opt != nil {
			opt(&s.opts)
		}
	}
	if s.opts.handshakeTimeout <= 0 {
		s.opts.handshakeTimeout = 5 * time.Second
	}
	if s.opts.mailboxSize <= 0 {
		s.opts.mailboxSize = 64
	}
	s.endpoint = newEndpoint(s, typ, name, dispatchConfig{
		tPool:       s.opts.tPool,
		workers:     s.opts.workers,
		mailboxSize: s.opts.mailboxSize,
		ordered:     s.opts.ordered,
	})
	return s
}

// NewTCPServer returns a TCP server (TLS when WithServerSslEnabled is
// given). RunEventLoop listens on WithLocalAddress and accepts in the
// background; a listen error is logged and closes the server, so prefer
// Serve, which returns it.
func NewTCPServer(opts ...ServerOption) Server {
	s := newServer(TCP_SERVER, "tcp-session", opts)
	s.serveLn = s.acceptLoop
	return s
}

func (s *server) Listener() net.Listener {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ln
}

func (s *server) Addr() net.Addr {
	if ln := s.Listener(); ln != nil {
		return ln.Addr()
	}
	return nil
}

// listen opens the listener once.
func (s *server) listen() (net.Listener, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln != nil {
		return s.ln, nil
	}
	if s.closed.Load() {
		return nil, ErrServerClosed
	}
	if s.opts.sslEnabled && s.typ == TCP_SERVER {
		if s.opts.tlsConfigBuilder == nil {
			return nil, errors.New("getty: TLS enabled without a TlsConfigBuilder")
		}
		cfg, err := s.opts.tlsConfigBuilder.BuildTlsConfig()
		if err == nil && cfg == nil {
			err = errors.New("getty: TlsConfigBuilder returned no config")
		}
		if err != nil {
			return nil, fmt.Errorf("getty: server tls config: %w", err)
		}
		s.tlsCfg = cfg
	}
	ln, err := s.listenStream() // listen.go: unix:, WithListener, WithProxyProtocol
	if err != nil {
		return nil, err
	}
	s.ln = ln
	return ln, nil
}

func (s *server) RunEventLoop(newSession NewSessionCallback) {
	ln, err := s.listen()
	if err != nil {
		log().Errorf("getty: %s server %s: %v", s.typ, s.opts.addr, err)
		s.mu.Lock()
		s.serveErr = err
		s.mu.Unlock()
		s.Close()
		return
	}
	s.loops.Add(1)
	go func() {
		defer s.loops.Done()
		if err := s.serveLn(ln, newSession); err != nil && !s.closed.Load() {
			log().Errorf("getty: %s server %s: %v", s.typ, ln.Addr(), err)
		}
	}()
}

func (s *server) Serve(newSession NewSessionCallback) error {
	ln, err := s.listen()
	if err != nil {
		return err
	}
	s.loops.Add(1)
	defer s.loops.Done()
	err = s.serveLn(ln, newSession)
	if s.closed.Load() {
		return ErrServerClosed
	}
	return err
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
			log().Warnf("getty: %s server %s: accept: %v; retrying in %v", s.typ, ln.Addr(), err, backoff)
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
			log().Warnf("getty: %s server %s: refusing %s: %d sessions open", s.typ, ln.Addr(), c.RemoteAddr(), s.opts.maxConns)
			c.Close()
			continue
		}
		s.start(s.withProxy(c, s.newStreamTransport(c)), cb)
	}
}

func (s *server) newStreamTransport(c net.Conn) transport {
	if s.tlsCfg != nil {
		t := newTCPTransport(tls.Server(c, s.tlsCfg))
		t.tlsTimeout = s.opts.handshakeTimeout
		return t
	}
	return newTCPTransport(c)
}

// stopListening closes the listener so no session starts after this.
func (s *server) stopListening() {
	if !s.markClosed() {
		return
	}
	s.mu.Lock()
	ln := s.ln
	s.mu.Unlock()
	if ln != nil {
		ln.Close()
	}
	if s.stopLn != nil {
		s.stopLn()
	}
}

func (s *server) Close() {
	s.stopListening()
	s.closeSessions()
	s.loops.Wait()
	s.wg.Wait()
	s.release()
}

func (s *server) Shutdown(ctx context.Context) error {
	s.stopListening()
	done := make(chan struct{})
	go func() {
		s.closeSessions()
		s.loops.Wait()
		s.wg.Wait()
		s.release()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		// Out of time: drop what is still being flushed. Sessions whose
		// callbacks are stuck end when those return.
		s.abortSessions()
		return ctx.Err()
	}
}

// listenAddr accepts an address without a port, as upstream did, and
// listens on a free port for it.
func listenAddr(addr string) string {
	if _, _, err := net.SplitHostPort(addr); err != nil && addr != "" {
		return net.JoinHostPort(strings.Trim(addr, "[]"), "0")
	}
	return addr
}
