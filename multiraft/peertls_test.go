package multiraft

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net"
	"testing"
	"time"

	"github.com/eddy-broker/eddy/internal/testutil"
	"github.com/lni/dragonboat/v4/config"
	pb "github.com/lni/dragonboat/v4/raftpb"
)

// testCA is a CA that signs certificates for tests.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
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
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
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

func peerTLS(t *testing.T, ca *testCA, cert *tls.Certificate) *tls.Config {
	t.Helper()
	cfg, err := PeerTLSConfig(func() *tls.Certificate { return cert }, ca.pem)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestPeerTLS: with peer TLS a node takes batches from a peer whose
// certificate the cluster's CA signed, and none from a plain connection,
// a peer without a certificate, or one of another CA.
func TestPeerTLS(t *testing.T) {
	ca, other := newTestCA(t), newTestCA(t)
	addr := testutil.FreeAddr(t)
	batches := make(chan pb.MessageBatch, 16)
	srv := (&transportFactory{log: slog.New(slog.DiscardHandler), tls: peerTLS(t, ca, ca.node(t, 2))}).Create(config.NodeHostConfig{RaftAddress: addr},
		func(b pb.MessageBatch) { batches <- b }, func(pb.Chunk) bool { return true }).(*tcpTransport)
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()

	send := func(tlsCfg *tls.Config) error {
		sender := (&transportFactory{log: slog.New(slog.DiscardHandler), tls: tlsCfg}).Create(config.NodeHostConfig{RaftAddress: testutil.FreeAddr(t)}, nil, nil)
		conn, err := sender.GetConnection(context.Background(), addr)
		if err != nil {
			return err
		}
		defer conn.Close()
		return conn.SendMessageBatch(batchFor(1000))
	}
	if err := send(peerTLS(t, ca, ca.node(t, 3))); err != nil {
		t.Fatal(err)
	}
	expectBatch(t, batches, 1000)

	noCert, _ := PeerTLSConfig(func() *tls.Certificate { return &tls.Certificate{} }, ca.pem)
	for name, cfg := range map[string]*tls.Config{"plain TCP": nil, "no certificate": noCert, "another CA's certificate": peerTLS(t, other, other.node(t, 4))} {
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
	rogue := (&transportFactory{log: slog.New(slog.DiscardHandler), tls: peerTLS(t, other, other.node(t, 5))}).Create(config.NodeHostConfig{RaftAddress: addr2},
		func(pb.MessageBatch) { t.Error("the rogue took a batch") }, func(pb.Chunk) bool { return true }).(*tcpTransport)
	if err := rogue.Start(); err != nil {
		t.Fatal(err)
	}
	defer rogue.Close()
	sender := (&transportFactory{log: slog.New(slog.DiscardHandler), tls: peerTLS(t, ca, ca.node(t, 6))}).Create(config.NodeHostConfig{RaftAddress: testutil.FreeAddr(t)}, nil, nil)
	if c, err := sender.GetConnection(context.Background(), addr2); err == nil {
		c.Close()
		t.Fatal("dialed a peer whose certificate another CA signed")
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
