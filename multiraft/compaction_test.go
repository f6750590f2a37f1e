package multiraft

import (
	"context"
	"testing"
	"time"

	"github.com/eddy-broker/eddy"
	"github.com/eddy-broker/eddy/internal/testutil"
	"github.com/eddy-broker/eddy/multiraft/catalog"
)

// TestCompactionConfigWaitsForEveryNode: a compacted topic (or
// segment.ms), which an earlier build refuses as it applies the command,
// is refused while a node of that build is in the cluster, created and
// altered to once every node is upgraded; plain configs go either way.
func TestCompactionConfigWaitsForEveryNode(t *testing.T) {
	raftAddr := testutil.FreeAddr(t)
	h := mustStartHost(t, t.TempDir(), raftAddr)
	defer h.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	register := func(features []string) { registerFeatures(t, h, raftAddr, features) }
	create := func(name string, cfg map[string]string) error {
		_, err := h.CreateTopic(ctx, eddy.DefaultTenant, catalog.TopicSpec{Name: eddy.TopicName(name), Partitions: 1, ReplicationFactor: 1, Config: cfg})
		return err
	}
	register([]string{catalog.FeatureSessionCommits, catalog.FeatureDeleteOffsets, catalog.FeatureSubscriptionOptions}) // as the build before
	for _, cfg := range []map[string]string{{"cleanup.policy": "compact"}, {"segment.ms": "60000"}, {"delete.retention.ms": "1"}} {
		if err := create("c", cfg); eddy.ErrorCode(err) != eddy.CodeConflict {
			t.Fatalf("%v with a node of an earlier build: %v", cfg, err)
		}
	}
	if err := create("plain", map[string]string{"cleanup.policy": "delete", "retention.ms": "60000"}); err != nil {
		t.Fatal(err)
	}
	ref := eddy.TopicRef{Tenant: eddy.DefaultTenant, Name: "plain"}
	if _, err := h.AlterTopic(ctx, ref, map[string]string{"cleanup.policy": "compact,delete"}, 0); eddy.ErrorCode(err) != eddy.CodeConflict {
		t.Fatalf("alter to compact with a node of an earlier build: %v", err)
	}
	register(catalog.Features) // upgraded
	if err := create("c", map[string]string{"cleanup.policy": "compact", "segment.ms": "60000"}); err != nil {
		t.Fatal(err)
	}
	meta, err := h.AlterTopic(ctx, ref, map[string]string{"cleanup.policy": "compact,delete"}, 0)
	if err != nil || !meta.Compacted() || !meta.Deletes() {
		t.Fatalf("alter to compact,delete: %+v %v", meta, err)
	}
}
