package multiraft

import (
	"context"
	"testing"
	"time"

	"github.com/eddy-broker/eddy"
	"github.com/eddy-broker/eddy/internal/testutil"
	"github.com/eddy-broker/eddy/multiraft/catalog"
	"github.com/eddy-broker/eddy/tenants"
)

func TestTenantsInController(t *testing.T) {
	h := mustStartHostWith(t, Config{Dir: t.TempDir(), RaftAddr: testutil.FreeAddr(t), RetentionInterval: time.Hour})
	defer h.Close()
	ctx := context.Background()
	if _, err := h.Tenant(eddy.DefaultTenant); err != nil {
		t.Fatalf("default tenant: %v", err)
	}
	if err := h.DeleteTenant(ctx, eddy.DefaultTenant, true); eddy.ErrorCode(err) != eddy.CodeConflict {
		t.Fatalf("delete default: %v", err)
	}
	if _, err := h.CreateTenant(ctx, "acme", tenants.Quotas{MaxTopics: 2, MaxPartitions: 3}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.CreateTenant(ctx, "acme", tenants.Quotas{}); eddy.ErrorCode(err) != eddy.CodeTenantExists {
		t.Fatalf("second create: %v", err)
	}
	if _, err := h.CreateTopic(ctx, "ghost", catalog.TopicSpec{Name: "x", Partitions: 1, ReplicationFactor: 1}); eddy.ErrorCode(err) != eddy.CodeNotFound {
		t.Fatalf("topic of a missing tenant: %v", err)
	}
	// Count limits.
	if _, err := h.CreateTopic(ctx, "acme", catalog.TopicSpec{Name: "a", Partitions: 2, ReplicationFactor: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.CreateTopic(ctx, "acme", catalog.TopicSpec{Name: "b", Partitions: 2, ReplicationFactor: 1}); eddy.ErrorCode(err) != eddy.CodeLimitExceeded {
		t.Fatalf("partition limit: %v", err)
	}
	if _, err := h.CreateTopic(ctx, "acme", catalog.TopicSpec{Name: "b", Partitions: 1, ReplicationFactor: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.CreateTopic(ctx, "acme", catalog.TopicSpec{Name: "c", Partitions: 1, ReplicationFactor: 1}); eddy.ErrorCode(err) != eddy.CodeLimitExceeded {
		t.Fatalf("topic limit: %v", err)
	}
	if u := h.Usage("acme"); u.Topics != 2 || u.Partitions != 3 {
		t.Fatalf("usage %+v", u)
	}
	// Same topic name in two tenants: two topics.
	if _, err := h.CreateTopic(ctx, eddy.DefaultTenant, catalog.TopicSpec{Name: "a", Partitions: 1, ReplicationFactor: 1}); err != nil {
		t.Fatal(err)
	}
	if len(h.Topics("acme")) != 2 || len(h.Topics(eddy.DefaultTenant)) != 1 {
		t.Fatal("tenants' topics mixed")
	}
	// Deleting a tenant with topics needs force, and takes them along.
	if err := h.DeleteTenant(ctx, "acme", false); eddy.ErrorCode(err) != eddy.CodeConflict {
		t.Fatalf("delete with topics: %v", err)
	}
	if err := h.DeleteTenant(ctx, "acme", true); err != nil {
		t.Fatal(err)
	}
	if len(h.Topics("acme")) != 0 {
		t.Fatal("force delete left topics")
	}
	// Operator key: the first one set wins.
	first, err := h.EnsureOperatorKey(ctx, &catalog.OperatorKey{ID: "op-a", PrivatePEM: "A"})
	if err != nil || first.ID != "op-a" {
		t.Fatalf("%v %v", first, err)
	}
	again, _ := h.EnsureOperatorKey(ctx, &catalog.OperatorKey{ID: "op-b", PrivatePEM: "B"})
	if again.ID != "op-a" {
		t.Fatalf("operator key replaced: %+v", again)
	}
}
