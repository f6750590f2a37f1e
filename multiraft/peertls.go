package multiraft

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
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
			return fmt.Errorf("%w: it presented none", errUntrustedPeer)
		}
		inter := x509.NewCertPool()
		for _, c := range cs.PeerCertificates[1:] {
			inter.AddCert(c)
		}
		_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: roots(), Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
		if err != nil {
			return fmt.Errorf("%w: %w", errUntrustedPeer, err)
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

// Turning TLS on or off in a running cluster, one node at a time, takes
// a node that speaks both (raft_tls_permissive, as Istio's PERMISSIVE
// mTLS and Nomad's rpc_upgrade_mode): it accepts a peer's TLS and its
// plain frames alike, told apart by the first byte (a TLS handshake
// record is 22, a frame's kind 1 or 2), and dials TLS first, then plain
// if the peer does not answer TLS. Its security is then plain TCP's:
// whoever reaches the port may speak plain. Turned off (SIGHUP), its
// plain connections are closed and their peers dial again, in TLS.

// tlsHandshakeRecord is the first byte of a TLS connection.
const tlsHandshakeRecord = 22

var (
	errUntrustedPeer = errors.New("the peer's certificate is not the cluster CA's")
	errPeerSpeaksTLS = errors.New("the peer speaks TLS and this node has no raft_tls_cert, raft_tls_key and raft_tls_ca: set them on every node (raft_tls_permissive while switching; docs/operations.md)")
	errPeerPlain     = errors.New("the peer sent plain frames and this node takes TLS only: set raft_tls_* on every node, or raft_tls_permissive on this one while switching (docs/operations.md)")
)

// peerMode is how the transport's two ends secure a connection: tls nil
// is plain TCP; with tls, plain is taken and tried only while permissive.
type peerMode struct {
	tls *tls.Config

	mu         sync.Mutex
	permissive bool
	plain      map[net.Conn]struct{} // open without TLS although tls is set
}

func newPeerMode(cfg *tls.Config, permissive bool) *peerMode {
	return &peerMode{tls: cfg, permissive: permissive && cfg != nil, plain: map[net.Conn]struct{}{}}
}

// setPermissive turns permissive on or off; off closes the plain
// connections (their peers dial again).
func (m *peerMode) setPermissive(on bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.permissive = on && m.tls != nil
	if !m.permissive {
		for c := range m.plain {
			c.Close()
			delete(m.plain, c)
		}
	}
}

// admitPlain records c as a plain connection if plain is allowed.
func (m *peerMode) admitPlain(c net.Conn) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.permissive {
		return false
	}
	m.plain[c] = struct{}{}
	return true
}

func (m *peerMode) forget(c net.Conn) {
	m.mu.Lock()
	delete(m.plain, c)
	m.mu.Unlock()
}

// plainConns is the count of open plain connections while tls is set.
func (m *peerMode) plainConns() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.plain)
}

// accept readies an accepted connection by its first byte, which must
// come within peerHandshakeTimeout: TLS (the
// handshake done) or plain frames. plain reports a connection admitted
// without TLS although this node has it (forget it once closed).
func (m *peerMode) accept(c net.Conn) (conn net.Conn, plain bool, err error) {
	// A peer dials when it has a frame to send: its first byte comes at
	// once, and its handshake within the timeout.
	c.SetReadDeadline(time.Now().Add(peerHandshakeTimeout))
	r := bufio.NewReaderSize(c, 16)
	first, err := r.Peek(1)
	if err != nil {
		return nil, false, err
	}
	sc := &sniffedConn{Conn: c, r: r}
	isTLS := first[0] == tlsHandshakeRecord
	switch {
	case m.tls == nil && isTLS:
		return nil, false, errPeerSpeaksTLS
	case m.tls == nil:
		c.SetReadDeadline(time.Time{})
		return sc, false, nil
	case isTLS:
		tc, err := peerServer(sc, m.tls)
		return tc, false, err
	case m.admitPlain(c):
		c.SetReadDeadline(time.Time{})
		return sc, true, nil
	default:
		return nil, false, errPeerPlain
	}
}

// dial connects to a peer: TLS when this node has it, and plain when
// that handshake fails without the peer answering in TLS while
// permissive (it does not speak TLS yet, or no more).
func (m *peerMode) dial(ctx context.Context, target string) (conn net.Conn, plain bool, err error) {
	d := net.Dialer{Timeout: dialTimeout}
	raw, err := d.DialContext(ctx, "tcp", target)
	if err != nil || m.tls == nil {
		return raw, false, err
	}
	hctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	tc := tls.Client(raw, m.tls)
	herr := tc.HandshakeContext(hctx)
	if herr == nil {
		return tc, false, nil
	}
	raw.Close()
	m.mu.Lock()
	permissive := m.permissive
	m.mu.Unlock()
	if !permissive || spokeTLS(herr) {
		return nil, false, herr
	}
	if raw, err = d.DialContext(ctx, "tcp", target); err != nil {
		return nil, false, err
	}
	if !m.admitPlain(raw) {
		raw.Close()
		return nil, false, herr
	}
	return raw, true, nil
}

// spokeTLS reports whether a failed handshake's peer answered in TLS
// (an alert, or a certificate this node does not trust): such a peer is
// not sent plain frames. A plain peer closes, resets, sends bytes that
// are not TLS, or (an Eddy build before the first byte was checked)
// waits for the rest of a frame.
func spokeTLS(err error) bool {
	var op *net.OpError
	return errors.Is(err, errUntrustedPeer) || errors.As(err, &op) && op.Op == "remote error"
}

// sniffedConn reads the bytes peeked at first, then the connection.
type sniffedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *sniffedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// SetPeerTLSPermissive turns raft_tls_permissive on or off (with PeerTLS;
// without it, nothing changes): off closes the plain connections to and
// from peers, who dial again in TLS.
func (h *Host) SetPeerTLSPermissive(on bool) { h.peers.setPermissive(on) }

// PlainPeerConnections is the count of open Raft connections without TLS
// on a node that has it: 0 on every node once all speak TLS.
func (h *Host) PlainPeerConnections() int { return h.peers.plainConns() }

// strangers bounds the accepted connections not yet known to be peers:
// those in their TLS handshake (up to peerHandshakeTimeout) or, without
// TLS, before their first byte. A peer's connections live long and
// reconnect within a second; a flood of sockets that never finish
// costs a goroutine and a handshake's state each, so more than max at
// once, or than max/16 (at least 4) from one address (an IPv6 /64), are
// closed at accept. Past the handshake a connection is a peer's and is
// not counted.
type strangers struct {
	max, perIP int

	mu sync.Mutex
	n  int
	by map[netip.Addr]int
}

func newStrangers(limit int) *strangers {
	return &strangers{max: limit, perIP: max(4, limit/16), by: map[netip.Addr]int{}}
}

// enter counts c's source in, or says which bound it is over.
func (s *strangers) enter(a netip.Addr) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.n >= s.max {
		return "max_handshakes"
	}
	if s.by[a] >= s.perIP {
		return "max_handshakes_per_ip"
	}
	s.n++
	s.by[a]++
	return ""
}

func (s *strangers) leave(a netip.Addr) {
	s.mu.Lock()
	s.n--
	if s.by[a]--; s.by[a] <= 0 {
		delete(s.by, a)
	}
	s.mu.Unlock()
}
