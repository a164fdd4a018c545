package getty

import (
	"log/slog"
	"net"
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

	logger        *slog.Logger // WithServerLogger
	listenOptions              // WithListener, WithProxyProtocol (listen.go)
}

// dispatchConfig is the dispatch part of server and client options, which
// the endpoint takes as it is.
type dispatchConfig struct {
	tPool       gxsync.GenericTaskPool
	workers     int
	mailboxSize int // <= 0: defaultMailboxSize
	ordered     bool
	orderedSet  bool // ordered was given: the built-in pool may be unordered
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
// work in flight is bounded by the pool's size (a saturated pool stops the
// reader, where upstream started a goroutine per message), and one
// session's messages may run concurrently and out of order unless
// WithServerOrderedDispatch(true) is also given. On a
// gxsync.NewTaskPoolSimple pool the messages waiting for a worker are
// served first in, first out over all sessions, and a worker is taken
// from the pool (an idle one first) only when every one at work is busy.
// The server does not close the pool. Default: no pool (OnMessage runs on
// the reader goroutine).
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
//
// The pool bounds how many OnMessage calls run at once to n, over all
// sessions; it does not promise which goroutine runs them. In ordered mode
// (the default) the n workers are n tokens: when a session has nothing
// queued and a token is free (and no worker waits for one), its reader
// takes the token and runs OnMessage itself, as inline dispatch does, which
// saves the handoff to a worker (the packages of one read run under one
// token, given back early if a worker waits for it); otherwise the message
// waits in the session's queue for a worker. A handler that blocks thus
// holds a token either way, and once all n are held every message queues,
// first come first served. OnMessage may therefore run on the reader
// goroutine or on a worker, never on both at once for one session.
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

// WithServerOrderedDispatch chooses whether each session's messages run in
// order, one at a time, on a pool. With a gost task pool the default is
// false (upstream's unordered dispatch). With the built-in pool
// (WithServerWorkerPool) the default is true; false lets one session's
// messages run in parallel on the pool's workers, for handlers that block
// (many calls multiplexed over one connection): the pool then has one
// bounded queue that every worker serves, a full queue stops the readers as
// in ordered mode, and OnClose still runs after the last OnMessage.
func WithServerOrderedDispatch(ordered bool) ServerOption {
	return func(o *ServerOptions) { o.ordered, o.orderedSet = ordered, true }
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

	logger      *slog.Logger // WithClientLogger
	dialOptions              // WithDialContext (dial.go)
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

// WithClientOrderedDispatch chooses whether each session's messages run in
// order on a pool (see WithServerOrderedDispatch). Default: false with a
// gost task pool, true with the built-in pool.
func WithClientOrderedDispatch(ordered bool) ClientOption {
	return func(o *ClientOptions) { o.ordered, o.orderedSet = ordered, true }
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

// WithListener makes a server serve on a listener you made instead of
// listening on WithLocalAddress (which is then ignored): a socket from
// systemd socket activation or from the previous process in a zero-downtime
// restart (net.FileListener), or a listener you wrapped. The server owns it
// from then on: Close and Shutdown close it, and so does a Serve that fails
// to start. TLS (WithServerSslEnabled) and WebSocket servers wrap it as they
// wrap their own. A UDP endpoint refuses it (Serve returns an error).
// A nil ln is an error Serve returns. Default: none; the server listens
// itself.
func WithListener(ln net.Listener) ServerOption {
	return func(o *ServerOptions) { o.listener, o.listenerGiven = ln, true }
}

// WithProxyProtocol makes a TCP server (TLS and Unix sockets included) or
// a WebSocket server read a PROXY protocol header, version 1 or 2, at the
// start of every connection from a trusted proxy, before the TLS handshake
// and before the new-session callback (or the HTTP upgrade). The session's
// RemoteAddr and Stat then show the client the proxy relayed, ProxyHeaderOf
// returns the whole header, and for TCP Conn is still the *net.TCPConn (or
// *tls.Conn, *net.UnixConn) to the proxy. (A WebSocket session's Conn is
// the HTTP server's connection: a getty wrapper of the socket whose
// RemoteAddr is the client, or a *tls.Conn over it.)
//
// Security: only a connection from an address in p.Trusted may name
// another address. Its header must arrive within WithServerHandshakeTimeout
// and fit the spec's sizes (107 bytes for version 1; getty allows 4 KiB for
// version 2), or the connection is closed before any callback. A connection
// from any other address is served as itself; if its first bytes are a
// PROXY header anyway (a forged one), its TCP session ends with an error
// matching ErrProxyHeaderUntrusted before the Reader sees them (a
// WebSocket server answers it as the malformed HTTP request it is). Bad
// settings are returned by Serve (RunEventLoop logs them); a UDP endpoint
// refuses the option.
//
// Default: no PROXY protocol; every byte is the application's.
func WithProxyProtocol(p ProxyProtocol) ServerOption {
	return func(o *ServerOptions) {
		p.Trusted = append([]string(nil), p.Trusted...)
		o.proxy = &p
	}
}

// WithDialContext makes a client open every connection with dial instead
// of a net.Dialer: through a proxy, from a chosen source address, over a
// test's fault injector. network and addr are what the client would dial:
// ("tcp", "host:port"), ("unix", "/path") for a "unix:" address, ("udp",
// ...) for a UDP client, and the host:port of the URL for WebSocket (whose
// TLS and upgrade getty then runs over the returned connection). TLS runs
// over the returned connection too.
//
// ctx ends when the dial timeout (WithDialTimeout) passes or the client is
// closed; dial must give up then. A connection it returns after ctx ended is
// closed and the dial counts as failed. A UDP client needs a *net.UDPConn
// back. A panic in dial is recovered and counted as a failed dial. Default:
// a net.Dialer.
func WithDialContext(dial DialContextFunc) ClientOption {
	return func(o *ClientOptions) { o.dialer = dial }
}
