// Command tls-echo runs a getty TLS echo server and a client in one process.
// At startup it makes a throwaway certificate authority, a server
// certificate for 127.0.0.1 and a client certificate, writes them as PEM
// files to a temporary directory, and hands the file names to getty's
// ServerTlsConfigBuilder and ClientTlsConfigBuilder. The server requires a
// client certificate signed by the CA (mutual TLS). It prints what each side
// sees of the handshake, the echoed messages, and a plain crypto/tls client
// without a certificate being refused.
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	getty "github.com/getty-go/getty"
)

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := run(ctx, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "tls-echo:", err)
		os.Exit(1)
	}
}

// printer serialises lines written from several goroutines.
type printer struct {
	mu  sync.Mutex
	out io.Writer
}

func (p *printer) printf(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.out, format+"\n", args...)
}

// describe tells what a TLS session negotiated. getty completes the
// handshake before the new-session callback, so the state is final here.
func describe(s getty.Session) string {
	c, ok := s.Conn().(*tls.Conn)
	if !ok {
		return fmt.Sprintf("not TLS (%T)", s.Conn())
	}
	st := c.ConnectionState()
	peer := "no certificate"
	if len(st.PeerCertificates) > 0 {
		peer = fmt.Sprintf("peer certificate CN=%q", st.PeerCertificates[0].Subject.CommonName)
	}
	return fmt.Sprintf("%s, %s, %s", tls.VersionName(st.Version), tls.CipherSuiteName(st.CipherSuite), peer)
}

type echoServer struct {
	getty.BaseListener
	p *printer
}

func (h echoServer) OnOpen(s getty.Session) error {
	h.p.printf("server: session %d open from %s: %s", s.ID(), s.RemoteAddr(), describe(s))
	return nil
}

func (h echoServer) OnMessage(s getty.Session, pkg any) {
	if _, _, err := s.WritePkg(pkg, time.Second); err != nil {
		h.p.printf("server: reply failed: %v", err)
	}
}

func (h echoServer) OnClose(s getty.Session) {
	h.p.printf("server: session %d closed", s.ID())
}

type echoClient struct {
	getty.BaseListener
	p       *printer
	replies chan string
}

func (h echoClient) OnOpen(s getty.Session) error {
	h.p.printf("client: session %d open to %s: %s", s.ID(), s.RemoteAddr(), describe(s))
	return nil
}

func (h echoClient) OnMessage(_ getty.Session, pkg any) {
	h.replies <- string(pkg.(*getty.Frame).Payload) // copied: the frame is recycled
}

func run(ctx context.Context, out io.Writer) error {
	p := &printer{out: out}

	dir, err := os.MkdirTemp("", "getty-tls-echo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	certs, err := makeCerts(dir)
	if err != nil {
		return err
	}
	p.printf("certs: CA, server (IP 127.0.0.1) and client certificates written to %s", dir)

	codec := &getty.LengthFieldCodec{}
	server := getty.NewTCPServer(
		getty.WithLocalAddress("127.0.0.1:0"),
		getty.WithServerSslEnabled(true),
		getty.WithServerTlsConfigBuilder(&getty.ServerTlsConfigBuilder{
			ServerKeyCertChainPath:        certs.serverCert,
			ServerPrivateKeyPath:          certs.serverKey,
			ServerTrustCertCollectionPath: certs.ca, // client certificates required, signed by this CA
		}),
		getty.WithServerWorkerPool(2),
	)
	defer server.Close() // a no-op after Shutdown
	server.RunEventLoop(func(s getty.Session) error {
		s.SetPkgHandler(codec)
		s.SetEventListener(echoServer{p: p})
		return nil
	})
	if server.Addr() == nil {
		return errors.New("server did not start (see the log)")
	}
	addr := server.Addr().String()
	p.printf("server: listening on %s (TLS, client certificate required)", addr)

	replies := make(chan string, 8)
	client := getty.NewTCPClient(
		getty.WithServerAddress(addr), // the client verifies the server's certificate for 127.0.0.1
		getty.WithClientSslEnabled(true),
		getty.WithClientTlsConfigBuilder(&getty.ClientTlsConfigBuilder{
			ClientKeyCertChainPath:        certs.clientCert,
			ClientPrivateKeyPath:          certs.clientKey,
			ClientTrustCertCollectionPath: certs.ca,
		}),
	)
	defer client.Close()
	dialCtx, cancelDial := context.WithTimeout(ctx, 5*time.Second)
	defer cancelDial()
	if err := client.RunEventLoopContext(dialCtx, func(s getty.Session) error {
		s.SetPkgHandler(codec)
		s.SetEventListener(echoClient{p: p, replies: replies})
		return nil
	}); err != nil {
		return err
	}

	for i := 1; i <= 3; i++ {
		s, err := client.Session()
		if err != nil {
			return err
		}
		msg := fmt.Sprintf("hello over TLS #%d", i)
		p.printf("client: send %q", msg)
		if _, _, err := s.WritePkg(msg, time.Second); err != nil {
			return err
		}
		select {
		case r := <-replies:
			p.printf("client: got %q", r)
		case <-ctx.Done():
			return ctx.Err()
		}
	}

	// A client that trusts the CA but has no certificate of its own.
	p.printf("plain crypto/tls client without a certificate: %v", dialWithoutCert(ctx, addr, certs.ca))

	client.Close()
	shutdownCtx, cancelShutdown := context.WithTimeout(ctx, 2*time.Second)
	defer cancelShutdown()
	if err := server.Shutdown(shutdownCtx); err != nil {
		return err
	}
	// After Shutdown the counters are final. (The handshake that failed
	// never made a session, so it is not counted.)
	st, _ := getty.EndpointStatsOf(server)
	p.printf("server stats: %d sessions opened, %d packages in, %d out, %d ended with an error",
		st.SessionsTotal, st.ReadPkgs, st.WritePkgs, st.Errors)
	p.printf("done")
	return nil
}

// dialWithoutCert connects with crypto/tls and no client certificate, and
// returns what the server answered. With TLS 1.3 the client's side of the
// handshake finishes first; the server's refusal arrives on the first read.
func dialWithoutCert(ctx context.Context, addr, caFile string) error {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	d := tls.Dialer{Config: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	dctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	conn, err := d.DialContext(dctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(3 * time.Second))
	frame, _ := (&getty.LengthFieldCodec{}).AppendPkg(nil, nil, "let me in")
	if _, err := conn.Write(frame); err != nil {
		return err
	}
	if _, err := conn.Read(make([]byte, 64)); err != nil {
		return err
	}
	return errors.New("the server answered: mutual TLS is not enforced")
}

// certFiles names the PEM files makeCerts wrote.
type certFiles struct {
	ca                    string
	serverCert, serverKey string
	clientCert, clientKey string
}

// makeCerts makes a CA, a server certificate for 127.0.0.1 and localhost,
// and a client certificate, all ECDSA P-256 and valid for an hour, and
// writes them to dir. Never use such throwaway certificates beyond a demo.
func makeCerts(dir string) (certFiles, error) {
	f := certFiles{
		ca:         filepath.Join(dir, "ca.pem"),
		serverCert: filepath.Join(dir, "server.pem"),
		serverKey:  filepath.Join(dir, "server-key.pem"),
		clientCert: filepath.Join(dir, "client.pem"),
		clientKey:  filepath.Join(dir, "client-key.pem"),
	}
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return f, err
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "getty tls-echo demo CA"},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return f, err
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return f, err
	}
	if err := writePEM(f.ca, "CERTIFICATE", caDER); err != nil {
		return f, err
	}

	leaf := func(serial int64, cn string, usage x509.ExtKeyUsage, ips []net.IP, dns []string, certPath, keyPath string) error {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return err
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial),
			Subject:      pkix.Name{CommonName: cn},
			NotBefore:    now.Add(-time.Minute),
			NotAfter:     now.Add(time.Hour),
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  []x509.ExtKeyUsage{usage},
			IPAddresses:  ips,
			DNSNames:     dns,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
		if err != nil {
			return err
		}
		keyDER, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return err
		}
		if err := writePEM(certPath, "CERTIFICATE", der); err != nil {
			return err
		}
		return writePEM(keyPath, "PRIVATE KEY", keyDER)
	}
	if err := leaf(2, "getty-demo-server", x509.ExtKeyUsageServerAuth,
		[]net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}, []string{"localhost"}, f.serverCert, f.serverKey); err != nil {
		return f, err
	}
	if err := leaf(3, "getty-demo-client", x509.ExtKeyUsageClientAuth, nil, nil, f.clientCert, f.clientKey); err != nil {
		return f, err
	}
	return f, nil
}

func writePEM(path, typ string, der []byte) error {
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600)
}
