package getty

import (
	"log/slog"
	"time"

	gxsync "github.com/dubbogo/gost/sync"
)

// ServerOption configures a server. Options only record values; the
// constructor checks them and falls back to the documented default for a
// value out of range, so no option panics.
type ServerOption func(*ServerOptions)

// ServerOptions holds a server's settings. Its fields are set through the
// With* options.
type ServerOptions struct {
	addr string

	// WebSocket
	path       string
	cert       string
	privateKey string
	caCert     string
	originOK   func(origin string) bool

	// TLS over TCP
	sslEnabled       bool
	tlsConfigBuilder TlsConfigBuilder

	dispatchConfig

	// limits
	maxConns         int
	handshakeTimeout time.Duration

	logger *slog.Logger // WithServerLogger
}

// dispatchConfig is the dispatch part of server and client options, which
// the endpoint takes as it is.
type dispatchConfig struct {
	tPool       gxsync.GenericTaskPool
	workers     int
	mailboxSize int // <= 0: defaultMailboxSize
	ordered     bool
}

// WithLocalAddress sets the address to listen on, "host:port". A port of 0
// picks a free port (Server.Addr tells which). Default: "", all interfaces
// on a free port.
func WithLocalAddress(addr string) ServerOption {
	return func(o *ServerOptions) { o.addr = addr }
}

// WithWebsocketServerPath sets the HTTP path a WebSocket server upgrades
// on. Default (and an empty path): "/".
func WithWebsocketServerPath(path string) ServerOption {
	return func(o *ServerOptions) { o.path = path }
}

// WithWebsocketServerCert sets the PEM certificate file of a WSS server.
func WithWebsocketServerCert(cert string) ServerOption {
	return func(o *ServerOptions) { o.cert = cert }
}

// WithWebsocketServerPrivateKey sets the PEM private key file of a WSS
// server.
func WithWebsocketServerPrivateKey(key string) ServerOption {
	return func(o *ServerOptions) { o.privateKey = key }
}

// WithWebsocketServerRootCert sets a PEM CA file; a WSS server with one
// requires and verifies client certificates signed by it.
func WithWebsocketServerRootCert(cert string) ServerOption {
	return func(o *ServerOptions) { o.caCert = cert }
}

// WithWebsocketOriginCheck sets the function a WebSocket server asks
// whether to accept an upgrade from a page of the given Origin. Default:
// same-origin requests and requests without an Origin header (non-browser
// clients) are accepted.
func WithWebsocketOriginCheck(ok func(origin string) bool) ServerOption {
	return func(o *ServerOptions) { o.originOK = ok }
}

// WithServerTaskPool runs OnMessage on a gost task pool, as upstream: the
// pool's blocking AddTask bounds the work in flight, and one session's
// messages may run concurrently and out of order unless
// WithServerOrderedDispatch(true) is also given. The server does not close
// the pool. Default: no pool (OnMessage runs on the reader goroutine).
func WithServerTaskPool(pool gxsync.GenericTaskPool) ServerOption {
	return func(o *ServerOptions) { o.tPool = pool }
}

// WithServerWorkerPool runs OnMessage on a built-in pool of n goroutines
// shared by all the server's sessions. Each session's messages run in
// arrival order, one at a time, and OnClose runs after the last of them;
// different sessions run in parallel. A session whose queue is full (see
// WithServerMailboxSize) stops reading, which pushes back on its peer over
// TCP. n <= 0 means runtime.GOMAXPROCS(0). Default: no pool. It takes
// precedence over WithServerTaskPool for dispatch.
func WithServerWorkerPool(n int) ServerOption {
	return func(o *ServerOptions) {
		if n <= 0 {
			n = -1 // "GOMAXPROCS", resolved when the pool starts
		}
		o.workers = n
	}
}

// WithServerMailboxSize sets how many decoded messages a session may have
// waiting for a pool worker before its reader stops reading. Default: 64.
func WithServerMailboxSize(n int) ServerOption {
	return func(o *ServerOptions) { o.mailboxSize = n }
}

// WithServerOrderedDispatch keeps each session's messages in order, one at
// a time, when a gost task pool is used. Default: false (upstream's
// unordered dispatch). The built-in pool is always ordered.
func WithServerOrderedDispatch(ordered bool) ServerOption {
	return func(o *ServerOptions) { o.ordered = ordered }
}

// WithServerSslEnabled turns on TLS for a TCP server; the TLS settings come
// from WithServerTlsConfigBuilder.
func WithServerSslEnabled(sslEnabled bool) ServerOption {
	return func(o *ServerOptions) { o.sslEnabled = sslEnabled }
}

// WithServerTlsConfigBuilder sets what builds the TLS configuration of a
// TLS server, usually a *ServerTlsConfigBuilder.
func WithServerTlsConfigBuilder(b TlsConfigBuilder) ServerOption {
	return func(o *ServerOptions) { o.tlsConfigBuilder = b }
}

// WithServerMaxConnections caps the sessions a server holds at once; a
// connection beyond the cap is accepted and closed at once. Default: 0, no
// cap.
func WithServerMaxConnections(n int) ServerOption {
	return func(o *ServerOptions) { o.maxConns = n }
}

// WithServerHandshakeTimeout bounds the TLS handshake and the WebSocket
// upgrade of a new connection. Default: 5 s.
func WithServerHandshakeTimeout(d time.Duration) ServerOption {
	return func(o *ServerOptions) { o.handshakeTimeout = d }
}

// ClientOption configures a client. Like server options, they only record
// values; the constructor validates them.
type ClientOption func(*ClientOptions)

// ClientOptions holds a client's settings. Its fields are set through the
// With* options.
type ClientOptions struct {
	addr              string
	number            int
	reconnectInterval int // ns, upstream's unit

	// TLS / WSS
	cert             string
	sslEnabled       bool
	tlsConfigBuilder TlsConfigBuilder

	dispatchConfig

	// reconnect
	maxReconnectAttempts int
	maxReconnectInterval time.Duration
	dialTimeout          time.Duration
	errorHandler         func(Client, error)

	logger *slog.Logger // WithClientLogger
}

// WithServerAddress sets the address a client connects to: "host:port" for
// TCP and UDP, "ws://host:port/path" or "wss://..." for WebSocket.
func WithServerAddress(addr string) ClientOption {
	return func(o *ClientOptions) { o.addr = addr }
}

// WithConnectionNumber sets how many sessions a client keeps open to its
// server. Default (and for n <= 0): 1.
func WithConnectionNumber(n int) ClientOption {
	return func(o *ClientOptions) { o.number = n }
}

// WithReconnectInterval sets the first wait, in nanoseconds (upstream's
// unit), before redialing a lost session; later waits double with jitter up
// to WithMaxReconnectInterval. Default (and for values <= 0): 300 ms.
// Mind the unit: WithReconnectInterval(300) is 300 ns, not ms; a value under
// a microsecond is logged at WARN. Pass int(300 * time.Millisecond).
func WithReconnectInterval(ns int) ClientOption {
	return func(o *ClientOptions) { o.reconnectInterval = ns }
}

// WithMaxReconnectInterval caps the backoff between redials. Default: 10 s
// (never less than the reconnect interval).
func WithMaxReconnectInterval(d time.Duration) ClientOption {
	return func(o *ClientOptions) { o.maxReconnectInterval = d }
}

// WithReconnectAttempts bounds how many dials in a row may fail for one
// missing session before the client gives up on it and reports an error
// matching ErrReconnectGaveUp to WithClientErrorHandler's handler and the
// log. Default: 0, no limit.
func WithReconnectAttempts(n int) ClientOption {
	return func(o *ClientOptions) { o.maxReconnectAttempts = n }
}

// WithClientErrorHandler sets a function told about client-level errors
// that no session can carry, such as ErrReconnectGaveUp. It runs on the
// goroutine that gave up; keep it short. Default: none (errors are logged).
func WithClientErrorHandler(h func(Client, error)) ClientOption {
	return func(o *ClientOptions) { o.errorHandler = h }
}

// WithDialTimeout bounds one dial, including a TLS handshake or WebSocket
// upgrade. Default: 3 s.
func WithDialTimeout(d time.Duration) ClientOption {
	return func(o *ClientOptions) { o.dialTimeout = d }
}

// WithClientTaskPool runs OnMessage on a gost task pool, as upstream (see
// WithServerTaskPool).
func WithClientTaskPool(pool gxsync.GenericTaskPool) ClientOption {
	return func(o *ClientOptions) { o.tPool = pool }
}

// WithClientWorkerPool runs OnMessage on a built-in pool of n goroutines
// shared by the client's sessions, in order per session (see
// WithServerWorkerPool). Default: no pool.
func WithClientWorkerPool(n int) ClientOption {
	return func(o *ClientOptions) {
		if n <= 0 {
			n = -1
		}
		o.workers = n
	}
}

// WithClientMailboxSize sets how many decoded messages a session may have
// waiting for a pool worker before its reader stops reading. Default: 64.
func WithClientMailboxSize(n int) ClientOption {
	return func(o *ClientOptions) { o.mailboxSize = n }
}

// WithClientOrderedDispatch keeps each session's messages in order when a
// gost task pool is used. Default: false.
func WithClientOrderedDispatch(ordered bool) ClientOption {
	return func(o *ClientOptions) { o.ordered = ordered }
}

// WithRootCertificateFile sets the PEM CA file a WSS client verifies the
// server with. Default: the system roots.
func WithRootCertificateFile(cert string) ClientOption {
	return func(o *ClientOptions) { o.cert = cert }
}

// WithClientSslEnabled turns on TLS for a TCP client; the settings come from
// WithClientTlsConfigBuilder.
func WithClientSslEnabled(sslEnabled bool) ClientOption {
	return func(o *ClientOptions) { o.sslEnabled = sslEnabled }
}

// WithClientTlsConfigBuilder sets what builds a TLS client's configuration,
// usually a *ClientTlsConfigBuilder.
func WithClientTlsConfigBuilder(b TlsConfigBuilder) ClientOption {
	return func(o *ClientOptions) { o.tlsConfigBuilder = b }
}

// WithServerLogger sends the server's log lines, with their attributes
// (endpoint, session_id, session, remote_addr, error, stack), to l instead
// of the process-wide logger. Default: nil, the logger set with SetLogger
// (log/slog text on stderr at WARN unless replaced). getty never logs per
// packet.
func WithServerLogger(l *slog.Logger) ServerOption {
	return func(o *ServerOptions) { o.logger = l }
}

// WithClientLogger sends the client's log lines to l instead of the
// process-wide logger (see WithServerLogger). Default: nil, the logger set
// with SetLogger.
func WithClientLogger(l *slog.Logger) ClientOption {
	return func(o *ClientOptions) { o.logger = l }
}
