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
