package getty

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"syscall"
	"time"
)

// ErrAddressInUse reports a Unix socket path that a live server already
// listens on. The stale file of a server that crashed is not in use: it is
// removed and the path reused.
var ErrAddressInUse = errors.New("getty: address already in use")

// unixPrefix marks a Unix domain socket address: "unix:/path/to.sock", or
// "unix:@name" for Linux's abstract namespace (no file).
const unixPrefix = "unix:"

// splitNetwork turns an address option into the network and address that
// net.Listen and net.Dial take: "unix:/run/app.sock" is ("unix",
// "/run/app.sock"), anything else is ("tcp", addr).
func splitNetwork(addr string) (network, address string) {
	if rest, ok := strings.CutPrefix(addr, unixPrefix); ok {
		return "unix", rest
	}
	return "tcp", addr
}

// listenOptions are the server options of this file and proxyproto.go,
// embedded in ServerOptions.
type listenOptions struct {
	listener      net.Listener   // WithListener
	listenerGiven bool           // WithListener was called, perhaps with nil
	proxy         *ProxyProtocol // WithProxyProtocol
	proxyCfg      *proxyConfig   // proxy, checked when the server starts
}

// listenStream opens a server's stream listener: the one given with
// WithListener, a Unix socket for a "unix:" address, TCP otherwise. It
// checks the options of this file first; a given listener is closed when
// they are wrong, as the server owns it.
func (s *server) listenStream() (net.Listener, error) {
	ln, err := s.openListener()
	if err != nil || s.opts.proxyCfg == nil || s.typ == TCP_SERVER {
		return ln, err
	}
	// WebSocket: the HTTP server reads through the connections' own
	// header readers (proxyproto_ws.go).
	return &proxyListener{Listener: ln, cfg: s.opts.proxyCfg, srv: s, typ: s.typ}, nil
}

func (s *server) openListener() (net.Listener, error) {
	if err := s.checkListenOptions(); err != nil {
		if s.opts.listener != nil {
			s.opts.listener.Close()
		}
		return nil, err
	}
	if ln := s.opts.listener; ln != nil {
		if s.opts.addr != "" {
			s.log(slog.LevelWarn, "getty: WithLocalAddress is ignored: WithListener gave the listener", slog.String("addr", s.opts.addr), slog.String("listener", ln.Addr().String()))
		}
		return ln, nil
	}
	network, addr := splitNetwork(s.opts.addr)
	if network == "unix" {
		return listenUnix(addr)
	}
	ln, err := net.Listen("tcp", listenAddr(addr))
	if err != nil {
		return nil, fmt.Errorf("getty: listen: %w", err)
	}
	return ln, nil
}

func (s *server) checkListenOptions() error {
	if s.opts.listenerGiven && s.opts.listener == nil {
		return fmt.Errorf("getty: %s server: WithListener(nil)", s.typ)
	}
	if s.opts.proxy == nil {
		return nil
	}
	if s.typ != TCP_SERVER && s.typ != WS_SERVER && s.typ != WSS_SERVER {
		return fmt.Errorf("getty: %s: WithProxyProtocol needs a TCP or WebSocket server", s.typ)
	}
	cfg, err := compileProxy(s.opts.proxy)
	if err != nil {
		return err
	}
	s.opts.proxyCfg = cfg
	return nil
}

// checkPacketOptions refuses the stream-only options on a UDP endpoint.
func (s *server) checkPacketOptions() error {
	if s.opts.listener != nil {
		return fmt.Errorf("getty: %s: WithListener needs a stream server (a UDP endpoint has no listener)", s.typ)
	}
	if s.opts.proxy != nil {
		return fmt.Errorf("getty: %s: WithProxyProtocol needs a TCP or WebSocket server", s.typ)
	}
	if network, _ := splitNetwork(s.opts.addr); network == "unix" {
		return fmt.Errorf("getty: %s: Unix socket addresses need a stream server", s.typ)
	}
	return nil
}

// listenUnix listens on a Unix socket. A socket file left at path by a
// server that died without removing it is removed first, but only when a
// dial proves nothing listens on it; a live server's path is refused with
// ErrAddressInUse and a file that is not a socket is never touched. The
// listener removes its file when it closes.
func listenUnix(path string) (net.Listener, error) {
	if path == "" {
		return nil, errors.New("getty: listen: empty Unix socket path (want unix:/path/to.sock or unix:@name)")
	}
	if !strings.HasPrefix(path, "@") {
		if err := removeStaleSocket(path); err != nil {
			return nil, err
		}
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("getty: listen: %w", err)
	}
	return ln, nil
}

func isConnRefused(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }

// removeStaleSocket removes the socket file at path if nobody listens on it.
func removeStaleSocket(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("getty: listen unix %s: %w", path, err)
	}
	if fi.Mode()&os.ModeSocket == 0 {
		return fmt.Errorf("getty: listen unix %s: the path exists and is not a socket", path)
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		c.Close()
		return fmt.Errorf("%w: a server is listening on unix socket %s", ErrAddressInUse, path)
	}
	if !isConnRefused(err) {
		// Not provably stale (a full backlog answers EAGAIN, say): keep it.
		return fmt.Errorf("getty: listen unix %s: cannot tell whether the socket file is stale: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("getty: listen unix %s: removing the stale socket file: %w", path, err)
	}
	globalLog(slog.LevelInfo, "getty: removed a stale unix socket file", []slog.Attr{slog.String("path", path)})
	return nil
}
