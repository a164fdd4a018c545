package getty

import (
	"bytes"
	"crypto/tls"
	"errors"
	stdlog "log"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"

	"github.com/gorilla/websocket"
)

// NewWSServer returns a WebSocket server: an HTTP server on
// WithLocalAddress that upgrades requests for WithWebsocketServerPath ("/"
// when empty) and runs one session per upgraded connection. The HTTP
// handler's goroutine becomes the session's reader, so a connection costs
// one goroutine. Each session decodes every package of a whole WebSocket
// message (see Reader), writes one binary message per WritePkg (text after
// SetWSTextMessages), answers pings and pings its peer every cron period.
// NewWSHandler serves its sessions from the program's own http.ServeMux
// instead. Origins are checked with WithWebsocketOriginCheck
// (default: no Origin header, or the same origin as the Host). The request
// headers and the upgrade are bounded by WithServerHandshakeTimeout.
//
// The returned Server is also a StreamServer. Close and Shutdown stop the
// HTTP server and close every upgraded session.
func NewWSServer(opts ...ServerOption) Server {
	return newWSServer(WS_SERVER, "ws-session", opts)
}

// NewWSSServer returns a WebSocket server over TLS (1.2 or later) with the
// certificate of WithWebsocketServerCert and WithWebsocketServerPrivateKey.
// With WithWebsocketServerRootCert, clients must present a certificate
// signed by that CA. Without the certificate options a TlsConfigBuilder
// given with WithServerTlsConfigBuilder is used instead. A configuration
// error is returned by Serve (RunEventLoop logs it) and the listener is
// closed.
func NewWSSServer(opts ...ServerOption) Server {
	return newWSServer(WSS_SERVER, "wss-session", opts)
}

// wsServer is the HTTP side of a WebSocket server; the server it belongs to
// calls serveHTTP and stopHTTP through its serveLn and stopLn hooks.
type wsServer struct {
	srv      *server
	secure   bool
	path     string
	upgrader websocket.Upgrader

	mu       sync.Mutex
	hs       *http.Server // the one serving; nil before
	stopped  bool
	handlers sync.WaitGroup // handler goroutines, session readers included
}

func newWSServer(typ EndPointType, name string, opts []ServerOption) *server {
	s := newServer(typ, name, opts)
	w := &wsServer{srv: s, secure: typ == WSS_SERVER, path: s.opts.path}
	if w.path == "" {
		w.path = "/"
	}
	if !strings.HasPrefix(w.path, "/") {
		w.path = "/" + w.path
	}
	w.upgrader = websocket.Upgrader{
		HandshakeTimeout:  s.opts.handshakeTimeout,
		WriteBufferSize:   wsWriteBufferSize,
		WriteBufferPool:   &wsWriteBuffers,
		EnableCompression: true,
		CheckOrigin:       w.checkOrigin,
		Error:             w.upgradeError,
	}
	s.serveLn = w.serveHTTP
	s.stopLn = w.stopHTTP
	s.ws = w
	return s
}

// checkOrigin applies WithWebsocketOriginCheck, or by default accepts a
// request without an Origin header (not from a browser) or from the same
// host. A custom check sees every request, "" for no Origin header.
func (w *wsServer) checkOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if ok := w.srv.opts.originOK; ok != nil {
		return callOriginCheck(ok, origin)
	}
	if origin == "" {
		return true
	}
	i := strings.Index(origin, "://")
	if i < 0 {
		return false
	}
	host := origin[i+3:]
	if j := strings.IndexAny(host, "/?#"); j >= 0 {
		host = host[:j]
	}
	return strings.EqualFold(host, r.Host)
}

func (w *wsServer) upgradeError(rw http.ResponseWriter, r *http.Request, status int, reason error) {
	w.srv.log(slog.LevelInfo, "getty: WebSocket upgrade refused", slog.String(logKeyRemoteAddr, r.RemoteAddr),
		slog.Int("status", status), slog.String(logKeyError, reason.Error()))
	http.Error(rw, http.StatusText(status), status)
}

// matches reports whether path is served: the path itself, and below it
// when it ends in "/" (as http.ServeMux does, so "/" serves every path).
func (w *wsServer) matches(path string) bool {
	if strings.HasSuffix(w.path, "/") {
		return strings.HasPrefix(path, w.path)
	}
	return path == w.path
}

// serveHTTP runs the HTTP server on ln until it is stopped, then waits for
// its handlers (so for the sessions they serve).
func (w *wsServer) serveHTTP(ln net.Listener, cb NewSessionCallback) error {
	if w.secure {
		cfg, err := w.tlsConfig()
		if err != nil {
			ln.Close()
			return err
		}
		ln = tls.NewListener(ln, cfg)
	}
	timeout := w.srv.opts.handshakeTimeout
	hs := &http.Server{
		Handler:           w.handler(cb),
		ReadHeaderTimeout: timeout, // also bounds the TLS handshake
		IdleTimeout:       timeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          stdlog.New(httpLogWriter{w.srv.endpoint}, "", 0),
		// No HTTP/2: a WebSocket upgrade needs HTTP/1.1.
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){},
	}
	w.mu.Lock()
	if w.stopped {
		w.mu.Unlock()
		return nil
	}
	if w.hs != nil {
		w.mu.Unlock()
		return errors.New("getty: websocket server is already serving")
	}
	w.hs = hs
	w.mu.Unlock()

	err := hs.Serve(ln)
	w.mu.Lock()
	w.stopped = true // no handler starts after this
	w.mu.Unlock()
	hs.Close()
	w.handlers.Wait()
	if errors.Is(err, http.ErrServerClosed) || w.srv.closed.Load() {
		return nil
	}
	return err
}

// stopHTTP closes the HTTP server: its listener and the connections not
// upgraded yet. Upgraded ones are sessions, which the server closes.
func (w *wsServer) stopHTTP() {
	w.mu.Lock()
	w.stopped = true
	hs := w.hs
	w.mu.Unlock()
	if hs != nil {
		hs.Close()
	}
}

func (w *wsServer) handler(cb NewSessionCallback) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if !w.matches(r.URL.Path) {
			http.NotFound(rw, r)
			return
		}
		w.mu.Lock()
		if w.stopped || w.srv.closed.Load() {
			w.mu.Unlock()
			http.Error(rw, http.StatusText(http.StatusServiceUnavailable), http.StatusServiceUnavailable)
			return
		}
		w.handlers.Add(1)
		w.mu.Unlock()
		defer w.handlers.Done()

		w.upgrade(rw, r, cb)
	})
}

// upgrade upgrades r and runs its session on the calling goroutine until
// the session ends.
func (w *wsServer) upgrade(rw http.ResponseWriter, r *http.Request, cb NewSessionCallback) {
	if limit := w.srv.opts.maxConns; limit > 0 && w.srv.count() >= limit {
		w.srv.log(slog.LevelWarn, "getty: connection refused: WithServerMaxConnections reached",
			slog.String(logKeyRemoteAddr, r.RemoteAddr), slog.Int("max_connections", limit))
		http.Error(rw, http.StatusText(http.StatusServiceUnavailable), http.StatusServiceUnavailable)
		return
	}
	// Frames are read through a wsNetConn (connection_ws_frames.go).
	ws, err := w.upgrader.Upgrade(&wsHijacker{ResponseWriter: rw}, r, nil)
	if err != nil {
		return // upgradeError answered and logged
	}
	// This goroutine is the session's reader from here on.
	w.srv.serveSession(newWSTransport(ws, offersDeflate(r.Header)), cb)
}

// offersDeflate reports whether the client offered permessage-deflate, so
// (the upgrader having compression enabled) it was negotiated.
func offersDeflate(h http.Header) bool {
	for _, v := range h.Values("Sec-Websocket-Extensions") {
		for _, ext := range strings.Split(v, ",") {
			name, _, _ := strings.Cut(ext, ";")
			if strings.EqualFold(strings.TrimSpace(name), "permessage-deflate") {
				return true
			}
		}
	}
	return false
}

// tlsConfig builds the WSS configuration: TLS 1.2 or later, HTTP/1.1, and
// verified client certificates when a root certificate is given.
func (w *wsServer) tlsConfig() (*tls.Config, error) {
	o := &w.srv.opts
	var cfg *tls.Config
	switch {
	case o.cert != "" || o.privateKey != "":
		pair, err := loadKeyPair(o.cert, o.privateKey, "")
		if err != nil {
			return nil, err
		}
		cfg = &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
	case o.tlsConfigBuilder != nil:
		c, err := buildTLSConfig(o.tlsConfigBuilder)
		if err != nil {
			return nil, err
		}
		cfg = c.Clone()
		if cfg.MinVersion < tls.VersionTLS12 {
			cfg.MinVersion = tls.VersionTLS12
		}
	default:
		return nil, errors.New("getty: WSS server without a certificate (WithWebsocketServerCert and WithWebsocketServerPrivateKey)")
	}
	if err := requireClientCerts(cfg, o.caCert); err != nil {
		return nil, err
	}
	cfg.NextProtos = []string{"http/1.1"}
	return cfg, nil
}

// httpLogWriter sends the HTTP server's own messages (TLS handshake
// failures, mostly) to getty's logger at info level.
type httpLogWriter struct{ e *endpoint }

func (l httpLogWriter) Write(p []byte) (int, error) {
	l.e.log(slog.LevelInfo, "getty: HTTP server: "+string(bytes.TrimSpace(p)))
	return len(p), nil
}

// callOriginCheck runs the user's origin check under recover: a panic
// refuses that upgrade and is logged.
func callOriginCheck(ok func(string) bool, origin string) (accept bool) {
	if err := protect("the WebSocket origin check", func() { accept = ok(origin) }); err != nil {
		globalLog(slog.LevelError, "getty: panic in the WebSocket origin check; upgrade refused",
			append([]slog.Attr{slog.String("origin", origin)}, errAttrs(err)...))
		return false
	}
	return accept
}
