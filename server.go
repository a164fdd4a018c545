package getty

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"strings"
	"sync"
)

// Server is a listening endpoint. Beyond upstream's EndPoint it offers
// Serve, which reports a listen error, and Shutdown for a graceful stop.
type Server interface {
	EndPoint
	// Serve listens and serves on the calling goroutine until the server
	// is closed, calling newSession for every new session. Serve always
	// returns a non-nil error: the listen error (address in use, bad TLS
	// configuration) at once, or after Close or Shutdown ErrServerClosed.
	// Accept errors such as descriptor exhaustion are retried with backoff.
	//
	// When Shutdown is called, Serve returns ErrServerClosed at once, while
	// the sessions are still closing: make sure the program does not exit
	// then, but waits for Shutdown to return (see Example (Lifecycle)).
	Serve(newSession NewSessionCallback) error
	// Shutdown stops accepting, closes every session gracefully (accepted
	// writes are flushed, queued messages still reach OnMessage) and waits
	// until they are gone or ctx ends; then it returns ctx.Err(), with the
	// sessions closed but their callbacks possibly still running. It
	// returns nil once every session has ended and every OnClose has run.
	// Serve returns ErrServerClosed as soon as Shutdown starts: wait for
	// Shutdown, not for Serve, before the program exits.
	Shutdown(ctx context.Context) error
	// Addr returns the address the server listens on, or nil before it
	// listens.
	Addr() net.Addr
	// Sessions returns a snapshot of the open sessions (OnOpen succeeded,
	// not closing), e.g. for a broadcast. Safe for concurrent use while
	// sessions come and go.
	Sessions() []Session
	// SessionCount returns how many sessions are open, as Sessions would.
	SessionCount() int
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
	ws     *wsServer // WebSocket servers: the HTTP side (NewWSHandler)
}

func newServer(typ EndPointType, name string, opts []ServerOption) *server {
	s := &server{}
	for _, opt := range opts {
		if opt != nil {
			opt(&s.opts)
		}
	}
	if s.opts.handshakeTimeout <= 0 {
		s.opts.handshakeTimeout = defaultHandshakeTimeout
	}
	s.endpoint = newEndpoint(s, typ, name, s.opts.dispatchConfig)
	s.endpoint.elog.logger = s.opts.logger
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
		cfg, err := requiredTLSConfig(s.opts.tlsConfigBuilder, "server")
		if err != nil {
			return nil, err
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
		s.log(slog.LevelError, "getty: server cannot listen; closed (Serve returns this error)", slog.String("addr", s.opts.addr), slog.String(logKeyError, err.Error()))
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
			s.log(slog.LevelError, "getty: server stopped serving", slog.String("addr", ln.Addr().String()), slog.String(logKeyError, err.Error()))
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
	s.closeAndWait(&s.loops)
}

func (s *server) Shutdown(ctx context.Context) error {
	s.stopListening()
	done := make(chan struct{})
	go func() {
		s.closeAndWait(&s.loops)
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
