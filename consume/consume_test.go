package consume_test

import (
	"context"
	"testing"
	"time"

	"github.com/eddy-broker/eddy/multiraft/catalog"

	"github.com/eddy-broker/eddy"
	"github.com/eddy-broker/eddy/consume"
	"github.com/eddy-broker/eddy/internal/membudget"
	"github.com/eddy-broker/eddy/internal/testhost"
	"github.com/eddy-broker/eddy/multiraft"
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
	s, g, m := joinAlone(ctx, t, h, ref)
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
	if err := h.LeaveGroup(ctx, ref.Tenant, "g", m.ID); err != nil {
		t.Fatal(err)
	}
	s.Left(m)
	g, id, err := h.JoinGroup(ctx, ref.Tenant, "g", []string{"t"}, 30_000, true)
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

// TestPollBytesAcrossPartitions: a poll's MaxBytes bounds what it reads
// from all its partitions together (at least one record), not from each;
// its Room is taken before each pass and not held while it waits, and
// the pass that read the records hands its hold to the caller.
func TestPollBytesAcrossPartitions(t *testing.T) {
	h := testhost.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ref := eddy.TopicRef{Tenant: eddy.DefaultTenant, Name: "t"}
	if _, err := h.CreateTopic(ctx, ref.Tenant, catalog.TopicSpec{Name: "t", Partitions: 4, ReplicationFactor: 1}); err != nil {
		t.Fatal(err)
	}
	testhost.Ready(t, h)
	value := make([]byte, 10<<10)
	for p := range 4 {
		for range 20 { // 200 KiB a partition
			if _, err := h.Produce(ctx, ref, []eddy.Record{{Value: value}}, []eddy.Partition{eddy.Partition(p)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	s, g, m := joinAlone(ctx, t, h, ref)
	budget := membudget.New(1 << 30)
	rooms := 0
	room := func(int) (membudget.Hold, error) {
		rooms++
		h, _ := budget.TryAcquire("default", 1<<20)
		return h, nil
	}
	res, err := s.Poll(ctx, consume.Poll{Group: g, Member: m, MaxRecords: 10_000, MaxBytes: 100 << 10, Room: room})
	if err != nil {
		t.Fatal(err)
	}
	read := 0
	for _, f := range res.Fetched {
		for i := range f.Records {
			read += f.Records[i].Record.Size()
		}
	}
	if read == 0 || read > 100<<10+11<<10 {
		t.Fatalf("a poll of at most 100 KiB over 4 partitions of 200 KiB read %d bytes", read)
	}
	if rooms != 1 || budget.Used() != 1<<20 {
		t.Fatalf("%d rooms taken, %d bytes held; want 1 and the hold handed to the caller", rooms, budget.Used())
	}
	res.Hold.Release()
	// Everything read: a long poll finds nothing, holds nothing while it
	// waits, and takes room again for its second pass.
	for range 40 {
		if g, err = h.Group(ref.Tenant, "g"); err != nil {
			t.Fatal(err)
		}
		if res, err = s.Poll(ctx, consume.Poll{Group: g, Member: m, MaxRecords: 10_000, MaxBytes: 1 << 20, Room: room}); err != nil {
			t.Fatal(err)
		}
		res.Hold.Release()
	}
	rooms = 0
	done := make(chan error, 1)
	go func() {
		res, err := s.Poll(ctx, consume.Poll{Group: g, Member: m, MaxRecords: 10, MaxBytes: 1 << 20, Wait: 2 * time.Second, Room: room})
		res.Hold.Release()
		done <- err
	}()
	time.Sleep(500 * time.Millisecond)
	if budget.Used() != 0 {
		t.Fatalf("%d bytes held by a poll waiting for records", budget.Used())
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if rooms != 2 {
		t.Fatalf("a long poll that found nothing took room %d times; want 2 (a pass before the wait, one after)", rooms)
	}
}

// joinAlone makes the consume path of host h and joins a member, alone
// and auto-committing, to group g of ref's topic.
func joinAlone(ctx context.Context, t *testing.T, h *multiraft.Host, ref eddy.TopicRef) (*consume.Sessions, *catalog.GroupMeta, consume.Member) {
	t.Helper()
	s := consume.New(h)
	g, id, err := h.JoinGroup(ctx, ref.Tenant, "g", []string{string(ref.Name)}, 30_000, true)
	if err != nil {
		t.Fatal(err)
	}
	m := consume.Member{Tenant: ref.Tenant, Group: "g", ID: id}
	s.Joined(m, g.Generation, true)
	return s, g, m
}

// laggingBroker answers fetches as a replica holding only the first
// visible records would (a node without a replica of its own reads a
// follower once the replica it read is gone): past them is out of range.
type laggingBroker struct {
	*multiraft.Host
	visible eddy.Offset
}

func (b *laggingBroker) Fetch(ctx context.Context, ref eddy.TopicRef, p eddy.Partition, offset eddy.Offset, maxRecords, maxBytes int, wait time.Duration) (*multiraft.FetchResult, error) {
	if offset > b.visible {
		return nil, eddy.Errorf(eddy.CodeOffsetOutOfRange, "offset %d is outside [0, %d]", offset, b.visible)
	}
	return b.Host.Fetch(ctx, ref, p, offset, maxRecords, maxBytes, wait)
}

// TestPollLaggingReplica: a member whose position is past the end of the
// replica answering gets nothing from it for now, not a failed poll, and
// its records once the replica has them.
func TestPollLaggingReplica(t *testing.T) {
	h := testhost.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ref := eddy.TopicRef{Tenant: eddy.DefaultTenant, Name: "t"}
	if _, err := h.CreateTopic(ctx, ref.Tenant, catalog.TopicSpec{Name: "t", Partitions: 1, ReplicationFactor: 1}); err != nil {
		t.Fatal(err)
	}
	testhost.Ready(t, h)
	produce := func(v string) {
		if _, err := h.Produce(ctx, ref, []eddy.Record{{Value: []byte(v)}}, []eddy.Partition{0}); err != nil {
			t.Fatal(err)
		}
	}
	produce("a")
	produce("b")
	b := &laggingBroker{Host: h, visible: 1 << 62}
	s := consume.New(b)
	g, id, err := h.JoinGroup(ctx, ref.Tenant, "g", []string{"t"}, 30_000, true)
	if err != nil {
		t.Fatal(err)
	}
	m := consume.Member{Tenant: ref.Tenant, Group: "g", ID: id}
	s.Joined(m, g.Generation, true)
	poll := func() consume.Polled {
		t.Helper()
		res, err := s.Poll(ctx, consume.Poll{Group: g, Member: m, MaxRecords: 100, MaxBytes: 1 << 20})
		if err != nil {
			t.Fatalf("poll: %v", err)
		}
		return res
	}
	if res := poll(); res.Records != 2 {
		t.Fatalf("first poll: %+v", res)
	}
	b.visible = 1 // the replica answering now holds one record; the member is at 2
	produce("c")
	if res := poll(); res.Records != 0 {
		t.Fatalf("from the lagging replica: %+v", res)
	}
	b.visible = 1 << 62 // caught up
	if res := poll(); res.Records != 1 || res.Fetched[0].Records[0].Offset != 2 {
		t.Fatalf("once caught up: %+v", res)
	}
}
