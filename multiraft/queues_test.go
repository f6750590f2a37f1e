package multiraft

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/eddy-broker/eddy"
	"github.com/eddy-broker/eddy/internal/testutil"
	"github.com/eddy-broker/eddy/multiraft/catalog"
)

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// TestIdlePartitionHeap bounds the heap an idle partition replica costs:
// dragonboat's per-shard queues (shrunk, queues.go), its Raft state, and
// Eddy's own structures (proposer, log, indexes).
func TestIdlePartitionHeap(t *testing.T) {
	h := mustStartHost(t, t.TempDir(), testutil.FreeAddr(t))
	defer h.Close()
	waitReady(t, h)
	before := heapInUse()
	const n = 64
	if _, err := h.CreateTopic(context.Background(), eddy.DefaultTenant, catalog.TopicSpec{Name: "idle", Partitions: n, ReplicationFactor: 1}); err != nil {
		t.Fatal(err)
	}
	waitReady(t, h)
	time.Sleep(time.Second)
	per := (int64(heapInUse()) - int64(before)) / n
	t.Logf("an idle partition replica: %d KB of heap (queues: %d proposals, %d ReadIndex, %d messages)",
		per>>10, incomingProposalsMaxLen, incomingReadIndexMaxLen, receiveQueueLen)
	if per > 256<<10 {
		t.Fatalf("an idle partition replica holds %d KB of heap, over 256 KB", per>>10)
	}
}

// A lone client's record, one at a time, costs the node a few kilobytes
// of garbage, not the 37 KB entry slice dragonboat made for every
// proposal by default (47 KB a record in all then).
func TestLoneProposalAllocates(t *testing.T) {
	h := mustStartHost(t, t.TempDir(), testutil.FreeAddr(t))
	defer h.Close()
	ref, _ := oneTopic(t, h, "lone")
	ctx := context.Background()
	rec := []eddy.Record{{Value: make([]byte, 1024)}}
	produce := func(n int) {
		for range n {
			if _, err := h.Produce(ctx, ref, rec, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	produce(200) // warm: the log's files, pools, the replica's slices
	const n = 2000
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	produce(n)
	runtime.ReadMemStats(&after)
	// Everything the process allocated meanwhile counts (ticks, the
	// host's checks): a bound, not an exact figure. 6-7 KB were measured.
	per := (after.TotalAlloc - before.TotalAlloc) / n
	t.Logf("%d bytes allocated a record", per)
	if per > 20<<10 {
		t.Fatalf("%d bytes allocated per lone 1 KiB record, want at most 20 KiB", per)
	}
}

// TestAppliedEntriesLetGo: once a burst is applied and the partitions go
// idle, the node holds none of its entries (dragonboat's apply workers
// kept the last batch each applied: queues.go). 14 MiB were held before.
func TestAppliedEntriesLetGo(t *testing.T) {
	h := mustStartHost(t, t.TempDir(), testutil.FreeAddr(t))
	defer h.Close()
	waitReady(t, h)
	const parts = 16
	ctx := context.Background()
	meta, err := h.CreateTopic(ctx, eddy.DefaultTenant, catalog.TopicSpec{Name: "burst", Partitions: parts, ReplicationFactor: 1})
	if err != nil {
		t.Fatal(err)
	}
	waitReady(t, h)
	// Warm every partition (its log's files, the pools), then measure.
	recs := func(n, size int) []eddy.Record {
		rs := make([]eddy.Record, n)
		for i := range rs {
			rs[i].Value = make([]byte, size)
		}
		return rs
	}
	for p := range eddy.Partition(parts) {
		if _, err := h.ProduceTo(ctx, meta, recs(1, 1024), []eddy.Partition{p}); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(time.Second)
	before := heapInUse()
	// A batch of 900 KiB to each partition: one proposal, one apply each.
	for p := range eddy.Partition(parts) {
		parts := make([]eddy.Partition, 60)
		for i := range parts {
			parts[i] = p
		}
		if _, err := h.ProduceTo(ctx, meta, recs(60, 15<<10), parts); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(2 * time.Second) // ticks: dragonboat lets go of what it applied
	held := int64(heapInUse()) - int64(before)
	t.Logf("%d KiB of heap held 2 s after %d batches of 900 KiB were applied", held>>10, parts)
	if held > 4<<20 {
		t.Fatalf("%d MiB of heap held after the burst was applied and the partitions went idle, want at most 4", held>>20)
	}
}
