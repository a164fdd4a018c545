package getty

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
)

// TlsConfigBuilder builds the *tls.Config of a TLS endpoint. A builder that
// fails returns an error, never (nil, nil).
type TlsConfigBuilder interface {
	BuildTlsConfig() (*tls.Config, error)
}

// ServerTlsConfigBuilder builds a server configuration from PEM files. A
// trust collection means client certificates are required and verified
// against it. The minimum version is TLS 1.2.
type ServerTlsConfigBuilder struct {
	ServerKeyCertChainPath        string // certificate chain, PEM
	ServerPrivateKeyPath          string // private key, PEM
	ServerKeyPassword             string // password of an encrypted (legacy PEM) key
	ServerTrustCertCollectionPath string // CA bundle for client certificates, PEM; empty: no client certs
}

// BuildTlsConfig implements TlsConfigBuilder.
func (b *ServerTlsConfigBuilder) BuildTlsConfig() (*tls.Config, error) {
	if b == nil {
		return nil, errors.New("getty: nil ServerTlsConfigBuilder")
	}
	cert, err := loadKeyPair(b.ServerKeyCertChainPath, b.ServerPrivateKeyPath, b.ServerKeyPassword)
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if err := requireClientCerts(cfg, b.ServerTrustCertCollectionPath); err != nil {
		return nil, err
	}
	return cfg, nil
}

// ClientTlsConfigBuilder builds a client configuration from PEM files. The
// server is verified against the trust collection (or the system roots when
// it is empty); a key pair is presented when the server asks for one. The
// minimum version is TLS 1.2.
type ClientTlsConfigBuilder struct {
	ClientKeyCertChainPath        string // certificate chain, PEM; empty: no client certificate
	ClientPrivateKeyPath          string // private key, PEM
	ClientKeyPassword             string // password of an encrypted (legacy PEM) key
	ClientTrustCertCollectionPath string // CA bundle for the server, PEM; empty: system roots
}

// BuildTlsConfig implements TlsConfigBuilder.
func (b *ClientTlsConfigBuilder) BuildTlsConfig() (*tls.Config, error) {
	if b == nil {
		return nil, errors.New("getty: nil ClientTlsConfigBuilder")
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if b.ClientKeyCertChainPath != "" || b.ClientPrivateKeyPath != "" {
		cert, err := loadKeyPair(b.ClientKeyCertChainPath, b.ClientPrivateKeyPath, b.ClientKeyPassword)
		if err != nil {
			return nil, err
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	if b.ClientTrustCertCollectionPath != "" {
		pool, err := loadCertPool(b.ClientTrustCertCollectionPath)
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = pool
	}
	return cfg, nil
}

// buildTLSConfig runs b, which must not be nil, and rejects a builder
// that returns no config and no error.
func buildTLSConfig(b TlsConfigBuilder) (*tls.Config, error) {
	cfg, err := b.BuildTlsConfig()
	if err == nil && cfg == nil {
		err = errors.New("getty: TlsConfigBuilder returned no config")
	}
	return cfg, err
}

// requiredTLSConfig builds the configuration of a TCP endpoint with TLS
// enabled, where a builder is required; side ("server" or "client") names
// the endpoint in the error.
func requiredTLSConfig(b TlsConfigBuilder, side string) (*tls.Config, error) {
	if b == nil {
		return nil, errors.New("getty: TLS enabled without a TlsConfigBuilder")
	}
	cfg, err := buildTLSConfig(b)
	if err != nil {
		return nil, fmt.Errorf("getty: %s tls config: %w", side, err)
	}
	return cfg, nil
}

// requireClientCerts makes a server require client certificates signed by
// the CAs in the PEM file at caPath; an empty path leaves cfg as it is.
func requireClientCerts(cfg *tls.Config, caPath string) error {
	if caPath == "" {
		return nil
	}
	pool, err := loadCertPool(caPath)
	if err != nil {
		return err
	}
	cfg.ClientCAs = pool
	cfg.ClientAuth = tls.RequireAndVerifyClientCert
	return nil
}

func loadKeyPair(certPath, keyPath, password string) (tls.Certificate, error) {
	certPEM, err := os.ReadFile(certPath)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("getty: tls certificate: %w", err)
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("getty: tls private key: %w", err)
	}
	if password != "" {
		block, _ := pem.Decode(keyPEM)
		//lint:ignore SA1019 upstream's option names a password for legacy encrypted PEM keys
		if block != nil && x509.IsEncryptedPEMBlock(block) { //nolint:staticcheck
			//lint:ignore SA1019 see above
			der, err := x509.DecryptPEMBlock(block, []byte(password)) //nolint:staticcheck
			if err != nil {
				return tls.Certificate{}, fmt.Errorf("getty: tls private key: %w", err)
			}
			keyPEM = pem.EncodeToMemory(&pem.Block{Type: block.Type, Bytes: der})
		}
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("getty: tls key pair: %w", err)
	}
	return cert, nil
}

func loadCertPool(path string) (*x509.CertPool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("getty: tls trust collection: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("getty: tls trust collection %s: no PEM certificates", path)
	}
	return pool, nil
}
