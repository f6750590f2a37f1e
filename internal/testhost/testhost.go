// Package testhost starts a real one-node multiraft host for the tests of
// the packages above it (ingest, consume).
package testhost

import (
	"context"
	"testing"
	"time"

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
