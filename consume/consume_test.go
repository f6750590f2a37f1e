package consume_test

import (
	"context"
	"testing"
	"time"

	"github.com/eddy-broker/eddy/multiraft/catalog"

	"github.com/eddy-broker/eddy"
	"github.com/eddy-broker/eddy/consume"
	"github.com/eddy-broker/eddy/internal/testhost"
)

// TestPollCommit runs a member of a group on a real one-node host: a poll
// hands out what its two partitions hold, the next poll with auto-commit
// commits it, an explicit stale generation is refused, and after leaving
// and joining again the member resumes from the committed offsets.
func TestPollCommit(t *testing.T) {
	h := testhost.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ref := eddy.TopicRef{Tenant: eddy.DefaultTenant, Name: "t"}
	if _, err := h.CreateTopic(ctx, ref.Tenant, catalog.TopicSpec{Name: "t", Partitions: 2, ReplicationFactor: 1}); err != nil {
		t.Fatal(err)
	}
	testhost.Ready(t, h)
	for p := range 2 {
		recs := []eddy.Record{{Value: []byte("a")}, {Value: []byte("b")}, {Value: []byte("c")}}
		if _, err := h.Produce(ctx, ref, recs, []eddy.Partition{eddy.Partition(p), eddy.Partition(p), eddy.Partition(p)}); err != nil {
			t.Fatal(err)
		}
	}
	s := consume.New(h)
	g, id, err := h.JoinGroup(ctx, ref.Tenant, "g", []string{"t"}, 30_000, true)
	if err != nil {
		t.Fatal(err)
	}
	m := consume.Member{Tenant: ref.Tenant, Group: "g", ID: id}
	s.Joined(m, g.Generation, true)
	res, err := s.Poll(ctx, consume.Poll{Group: g, Member: m, MaxRecords: 100, MaxBytes: 1 << 20})
	if err != nil || res.Records != 6 || len(res.Fetched) != 2 || len(res.Assigned) != 2 {
		t.Fatalf("first poll: %+v %v", res, err)
	}
	// Nothing new: the second poll hands out nothing, and auto-commits
	// what the first handed out.
	if g, err = h.Group(ref.Tenant, "g"); err != nil {
		t.Fatal(err)
	}
	if res, err = s.Poll(ctx, consume.Poll{Group: g, Member: m, MaxRecords: 100, MaxBytes: 1 << 20}); err != nil || res.Records != 0 {
		t.Fatalf("second poll: %+v %v", res, err)
	}
	if g, err = h.Group(ref.Tenant, "g"); err != nil {
		t.Fatal(err)
	}
	if g.Offsets["t/0"] != 3 || g.Offsets["t/1"] != 3 {
		t.Fatalf("auto-committed offsets: %v", g.Offsets)
	}
	stale := g.Generation - 1
	if _, _, err := s.Commit(ctx, g, m, &stale, nil); eddy.ErrorCode(err) != eddy.CodeStaleGeneration {
		t.Fatalf("stale commit: %v", err)
	}
	// A new member resumes from the committed offsets: nothing to hand out
	// until more records come.
	if err := h.LeaveGroup(ctx, ref.Tenant, "g", id); err != nil {
		t.Fatal(err)
	}
	s.Left(m)
	g, id, err = h.JoinGroup(ctx, ref.Tenant, "g", []string{"t"}, 30_000, true)
	if err != nil {
		t.Fatal(err)
	}
	m.ID = id
	s.Joined(m, g.Generation, false)
	if _, err := h.Produce(ctx, ref, []eddy.Record{{Value: []byte("d")}}, []eddy.Partition{1}); err != nil {
		t.Fatal(err)
	}
	res, err = s.Poll(ctx, consume.Poll{Group: g, Member: m, MaxRecords: 100, MaxBytes: 1 << 20, Wait: time.Second})
	if err != nil || res.Records != 1 || res.Fetched[0].TP.Partition != 1 || res.Fetched[0].Records[0].Offset != 3 {
		t.Fatalf("after rejoining: %+v %v", res, err)
	}
}
