package multiraft

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eddy-broker/eddy/internal/testutil"
	"github.com/lni/dragonboat/v4/config"
	"github.com/lni/dragonboat/v4/raftio"
	pb "github.com/lni/dragonboat/v4/raftpb"
)

// testCA is a CA that signs certificates for tests.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool // holding cert alone
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "cluster CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

// node signs a node's certificate (no names: peers are not checked by name).
func (ca *testCA) node(t *testing.T, serial int64) *tls.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "node"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func peerTLS(ca *testCA, cert *tls.Certificate) *tls.Config {
	return PeerTLSConfig(func() *tls.Certificate { return cert }, func() *x509.CertPool { return ca.pool })
}

// TestPeerTLS: with peer TLS a node takes batches from a peer whose
// certificate the cluster's CA signed, and none from a plain connection,
// a peer without a certificate, or one of another CA.
func TestPeerTLS(t *testing.T) {
	ca, other := newTestCA(t), newTestCA(t)
	addr := testutil.FreeAddr(t)
	batches := make(chan pb.MessageBatch, 16)
	srv := (&transportFactory{log: slog.New(slog.DiscardHandler), peers: newPeerMode(peerTLS(ca, ca.node(t, 2)), false)}).Create(config.NodeHostConfig{RaftAddress: addr},
		func(b pb.MessageBatch) { batches <- b }, func(pb.Chunk) bool { return true }).(*tcpTransport)
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()

	send := func(tlsCfg *tls.Config) error {
		sender := (&transportFactory{log: slog.New(slog.DiscardHandler), peers: newPeerMode(tlsCfg, false)}).Create(config.NodeHostConfig{RaftAddress: testutil.FreeAddr(t)}, nil, nil)
		conn, err := sender.GetConnection(context.Background(), addr)
		if err != nil {
			return err
		}
		defer conn.Close()
		return conn.SendMessageBatch(batchFor(1000))
	}
	if err := send(peerTLS(ca, ca.node(t, 3))); err != nil {
		t.Fatal(err)
	}
	expectBatch(t, batches, 1000)

	noCert := peerTLS(ca, &tls.Certificate{})
	for name, cfg := range map[string]*tls.Config{"plain TCP": nil, "no certificate": noCert, "another CA's certificate": peerTLS(other, other.node(t, 4))} {
		err := send(cfg)
		select {
		case b := <-batches:
			t.Fatalf("%s: a batch was taken (%+v; send: %v)", name, b, err)
		case <-time.After(300 * time.Millisecond):
		}
		t.Logf("%s: refused (%v)", name, err)
	}
	// The node dialing checks the peer too: a server of another CA is refused.
	addr2 := testutil.FreeAddr(t)
	rogue := (&transportFactory{log: slog.New(slog.DiscardHandler), peers: newPeerMode(peerTLS(other, other.node(t, 5)), false)}).Create(config.NodeHostConfig{RaftAddress: addr2},
		func(pb.MessageBatch) { t.Error("the rogue took a batch") }, func(pb.Chunk) bool { return true }).(*tcpTransport)
	if err := rogue.Start(); err != nil {
		t.Fatal(err)
	}
	defer rogue.Close()
	sender := (&transportFactory{log: slog.New(slog.DiscardHandler), peers: newPeerMode(peerTLS(ca, ca.node(t, 6)), false)}).Create(config.NodeHostConfig{RaftAddress: testutil.FreeAddr(t)}, nil, nil)
	if c, err := sender.GetConnection(context.Background(), addr2); err == nil {
		c.Close()
		t.Fatal("dialed a peer whose certificate another CA signed")
	}
	// The transport lets go of every connection once closed (it kept the
	// raw socket of each TLS one in its set).
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		srv.mu.Lock()
		n := len(srv.conns)
		srv.mu.Unlock()
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d closed connections still held", n)
		}
	}
	// A socket that never completes the handshake is let go.
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(peerHandshakeTimeout + 2*time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("the silent socket got bytes")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("the silent socket was held past the handshake timeout")
	}
}

// TestPeerTLSNewCA: the cluster's CA is asked at each handshake, so a
// CA replaced in place (both while the nodes' certificates change, then
// the new one alone) needs no restart: a peer of the new CA is refused
// until the node trusts it, and one of the old CA once it no longer does.
func TestPeerTLSNewCA(t *testing.T) {
	old, next := newTestCA(t), newTestCA(t)
	var roots atomic.Pointer[x509.CertPool]
	roots.Store(old.pool)
	addr := testutil.FreeAddr(t)
	batches := make(chan pb.MessageBatch, 16)
	var own atomic.Pointer[tls.Certificate]
	own.Store(old.node(t, 2))
	srv := (&transportFactory{log: slog.New(slog.DiscardHandler), peers: newPeerMode(PeerTLSConfig(own.Load, roots.Load), false)}).Create(config.NodeHostConfig{RaftAddress: addr},
		func(b pb.MessageBatch) { batches <- b }, func(pb.Chunk) bool { return true }).(*tcpTransport)
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	taken := func(from *testCA, trusts *x509.CertPool, serial int64) bool {
		t.Helper()
		cert := from.node(t, serial)
		sender := (&transportFactory{log: slog.New(slog.DiscardHandler), peers: newPeerMode(PeerTLSConfig(func() *tls.Certificate { return cert }, func() *x509.CertPool { return trusts }), false)}).
			Create(config.NodeHostConfig{RaftAddress: testutil.FreeAddr(t)}, nil, nil)
		if conn, err := sender.GetConnection(context.Background(), addr); err == nil {
			conn.SendMessageBatch(batchFor(uint64(serial)))
			conn.Close()
		}
		select {
		case <-batches:
			return true
		case <-time.After(300 * time.Millisecond):
			return false
		}
	}
	both := old.pool.Clone()
	both.AddCert(next.cert)
	if taken(next, both, 3) {
		t.Fatal("a peer of a CA the node does not trust yet was taken")
	}
	roots.Store(both)
	if !taken(next, both, 4) || !taken(old, both, 5) {
		t.Fatal("with both CAs trusted, a peer of either was refused")
	}
	own.Store(next.node(t, 6)) // the node's own certificate is the new CA's
	roots.Store(next.pool)
	if !taken(next, next.pool, 7) {
		t.Fatal("a peer of the new CA was refused")
	}
	if taken(old, both, 8) {
		t.Fatal("a peer of the old CA was taken once the node trusts the new one alone")
	}
}

// TestPeerTLSPermissive: TLS turned on or off node by node. A permissive
// node takes plain peers and TLS ones and reaches both; a TLS-only node
// and a plain one refuse each other with a message naming the setting;
// permissive turned off closes the plain connections and refuses new ones.
func TestPeerTLSPermissive(t *testing.T) {
	ca := newTestCA(t)
	type node struct {
		peers   *peerMode
		addr    string
		batches chan pb.MessageBatch
		t       *tcpTransport
	}
	start := func(tlsCfg *tls.Config, permissive bool) *node {
		n := &node{peers: newPeerMode(tlsCfg, permissive), addr: testutil.FreeAddr(t), batches: make(chan pb.MessageBatch, 16)}
		n.t = (&transportFactory{log: slog.New(slog.DiscardHandler), peers: n.peers}).Create(config.NodeHostConfig{RaftAddress: n.addr},
			func(b pb.MessageBatch) { n.batches <- b }, func(pb.Chunk) bool { return true }).(*tcpTransport)
		if err := n.t.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.t.Close() })
		return n
	}
	plain := start(nil, false)
	strict := start(peerTLS(ca, ca.node(t, 2)), false)
	perm := start(peerTLS(ca, ca.node(t, 3)), true)

	shard := uint64(100)
	// send sends a batch from one node to another and reports whether it
	// was taken; the connection is returned open.
	send := func(from, to *node) (raftio.IConnection, bool) {
		t.Helper()
		shard++
		conn, err := from.t.GetConnection(context.Background(), to.addr)
		if err == nil {
			err = conn.SendMessageBatch(batchFor(shard))
		}
		select {
		case b := <-to.batches:
			if b.Requests[0].ShardID != shard {
				t.Fatalf("took shard %d, sent %d", b.Requests[0].ShardID, shard)
			}
			return conn, true
		case <-time.After(300 * time.Millisecond):
			t.Logf("not taken (%v)", err)
			return conn, false
		}
	}
	for _, c := range []struct {
		name     string
		from, to *node
		taken    bool
		plainAt  *node // the node that counts the connection as plain
	}{
		{"plain to plain", plain, plain, true, nil},
		{"TLS to TLS", strict, perm, true, nil},
		{"permissive to TLS", perm, strict, true, nil},
		{"plain to permissive", plain, perm, true, perm},
		{"permissive to plain", perm, plain, true, perm},
		{"plain to TLS", plain, strict, false, nil},
		{"TLS to plain", strict, plain, false, nil},
	} {
		before := perm.peers.plainConns()
		conn, taken := send(c.from, c.to)
		if taken != c.taken {
			t.Fatalf("%s: taken %v, want %v", c.name, taken, c.taken)
		}
		if want := before + map[bool]int{true: 1}[c.plainAt == perm]; perm.peers.plainConns() != want {
			t.Fatalf("%s: the permissive node counts %d plain connections, want %d", c.name, perm.peers.plainConns(), want)
		}
		if conn != nil && c.plainAt == nil {
			conn.Close()
		}
	}
	// A peer that answers TLS with a certificate of another CA is not
	// sent plain frames: permissive falls back only for a peer without TLS.
	other := newTestCA(t)
	rogue := start(peerTLS(other, other.node(t, 4)), true)
	if conn, taken := send(perm, rogue); taken || perm.peers.plainConns() != 2 {
		t.Fatalf("sent to a peer of another CA: taken %v, %d plain connections (conn %v)", taken, perm.peers.plainConns(), conn)
	}

	// What each refusal says (logged at most once a minute a peer).
	for _, c := range []struct {
		n     *node
		first byte
		want  error
	}{{strict, frameBatch, errPeerPlain}, {plain, tlsHandshakeRecord, errPeerSpeaksTLS}} {
		a, b := net.Pipe()
		go b.Write([]byte{c.first})
		if _, _, err := c.n.peers.accept(a); err != c.want {
			t.Fatalf("first byte %d: %v, want %v", c.first, err, c.want)
		}
		a.Close()
		b.Close()
	}

	// Off: the two plain connections close, a plain peer is refused again,
	// and the permissive node's sends to the plain node are refused too.
	perm.peers.setPermissive(false)
	if n := perm.peers.plainConns(); n != 0 {
		t.Fatalf("%d plain connections left open", n)
	}
	if _, taken := send(plain, perm); taken {
		t.Fatal("a plain peer was taken after permissive was turned off")
	}
	if _, taken := send(perm, plain); taken {
		t.Fatal("a plain peer was sent to after permissive was turned off")
	}
	if _, taken := send(strict, perm); !taken {
		t.Fatal("a TLS peer was refused after permissive was turned off")
	}
}

// TestPeerHandshakeBounds: sockets that never finish a handshake are
// bounded per address and in all, closed at accept past either bound and
// let go after the handshake timeout, while a peer from another address
// is served throughout.
func TestPeerHandshakeBounds(t *testing.T) {
	ca := newTestCA(t)
	addr := testutil.FreeAddr(t)
	batches := make(chan pb.MessageBatch, 16)
	refused := make(chan string, 256)
	srv := (&transportFactory{log: slog.New(slog.DiscardHandler), peers: newPeerMode(peerTLS(ca, ca.node(t, 2)), false), maxHandshakes: 64,
		onRefused: func(reason string) { refused <- reason }}).Create(config.NodeHostConfig{RaftAddress: addr},
		func(b pb.MessageBatch) { batches <- b }, func(pb.Chunk) bool { return true }).(*tcpTransport)
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	silent := func(from string) net.Conn {
		t.Helper()
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
		c, err := d.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	// closedAtOnce: the node closes c without a byte (a refused socket is
	// closed at accept; a held one would time this read out).
	closedAtOnce := func(c net.Conn) bool {
		c.SetReadDeadline(time.Now().Add(time.Second))
		_, err := c.Read(make([]byte, 1))
		ne, timeout := err.(net.Error)
		return err != nil && !(timeout && ne.Timeout())
	}
	expectRefused := func(want string) {
		t.Helper()
		select {
		case got := <-refused:
			if got != want {
				t.Fatalf("refused for %s, want %s", got, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no refusal (%s)", want)
		}
	}
	peerSends := func(serial int64) bool {
		t.Helper()
		sender := (&transportFactory{log: slog.New(slog.DiscardHandler), peers: newPeerMode(peerTLS(ca, ca.node(t, serial)), false)}).
			Create(config.NodeHostConfig{RaftAddress: testutil.FreeAddr(t)}, nil, nil)
		conn, err := sender.GetConnection(context.Background(), addr)
		if err != nil {
			return false
		}
		defer conn.Close()
		conn.SendMessageBatch(batchFor(uint64(serial)))
		select {
		case <-batches:
			return true
		case <-time.After(2 * time.Second):
			return false
		}
	}

	var held []net.Conn
	for range 4 { // a sixteenth of 64
		held = append(held, silent("127.0.0.2"))
	}
	if !closedAtOnce(silent("127.0.0.2")) {
		t.Fatal("a fifth silent socket from one address was held")
	}
	expectRefused("max_handshakes_per_ip")
	if !peerSends(10) {
		t.Fatal("a peer from another address was refused beside one address's silent sockets")
	}
	for i := 3; len(held) < 64; i++ {
		for range 4 {
			held = append(held, silent(fmt.Sprintf("127.0.0.%d", i)))
		}
	}
	// The handshake of a peer's connection counts too: at the bound, it is
	// closed at accept.
	if peerSends(11) {
		t.Fatal("a connection past the bound in all was taken")
	}
	expectRefused("max_handshakes")
	// The held ones are let go after the handshake timeout, and peers are
	// taken again.
	time.Sleep(peerHandshakeTimeout)
	for _, c := range held {
		if !closedAtOnce(c) {
			t.Fatal("a silent socket was held past the handshake timeout")
		}
	}
	if !peerSends(12) {
		t.Fatal("a peer was refused once the silent sockets were let go")
	}
}
