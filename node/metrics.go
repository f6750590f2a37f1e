package node

import (
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync/atomic"

	"github.com/VictoriaMetrics/metrics"
	"github.com/eddy-broker/eddy/internal/buildinfo"
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

// nodeMetrics registers what describes the node itself: its build, and
// when its bootstrap admin token expires.
func (n *Node) nodeMetrics() {
	n.metrics.GetOrCreateGauge(fmt.Sprintf(`eddy_build_info{version=%q,commit=%q}`, buildinfo.Version(), buildinfo.Commit()), func() float64 { return 1 })
	path := n.cfg.AdminTokenPath()
	n.metrics.GetOrCreateGauge("eddy_admin_token_expiry_timestamp_seconds", func() float64 { return float64(tokenExpiry(path)) })
}

// tokenExpiry reads a JWT file's exp claim, unverified (the node wrote
// it); 0 when it cannot.
func tokenExpiry(path string) int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	parts := strings.Split(strings.TrimSpace(string(b)), ".")
	if len(parts) != 3 {
		return 0
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return 0
	}
	var c struct {
		Exp int64 `json:"exp"`
	}
	json.Unmarshal(payload, &c)
	return c.Exp
}
