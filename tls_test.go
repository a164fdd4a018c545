package getty_test

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	getty "github.com/getty-go/getty"
	"github.com/getty-go/getty/internal/testcert"
)

// newTLSServer makes a TLS server with pair; a non-empty trust CA requires
// client certificates.
func newTLSServer(set *testcert.Set, pair testcert.Pair, trust string, opts ...getty.ServerOption) getty.Server {
	return getty.NewTCPServer(append([]getty.ServerOption{
		getty.WithLocalAddress("127.0.0.1:0"),
		getty.WithServerSslEnabled(true),
		getty.WithServerTlsConfigBuilder(&getty.ServerTlsConfigBuilder{
			ServerKeyCertChainPath:        pair.Cert,
			ServerPrivateKeyPath:          pair.Key,
			ServerTrustCertCollectionPath: trust,
		}),
	}, opts...)...)
}

// newTLSClient makes a TLS client that trusts set.CA and presents pair
// when given.
func newTLSClient(srv getty.Server, set *testcert.Set, pair *testcert.Pair, opts ...getty.ClientOption) getty.Client {
	b := &getty.ClientTlsConfigBuilder{ClientTrustCertCollectionPath: set.CA}
	if pair != nil {
		b.ClientKeyCertChainPath, b.ClientPrivateKeyPath = pair.Cert, pair.Key
	}
	return getty.NewTCPClient(append([]getty.ClientOption{
		getty.WithServerAddress(srv.Addr().String()),
		getty.WithClientSslEnabled(true),
		getty.WithClientTlsConfigBuilder(b),
	}, opts...)...)
}

func TestTLSEcho(t *testing.T) {
	set := testcert.New(t)
	var srvConn, cliConn atomic.Value
	srvRec := newRecorder(true)
	srv := startServer(t, newTLSServer(set, set.Server, set.CA),
		withCodec(srvRec, func(s getty.Session) { srvConn.Store(s.Conn()) }))
	cliRec := newRecorder(false)
	cli := startClient(t, newTLSClient(srv, set, &set.Client), withCodec(cliRec, func(s getty.Session) { cliConn.Store(s.Conn()) }))

	s, err := cli.Session()
	require.NoError(t, err)
	for i := 0; i < 50; i++ {
		_, _, err := s.WritePkg("over tls", time.Second)
		require.NoError(t, err)
		assert.Equal(t, "over tls", cliRec.next(t))
	}
	// Conn is the *tls.Conn, handshake done before the callback.
	for _, v := range []any{srvConn.Load(), cliConn.Load()} {
		tc, ok := v.(*tls.Conn)
		require.True(t, ok, "Conn() is %T", v)
		st := tc.ConnectionState()
		assert.True(t, st.HandshakeComplete)
		assert.GreaterOrEqual(t, st.Version, uint16(tls.VersionTLS12))
	}
	st := srvConn.Load().(*tls.Conn).ConnectionState()
	require.Len(t, st.PeerCertificates, 1, "the server verified the client certificate")
	assert.Equal(t, "client", st.PeerCertificates[0].Subject.CommonName)

	cli.Close()
	srvRec.waitClosed(t, 1)
	_, _, errs := srvRec.counts()
	assert.Empty(t, errs)
}

// dialRefused runs a client that may try once and returns the error it
// reports, or the error its session got when the refusal only shows after
// the client's handshake (TLS 1.3 client certificates).
func dialRefused(t *testing.T, cli getty.Client, reported chan error) error {
	t.Helper()
	defer cli.Close()
	rec := newRecorder(false)
	cli.Start(withCodec(rec))
	deadline := time.After(5 * time.Second)
	for {
		select {
		case err := <-reported:
			return err
		case <-deadline:
			t.Fatal("the client was not refused")
			return nil
		case <-time.After(5 * time.Millisecond):
			if _, _, errs := rec.counts(); len(errs) > 0 {
				return errs[0]
			}
		}
	}
}

func refusingClientOpts(reported chan error) []getty.ClientOption {
	return []getty.ClientOption{
		getty.WithReconnectAttempts(1),
		getty.WithClientErrorHandler(func(_ getty.Client, err error) { reported <- err }),
	}
}

// A client refuses a server certificate of an unknown CA, an expired one,
// and one for another name; the server never opens a session for it.
func TestTLSServerCertificateRejected(t *testing.T) {
	set := testcert.New(t)
	cases := []struct {
		name  string
		pair  testcert.Pair
		check func(t *testing.T, err error)
	}{
		{"unknown CA", set.UnknownCA, func(t *testing.T, err error) {
			var e x509.UnknownAuthorityError
			assert.ErrorAs(t, err, &e)
		}},
		{"expired", set.Expired, func(t *testing.T, err error) {
			var e x509.CertificateInvalidError
			require.ErrorAs(t, err, &e)
			assert.Equal(t, x509.Expired, e.Reason)
		}},
		{"wrong name", set.WrongName, func(t *testing.T, err error) {
			var e x509.HostnameError
			assert.ErrorAs(t, err, &e)
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var callbacks atomic.Int32
			srvRec := newRecorder(true)
			srv := startServer(t, newTLSServer(set, c.pair, "", getty.WithServerHandshakeTimeout(time.Second)),
				withCodec(srvRec, func(getty.Session) { callbacks.Add(1) }))
			reported := make(chan error, 1)
			err := dialRefused(t, newTLSClient(srv, set, nil, refusingClientOpts(reported)...), reported)
			assert.ErrorIs(t, err, getty.ErrReconnectGaveUp)
			c.check(t, err)
			time.Sleep(50 * time.Millisecond) // the server's failed handshake has ended by now
			assert.Zero(t, callbacks.Load(), "new-session callback after a failed handshake")
			opens, _, _ := srvRec.counts()
			assert.Zero(t, opens)
		})
	}
}

// A server with a trust CA refuses clients without a certificate or with a
// bad one, never opening a session for them, and keeps serving good ones.
func TestTLSClientCertificateRejected(t *testing.T) {
	set := testcert.New(t)
	var callbacks atomic.Int32
	srvRec := newRecorder(true)
	srv := startServer(t, newTLSServer(set, set.Server, set.CA, getty.WithServerHandshakeTimeout(time.Second)),
		withCodec(srvRec, func(getty.Session) { callbacks.Add(1) }))

	cases := []struct {
		name string
		pair *testcert.Pair
	}{
		{"no client certificate", nil},
		{"unknown CA", &set.UnknownCA},
		{"expired", &set.Expired},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			reported := make(chan error, 1)
			err := dialRefused(t, newTLSClient(srv, set, c.pair, refusingClientOpts(reported)...), reported)
			// With TLS 1.3 the client finishes its side of the handshake
			// before the server checks its certificate, so the refusal is
			// the server's alert on the first read.
			assert.ErrorContains(t, err, "tls: ")
		})
	}
	time.Sleep(50 * time.Millisecond)
	assert.Zero(t, callbacks.Load(), "new-session callback for a refused client")
	opens, _, _ := srvRec.counts()
	assert.Zero(t, opens)

	// The server keeps serving.
	rec := newRecorder(false)
	cli := startClient(t, newTLSClient(srv, set, &set.Client), withCodec(rec))
	s, err := cli.Session()
	require.NoError(t, err)
	_, _, err = s.WritePkg("still served", 0)
	require.NoError(t, err)
	assert.Equal(t, "still served", rec.next(t))
}

// A raw crypto/tls client sees the server's refusal too.
func TestTLSRawClientWithoutCertificate(t *testing.T) {
	set := testcert.New(t)
	var callbacks atomic.Int32
	srv := startServer(t, newTLSServer(set, set.Server, set.CA),
		withCodec(newRecorder(true), func(getty.Session) { callbacks.Add(1) }))
	for _, version := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		cfg := set.ClientTLS()
		cfg.MinVersion, cfg.MaxVersion = version, version
		c, err := tls.Dial("tcp", srv.Addr().String(), cfg)
		if err == nil {
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, err = c.Read(make([]byte, 1))
			c.Close()
		}
		require.Error(t, err)
		assert.False(t, errors.Is(err, io.EOF), "refused with an alert, not a bare close")
		assert.ErrorContains(t, err, "tls: ") // 1.2: handshake failure; 1.3: certificate required
	}
	// TLS below 1.2 is refused.
	cfg := set.ClientTLS()
	cfg.MinVersion, cfg.MaxVersion = tls.VersionTLS10, tls.VersionTLS11
	_, err := tls.Dial("tcp", srv.Addr().String(), cfg)
	assert.Error(t, err)
	time.Sleep(50 * time.Millisecond)
	assert.Zero(t, callbacks.Load())
}

// A peer that connects and never completes the handshake is dropped after
// the handshake timeout, before any callback; garbage fails at once.
func TestTLSHandshakeTimeoutAndGarbage(t *testing.T) {
	set := testcert.New(t)
	var callbacks atomic.Int32
	srv := startServer(t, newTLSServer(set, set.Server, "", getty.WithServerHandshakeTimeout(200*time.Millisecond)),
		withCodec(newRecorder(true), func(getty.Session) { callbacks.Add(1) }))

	start := time.Now()
	waitEOF(t, rawDial(t, srv))
	assert.Less(t, time.Since(start), 3*time.Second)
	assert.GreaterOrEqual(t, time.Since(start), 150*time.Millisecond)

	c := rawDial(t, srv)
	_, _ = io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	waitEOF(t, c)
	assert.Zero(t, callbacks.Load())
}

// A misconfigured TLS server fails Serve with an error, and a TLS client
// without a builder reports one.
func TestTLSConfigErrors(t *testing.T) {
	srv := getty.NewTCPServer(getty.WithLocalAddress("127.0.0.1:0"), getty.WithServerSslEnabled(true))
	assert.ErrorContains(t, srv.Serve(withCodec(newRecorder(false))), "TlsConfigBuilder")
	srv.Close()

	srv = getty.NewTCPServer(getty.WithLocalAddress("127.0.0.1:0"), getty.WithServerSslEnabled(true),
		getty.WithServerTlsConfigBuilder(&getty.ServerTlsConfigBuilder{ServerKeyCertChainPath: "/nonexistent"}))
	assert.ErrorContains(t, srv.Serve(withCodec(newRecorder(false))), "nonexistent")
	srv.Close()
}
