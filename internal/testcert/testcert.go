// Package testcert makes throwaway certificates for tests: a CA, server and
// client certificates it signs, and the bad ones a TLS test needs (expired,
// wrong name, signed by an unknown CA). Keys are ECDSA P-256, so a set takes
// a millisecond or two to make. Everything is written as PEM files into a
// t.TempDir(), which the test framework removes.
package testcert

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Pair names the PEM files of one certificate and its private key.
type Pair struct {
	Cert string // certificate, PEM
	Key  string // private key (PKCS#8), PEM
}

// TLS loads the pair for a tls.Config.
func (p Pair) TLS(t testing.TB) tls.Certificate {
	t.Helper()
	c, err := tls.LoadX509KeyPair(p.Cert, p.Key)
	if err != nil {
		t.Fatalf("testcert: load %s: %v", p.Cert, err)
	}
	return c
}

// Set is one family of certificates. Every leaf is valid for both server
// and client authentication, so any of them can play either side.
type Set struct {
	Dir string

	CA      string // the trusted CA's certificate, PEM
	OtherCA string // a CA nobody trusts, PEM

	Server    Pair // signed by CA; SANs 127.0.0.1, ::1, localhost
	Client    Pair // signed by CA; CN "client"
	Expired   Pair // signed by CA, right SANs, expired an hour ago
	WrongName Pair // signed by CA; valid only for wrong.example
	UnknownCA Pair // right SANs, signed by OtherCA

	caPool *x509.CertPool
}

// Pool returns a pool holding CA.
func (s *Set) Pool() *x509.CertPool { return s.caPool }

// ServerTLS returns a server configuration with the Server pair.
func (s *Set) ServerTLS(t testing.TB) *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{s.Server.TLS(t)}, MinVersion: tls.VersionTLS12}
}

// ClientTLS returns a client configuration that trusts CA.
func (s *Set) ClientTLS() *tls.Config {
	return &tls.Config{RootCAs: s.caPool, MinVersion: tls.VersionTLS12}
}

type authority struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

// New makes a Set in a fresh t.TempDir(). It fails the test on any error.
func New(t testing.TB) *Set {
	t.Helper()
	dir := t.TempDir()
	s := &Set{Dir: dir}
	now := time.Now()

	ca := newCA(t, "getty test CA", now)
	other := newCA(t, "getty unknown CA", now)
	s.CA = writeCert(t, dir, "ca.pem", ca.cert.Raw)
	s.OtherCA = writeCert(t, dir, "other-ca.pem", other.cert.Raw)
	s.caPool = x509.NewCertPool()
	s.caPool.AddCert(ca.cert)

	local := []string{"localhost"}
	ips := []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	valid := [2]time.Time{now.Add(-time.Hour), now.Add(24 * time.Hour)}

	s.Server = leaf(t, dir, "server", ca, "server", local, ips, valid)
	s.Client = leaf(t, dir, "client", ca, "client", nil, nil, valid)
	s.Expired = leaf(t, dir, "expired", ca, "expired", local, ips,
		[2]time.Time{now.Add(-48 * time.Hour), now.Add(-time.Hour)})
	s.WrongName = leaf(t, dir, "wrong-name", ca, "wrong.example", []string{"wrong.example"}, nil, valid)
	s.UnknownCA = leaf(t, dir, "unknown-ca", other, "server", local, ips, valid)
	return s
}

// nextSerial returns a random 62-bit serial number, so sets made in
// parallel never share one.
func nextSerial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return n.Add(n, big.NewInt(1))
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("testcert: key: %v", err)
	}
	return k
}

func newCA(t testing.TB, name string, now time.Time) authority {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          nextSerial(),
		Subject:               pkix.Name{CommonName: name, Organization: []string{"getty tests"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(7 * 24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatalf("testcert: CA: %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("testcert: CA: %v", err)
	}
	return authority{cert: cert, key: key}
}

func leaf(t testing.TB, dir, file string, ca authority, cn string, dns []string, ips []net.IP, valid [2]time.Time) Pair {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: nextSerial(),
		Subject:      pkix.Name{CommonName: cn, Organization: []string{"getty tests"}},
		NotBefore:    valid[0],
		NotAfter:     valid[1],
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames:     dns,
		IPAddresses:  ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatalf("testcert: %s: %v", file, err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatalf("testcert: %s key: %v", file, err)
	}
	return Pair{
		Cert: writeCert(t, dir, file+".pem", der),
		Key:  writePEM(t, dir, file+"-key.pem", "PRIVATE KEY", pkcs8),
	}
}

func writeCert(t testing.TB, dir, name string, der []byte) string {
	return writePEM(t, dir, name, "CERTIFICATE", der)
}

func writePEM(t testing.TB, dir, name, typ string, der []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatalf("testcert: write %s: %v", path, err)
	}
	return path
}
