package node

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"sync/atomic"

	"github.com/VictoriaMetrics/metrics"
	"github.com/eddy-broker/eddy/multiraft"
)

// certFiles is a listener's certificate, loaded from its files and
// loaded again on Reload (a certificate renewed in place, as certbot
// does, is served from the next handshake on).
type certFiles struct {
	listener, certFile, keyFile string
	cert                        atomic.Pointer[tls.Certificate]
}

// loadTLS loads a listener's certificate and exports its expiry
// (eddy_tls_certificate_expiry_timestamp_seconds), so an alert fires
// before clients start failing.
func (n *Node) loadTLS(m *metrics.Set, listener, certFile, keyFile string) (*tls.Config, error) {
	cf := &certFiles{listener: listener, certFile: certFile, keyFile: keyFile}
	if err := cf.load(); err != nil {
		return nil, err
	}
	m.GetOrCreateGauge(fmt.Sprintf(`eddy_tls_certificate_expiry_timestamp_seconds{listener=%q}`, listener), func() float64 {
		if leaf := cf.cert.Load().Leaf; leaf != nil {
			return float64(leaf.NotAfter.Unix())
		}
		return 0
	})
	n.certs = append(n.certs, cf)
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
		return cf.cert.Load(), nil
	}}, nil
}

// raftTLS is the Raft transport's mutual TLS (raft_tls_cert, raft_tls_key,
// raft_tls_ca), nil without it. The certificate is reloaded as the
// listeners' are; the CA is read at start.
func (n *Node) raftTLS(m *metrics.Set) (*tls.Config, error) {
	if n.cfg.RaftTLSCert == "" {
		return nil, nil
	}
	ca, err := os.ReadFile(n.cfg.RaftTLSCA)
	if err != nil {
		return nil, fmt.Errorf("raft_tls_ca: %w", err)
	}
	own, err := n.loadTLS(m, "raft", n.cfg.RaftTLSCert, n.cfg.RaftTLSKey)
	if err != nil {
		return nil, err
	}
	cfg, err := multiraft.PeerTLSConfig(func() *tls.Certificate { c, _ := own.GetCertificate(nil); return c }, ca)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", n.cfg.RaftTLSCA, err)
	}
	return cfg, nil
}

func (cf *certFiles) load() error {
	cert, err := tls.LoadX509KeyPair(cf.certFile, cf.keyFile)
	if err != nil {
		return fmt.Errorf("%s tls: %w", cf.listener, err)
	}
	cf.cert.Store(&cert)
	return nil
}

// httpsPeers is how this node reaches the others' HTTPS (forwarded
// requests) when its own HTTP is TLS, nil when it is not: their
// certificates are verified, by name, against the system's roots, the
// cluster's CA (raft_tls_ca) and the certificates in http_tls_cert's
// file (one certificate shared by the nodes, or its chain).
func (n *Node) httpsPeers() (*tls.Config, error) {
	if n.cfg.HTTPTLSCert == "" {
		return nil, nil
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	for _, f := range []string{n.cfg.RaftTLSCA, n.cfg.HTTPTLSCert} {
		if f == "" {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		for block, rest := pem.Decode(b); block != nil; block, rest = pem.Decode(rest) {
			if c, err := x509.ParseCertificate(block.Bytes); err == nil && block.Type == "CERTIFICATE" {
				pool.AddCert(c)
			}
		}
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}, nil
}
