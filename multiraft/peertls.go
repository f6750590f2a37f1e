package multiraft

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"time"
)

// The Raft port carries the cluster's state, its signing key among it:
// whoever can send a node Raft messages can rewrite the catalog. Without
// TLS the port must be reachable by the cluster's nodes alone (a private
// network, a firewall). With it (raft_tls_cert, raft_tls_key, raft_tls_ca)
// every connection is mutual TLS: each end presents a certificate signed
// by the cluster's CA and accepts only one signed by it, as etcd's peer
// TLS does. Peers are addressed by their Raft addresses, so a
// certificate need not name them: the CA, which signs nothing but the
// cluster's nodes, is what makes a peer.

// peerHandshakeTimeout bounds an accepted connection's TLS handshake: a
// socket that never finishes it holds nothing for longer.
const peerHandshakeTimeout = 5 * time.Second

// PeerTLSConfig is the configuration of both ends of the Raft transport:
// cert gives this node's certificate, roots the cluster's CA (a pool of
// one or more: both CAs while it is replaced). Both are asked at each
// handshake, so a renewed certificate or CA is taken without a restart.
func PeerTLSConfig(cert func() *tls.Certificate, roots func() *x509.CertPool) *tls.Config {
	verify := func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return errors.New("the peer presented no certificate")
		}
		inter := x509.NewCertPool()
		for _, c := range cs.PeerCertificates[1:] {
			inter.AddCert(c)
		}
		_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: roots(), Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
		if err != nil {
			return fmt.Errorf("the peer's certificate is not the cluster CA's: %w", err)
		}
		return nil
	}
	return &tls.Config{
		MinVersion:           tls.VersionTLS13,
		GetCertificate:       func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return cert(), nil },
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert(), nil },
		// Verified by VerifyConnection against the cluster's CA alone,
		// not by name (peers are dialed by address).
		ClientAuth:         tls.RequireAnyClientCert,
		InsecureSkipVerify: true,
		VerifyConnection:   verify,
	}
}

// peerServer wraps an accepted connection in TLS and completes the
// handshake within peerHandshakeTimeout.
func peerServer(c net.Conn, cfg *tls.Config) (net.Conn, error) {
	tc := tls.Server(c, cfg)
	tc.SetDeadline(time.Now().Add(peerHandshakeTimeout))
	if err := tc.Handshake(); err != nil {
		return nil, err
	}
	tc.SetDeadline(time.Time{})
	return tc, nil
}
