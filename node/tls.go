package node

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/eddy-broker/eddy/multiraft"
)

// A node's TLS files are read at start and again on Reload (SIGHUP): a
// certificate renewed in place, as certbot does, is served from the next
// handshake on, and a CA is replaced without a restart (both CAs in its
// file while the nodes' certificates change, then the new one alone;
// docs/operations.md). A file that fails to load keeps what was loaded.

// tlsFile is a TLS file Reload reads again.
type tlsFile interface {
	load() error
	name() string
}

// certFiles is a listener's certificate and key.
type certFiles struct {
	listener, certFile, keyFile string
	cert                        atomic.Pointer[tls.Certificate]
}

func (cf *certFiles) name() string { return cf.listener + " certificate" }

func (cf *certFiles) load() error {
	cert, err := tls.LoadX509KeyPair(cf.certFile, cf.keyFile)
	if err != nil {
		return fmt.Errorf("%s tls: %w", cf.listener, err)
	}
	cf.cert.Store(&cert)
	return nil
}

// trustFiles is the certificates a node trusts, from PEM files (and the
// system's roots when system is set).
type trustFiles struct {
	what   string
	files  []string
	system bool
	pool   atomic.Pointer[x509.CertPool]
	// expires is the earliest expiry among the files' certificates
	// (Unix seconds).
	expires atomic.Int64
}

func (tf *trustFiles) name() string { return tf.what }

func (tf *trustFiles) load() error {
	pool := x509.NewCertPool()
	if tf.system {
		if sys, err := x509.SystemCertPool(); err == nil {
			pool = sys
		}
	}
	var expires int64
	n := 0
	for _, f := range tf.files {
		b, err := os.ReadFile(f)
		if err != nil {
			return fmt.Errorf("%s: %w", tf.what, err)
		}
		for block, rest := pem.Decode(b); block != nil; block, rest = pem.Decode(rest) {
			c, err := x509.ParseCertificate(block.Bytes)
			if err != nil || block.Type != "CERTIFICATE" {
				continue
			}
			pool.AddCert(c)
			if n++; expires == 0 || c.NotAfter.Unix() < expires {
				expires = c.NotAfter.Unix()
			}
		}
	}
	if n == 0 && !tf.system {
		return fmt.Errorf("%s: %v holds no PEM certificate", tf.what, tf.files)
	}
	tf.pool.Store(pool)
	tf.expires.Store(expires)
	return nil
}

// watch loads f, keeps it for Reload, and exports its expiry
// (eddy_tls_certificate_expiry_timestamp_seconds), so an alert fires
// before peers and clients start failing.
func (n *Node) watch(m *metrics.Set, label string, f tlsFile, expiry func() int64) error {
	if err := f.load(); err != nil {
		return err
	}
	m.GetOrCreateGauge(fmt.Sprintf(`eddy_tls_certificate_expiry_timestamp_seconds{listener=%q}`, label), func() float64 { return float64(expiry()) })
	n.tlsFiles = append(n.tlsFiles, f)
	return nil
}

// loadTLS is a listener's TLS, its certificate from its files.
func (n *Node) loadTLS(m *metrics.Set, listener, certFile, keyFile string) (*tls.Config, error) {
	cf := &certFiles{listener: listener, certFile: certFile, keyFile: keyFile}
	err := n.watch(m, listener, cf, func() int64 {
		if leaf := cf.cert.Load().Leaf; leaf != nil {
			return leaf.NotAfter.Unix()
		}
		return 0
	})
	if err != nil {
		return nil, err
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
		return cf.cert.Load(), nil
	}}, nil
}

// raftTLS is the Raft transport's mutual TLS (raft_tls_cert, raft_tls_key,
// raft_tls_ca), nil without it. Its CA's expiry is exported as the
// listener raft_ca.
func (n *Node) raftTLS(m *metrics.Set) (*tls.Config, error) {
	if n.cfg.RaftTLSCert == "" {
		return nil, nil
	}
	ca := &trustFiles{what: "raft_tls_ca", files: []string{n.cfg.RaftTLSCA}}
	if err := n.watch(m, "raft_ca", ca, ca.expires.Load); err != nil {
		return nil, err
	}
	own, err := n.loadTLS(m, "raft", n.cfg.RaftTLSCert, n.cfg.RaftTLSKey)
	if err != nil {
		return nil, err
	}
	return multiraft.PeerTLSConfig(func() *tls.Certificate { c, _ := own.GetCertificate(nil); return c }, ca.pool.Load), nil
}

// httpsPeers is how this node reaches the others' HTTPS (forwarded
// requests) when its own HTTP is TLS, nil when it is not: their
// certificates are verified, by name, against the system's roots, the
// cluster's CA (raft_tls_ca) and the certificates in http_tls_cert's
// file (one certificate shared by the nodes, or its chain), as loaded
// when the connection is made.
func (n *Node) httpsPeers() (*http.Transport, error) {
	if n.cfg.HTTPTLSCert == "" {
		return nil, nil
	}
	trust := &trustFiles{what: "https peers", files: []string{n.cfg.HTTPTLSCert}, system: true}
	if n.cfg.RaftTLSCA != "" {
		trust.files = append(trust.files, n.cfg.RaftTLSCA)
	}
	if err := trust.load(); err != nil {
		return nil, err
	}
	n.tlsFiles = append(n.tlsFiles, trust)
	return &http.Transport{
		MaxIdleConnsPerHost: 16, IdleConnTimeout: 60 * time.Second,
		DialTLSContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			host, _, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, err
			}
			d := tls.Dialer{Config: &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: trust.pool.Load(), ServerName: host}}
			c, err := d.DialContext(ctx, network, addr)
			var unknown x509.UnknownAuthorityError
			if errors.As(err, &unknown) {
				err = fmt.Errorf("%w (trusted: the system's roots, %v)", err, trust.files)
			}
			return c, err
		},
	}, nil
}
