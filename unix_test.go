//go:build unix

package getty_test

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	getty "github.com/getty-go/getty"
	"github.com/getty-go/getty/internal/testcert"
)

// sockPath is a socket path short enough for sun_path (108 bytes).
func sockPath(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "getty")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, "s.sock")
}

// unixEcho runs an echo server on addr and a client of it, sends one
// message, and returns the server and the sessions' connections.
func unixEcho(t *testing.T, addr string) (srv getty.Server, srvConn, cliConn net.Conn) {
	t.Helper()
	conns := make(chan net.Conn, 1)
	srv = getty.NewTCPServer(getty.WithLocalAddress(addr))
	startServer(t, srv, withCodec(newRecorder(true), func(s getty.Session) { conns <- s.Conn() }))
	rec := newRecorder(false)
	cli := startClient(t, getty.NewTCPClient(getty.WithServerAddress(addr)), withCodec(rec))
	s, err := cli.Session()
	require.NoError(t, err)
	_, _, err = s.WritePkg("over a unix socket", time.Second)
	require.NoError(t, err)
	assert.Equal(t, "over a unix socket", rec.next(t))
	return srv, <-conns, s.Conn()
}

func TestUnixSocketServeAndDial(t *testing.T) {
	path := sockPath(t)
	srv, srvConn, cliConn := unixEcho(t, "unix:"+path)
	assert.IsType(t, &net.UnixConn{}, srvConn, "server Conn()")
	assert.IsType(t, &net.UnixConn{}, cliConn, "client Conn()")
	assert.Equal(t, "unix", srv.Addr().Network())
	assert.Equal(t, path, srv.Addr().String())
	fi, err := os.Stat(path)
	require.NoError(t, err)
	assert.NotZero(t, fi.Mode()&os.ModeSocket)

	srv.Close()
	_, err = os.Stat(path)
	assert.True(t, errors.Is(err, os.ErrNotExist), "socket file left after Close: %v", err)
}

func TestUnixSocketAbstract(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the abstract namespace is Linux's")
	}
	name := fmt.Sprintf("@getty-test-%d-%d", os.Getpid(), time.Now().UnixNano())
	srv, srvConn, _ := unixEcho(t, "unix:"+name)
	assert.IsType(t, &net.UnixConn{}, srvConn)
	assert.Equal(t, name, srv.Addr().String())
}

// A socket file left by a server that died is removed and the path reused.
func TestUnixSocketStaleFileRemoved(t *testing.T) {
	path := sockPath(t)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	require.NoError(t, err)
	ln.SetUnlinkOnClose(false) // as a crashed server leaves it
	require.NoError(t, ln.Close())
	_, err = os.Stat(path)
	require.NoError(t, err, "the stale file should exist before the test")

	unixEcho(t, "unix:"+path)
}

// A path a live server listens on is refused, and its file is untouched.
func TestUnixSocketInUse(t *testing.T) {
	path := sockPath(t)
	live, err := net.Listen("unix", path)
	require.NoError(t, err)
	defer live.Close()

	srv := getty.NewTCPServer(getty.WithLocalAddress("unix:" + path))
	err = srv.Serve(withCodec(newRecorder(true)))
	require.ErrorIs(t, err, getty.ErrAddressInUse)
	srv.Close()

	// The live listener still has its file and still accepts.
	c, err := net.DialTimeout("unix", path, time.Second)
	require.NoError(t, err)
	c.Close()
}

// A path holding something else than a socket is never removed.
func TestUnixSocketPathNotASocket(t *testing.T) {
	path := sockPath(t)
	require.NoError(t, os.WriteFile(path, []byte("precious"), 0o600))
	srv := getty.NewTCPServer(getty.WithLocalAddress("unix:" + path))
	err := srv.Serve(withCodec(newRecorder(true)))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "not a socket")
	srv.Close()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, "precious", string(b))
}

// TLS runs over a Unix socket as over TCP.
func TestUnixSocketTLS(t *testing.T) {
	path := sockPath(t)
	set := testcert.New(t)
	srvB := &getty.ServerTlsConfigBuilder{ServerKeyCertChainPath: set.Server.Cert, ServerPrivateKeyPath: set.Server.Key}
	// No host in a socket path: name the server the certificate is for.
	cliB := tlsBuilderFunc(func() (*tls.Config, error) {
		cfg, err := (&getty.ClientTlsConfigBuilder{ClientTrustCertCollectionPath: set.CA}).BuildTlsConfig()
		if cfg != nil {
			cfg.ServerName = "localhost"
		}
		return cfg, err
	})
	conns := make(chan net.Conn, 1)
	srv := getty.NewTCPServer(getty.WithLocalAddress("unix:"+path), getty.WithServerSslEnabled(true), getty.WithServerTlsConfigBuilder(srvB))
	startServer(t, srv, withCodec(newRecorder(true), func(s getty.Session) { conns <- s.Conn() }))
	rec := newRecorder(false)
	cli := startClient(t, getty.NewTCPClient(getty.WithServerAddress("unix:"+path),
		getty.WithClientSslEnabled(true), getty.WithClientTlsConfigBuilder(cliB)), withCodec(rec))
	s, err := cli.Session()
	require.NoError(t, err)
	_, _, err = s.WritePkg("tls over unix", time.Second)
	require.NoError(t, err)
	assert.Equal(t, "tls over unix", rec.next(t))
	assert.IsType(t, &net.UnixConn{}, (<-conns).(interface{ NetConn() net.Conn }).NetConn())
}

type tlsBuilderFunc func() (*tls.Config, error)

func (f tlsBuilderFunc) BuildTlsConfig() (*tls.Config, error) { return f() }

// A UDP endpoint refuses a Unix socket address loudly.
func TestUnixSocketUDPRefused(t *testing.T) {
	srv := getty.NewUDPEndPoint(getty.WithLocalAddress("unix:" + sockPath(t)))
	err := srv.Serve(withCodec(newRecorder(true)))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "Unix socket")
	srv.Close()
}

// The dialer of WithDialContext is asked for ("unix", path).
func TestDialContextUnixNetwork(t *testing.T) {
	var d dialLog
	path := sockPath(t)
	startServer(t, getty.NewTCPServer(getty.WithLocalAddress("unix:"+path)), withCodec(newRecorder(true)))
	echoOnce(t, getty.NewTCPClient(getty.WithServerAddress("unix:"+path), getty.WithDialContext(d.dial)), "unix")
	assert.Equal(t, []string{"unix " + path}, d.calls)
}

// A PROXY header over a Unix socket, from a peer trusted as "unix".
func TestProxyProtocolUnixSocket(t *testing.T) {
	path := sockPath(t)
	ps := newProxyServer(t, getty.ProxyProtocol{Trusted: []string{"unix"}}, getty.WithLocalAddress("unix:"+path))
	c, err := net.Dial("unix", path)
	require.NoError(t, err)
	defer c.Close()
	_, err = c.Write(append(v2Header(1, tcpAddr("198.51.100.9:40000"), tcpAddr("192.0.2.1:8080")), frame("over unix")...))
	require.NoError(t, err)
	assert.Equal(t, "over unix", readFrame(t, c))
	seen := ps.nextSession(t)
	assert.Equal(t, "198.51.100.9:40000", seen.remote)
	assert.IsType(t, &net.UnixConn{}, seen.conn)
}
