package multiraft

import (
	"context"
	"testing"
	"time"

	"github.com/eddy-broker/eddy"
	"github.com/eddy-broker/eddy/internal/testutil"
	"github.com/eddy-broker/eddy/multiraft/catalog"
)

// registerFeatures registers h's node again with features, as a node of
// the build that has them would.
func registerFeatures(t *testing.T, h *Host, raftAddr string, features []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n := catalog.NodeMeta{ID: h.cfg.NodeID, RaftAddr: raftAddr, Features: features}
	if _, err := h.ctrlPropose(ctx, &catalog.Cmd{Op: catalog.OpRegisterNode, Node: &n}); err != nil {
		t.Fatal(err)
	}
}

// TestDeleteOffsetsWaitsForEveryNode: a group's offsets are deleted
// (OpDeleteOffsets, a command a build added) only once every node has
// registered that it applies the command: while a node of an earlier
// build is in the cluster it is refused, and nothing is deleted.
func TestDeleteOffsetsWaitsForEveryNode(t *testing.T) {
	raftAddr := testutil.FreeAddr(t)
	h := mustStartHost(t, t.TempDir(), raftAddr)
	defer h.Close()
	oneTopic(t, h, "t")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := h.KafkaCommit(ctx, eddy.DefaultTenant, "g", map[string]int64{"t/0": 3}, nil); err != nil {
		t.Fatal(err)
	}
	register := func(features []string) { registerFeatures(t, h, raftAddr, features) }
	register([]string{catalog.FeatureSessionCommits}) // as the build before
	if _, err := h.DeleteOffsets(ctx, eddy.DefaultTenant, "g", []string{"t/0"}); eddy.ErrorCode(err) != eddy.CodeConflict {
		t.Fatalf("with a node of an earlier build: %v", err)
	}
	if g, err := h.Group(eddy.DefaultTenant, "g"); err != nil || g.Offsets["t/0"] != 3 {
		t.Fatalf("the offsets after the refusal: %+v %v", g, err)
	}
	register(catalog.Features) // upgraded
	if g, err := h.DeleteOffsets(ctx, eddy.DefaultTenant, "g", []string{"t/0"}); err != nil || g != nil {
		t.Fatalf("with every node upgraded: %+v %v", g, err)
	}
	if _, err := h.Group(eddy.DefaultTenant, "g"); eddy.ErrorCode(err) != eddy.CodeNotFound {
		t.Fatalf("a group left with neither members nor offsets: %v", err)
	}
}
