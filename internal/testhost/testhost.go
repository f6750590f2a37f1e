// Package testhost starts a real one-node multiraft host for the tests of
// the packages above it (ingest, consume, the listeners), and gives them a
// signing key the host trusts.
package testhost

import (
	"crypto/ed25519"
	"crypto/rand"

	"context"
	"testing"
	"time"

	"github.com/eddy-broker/eddy"
	"github.com/eddy-broker/eddy/tenants"

	"github.com/eddy-broker/eddy/internal/testutil"
	"github.com/eddy-broker/eddy/multiraft"
)

// Start runs a host on a free port and a temporary directory, closed when
// the test ends.
func Start(tb testing.TB) *multiraft.Host {
	tb.Helper()
	return StartWith(tb, multiraft.Config{RetentionInterval: time.Hour})
}

// StartWith runs a host with cfg, on a free port and a temporary directory
// unless cfg names them; it is closed when the test ends.
func StartWith(tb testing.TB, cfg multiraft.Config) *multiraft.Host {
	tb.Helper()
	if cfg.Dir == "" {
		cfg.Dir, cfg.RaftAddr = tb.TempDir(), testutil.FreeAddr(tb)
	}
	h, err := multiraft.New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := h.Start(ctx); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { h.Close() })
	return h
}

// Ready waits until every partition of the host has a leader.
func Ready(tb testing.TB, h *multiraft.Host) {
	tb.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for h.Ready() != nil {
		if time.Now().After(deadline) {
			tb.Fatalf("not ready: %v", h.Ready())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Signer is an operator signing key the host trusts (as a node's own
// cluster key), for tests that mint tokens; its audience is audience.
func Signer(tb testing.TB, h *multiraft.Host, audience string) *tenants.Signer {
	tb.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	s := &tenants.Signer{KeyID: "op-test", Key: priv, Audience: audience, Incarnation: func(t eddy.TenantID) int64 {
		inc, _ := h.Incarnation(t)
		return inc.Number
	}}
	opKey, err := s.OperatorKey()
	if err != nil {
		tb.Fatal(err)
	}
	h.SetOperatorPublic(opKey)
	return s
}
