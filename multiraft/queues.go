package multiraft

import (
	"sync"
	_ "unsafe" // go:linkname

	_ "github.com/lni/dragonboat/v4" // the variables below live there
)

// dragonboat gives every shard three queues sized by its soft settings
// (read once, at init, from a JSON file in the working directory, so not
// configurable from here): 2,048 proposals, 4,096 ReadIndex requests and
// 1,024 incoming messages, each allocated whole, twice, when the shard
// starts, and its pending proposals in 16 stripes, each with its own
// random source. That is about 1.1 MB of heap per partition replica, busy
// or idle: 70 MB for 64 empty partitions. Eddy needs far less: its proposer keeps
// at most MaxInFlight batches in flight per partition, it uses ReadIndex
// only as a rare barrier, and a peer's messages to one shard arrive
// batched, and one proposer goroutine per partition needs no 16 stripes
// against lock contention. The queues are shrunk before any shard starts (NewHost); a
// full queue is a retryable ErrSystemBusy, which the proposer retries.
//
// The names are dragonboat's unexported package variables (uint64, read
// when a shard starts); the build fails if they disappear, and
// TestIdlePartitionHeap fails if they stop taking effect.
var (
	//go:linkname incomingProposalsMaxLen github.com/lni/dragonboat/v4.incomingProposalsMaxLen
	incomingProposalsMaxLen uint64
	//go:linkname incomingReadIndexMaxLen github.com/lni/dragonboat/v4.incomingReadIndexMaxLen
	incomingReadIndexMaxLen uint64
	//go:linkname receiveQueueLen github.com/lni/dragonboat/v4.receiveQueueLen
	receiveQueueLen uint64
	//go:linkname pendingProposalShards github.com/lni/dragonboat/v4.pendingProposalShards
	pendingProposalShards uint64
)

// dragonboat keeps a replica's entries not yet applied in a slice, and
// once some were applied and the slice is (nearly) empty it replaces it
// with a new one of 512 entries (InMemEntrySliceSize), about 37 KB. A
// partition that keeps up applies each proposal on its own, so that was
// 37 KB allocated per proposal: 80% of what a lone client's request made
// the node allocate (376 of 467 MB over 10,000 requests of 1 KiB) and a
// collection every 110 requests. Eddy's proposer makes a few large
// proposals, never hundreds of small ones, so the new slice is made for
// 16; a longer run of entries grows it as append does. It is made anew
// once fewer than 4 places are free (dragonboat requires fewer than the
// slice's size). TestLoneProposalAllocates measures it: 46 KB of garbage
// per lone record before, 6.5 KB after.
var (
	//go:linkname entrySliceSize github.com/lni/dragonboat/v4/internal/raft.entrySliceSize
	entrySliceSize uint64
	//go:linkname minEntrySliceFree github.com/lni/dragonboat/v4/internal/raft.minEntrySliceSize
	minEntrySliceFree uint64
)

// dragonboat's apply workers (16, by shard) each reuse a slice of tasks
// and one of entries across applies, made for TaskBatchSize (512) and
// replaced every 40 s (200 of its 200 ms reloads), so each kept the last
// batch it applied alive until then: with Kafka batches of a megabyte,
// 86-205 MB of heap a node after four rounds of RF 3 Kafka produce to
// new topics (what one round applied stayed while the next ran). Made
// for 0 entries, the slices are made by append at each apply and
// dropped after it (a few hundred bytes for a lone record's apply).
// TestAppliedEntriesLetGo holds the node to keeping none.
var (
	//go:linkname taskBatchSize github.com/lni/dragonboat/v4.taskBatchSize
	taskBatchSize uint64
)

// shrinkDragonboatQueues sets the sizes for shards and apply workers
// started from now (NewHost calls it before the NodeHost), once per
// process (the entry slice's size is read at every apply, so a second
// host started in the same process must not write it again).
func shrinkDragonboatQueues() {
	shrinkOnce.Do(func() {
		incomingProposalsMaxLen = 128
		incomingReadIndexMaxLen = 64
		receiveQueueLen = 64
		pendingProposalShards = 2
		entrySliceSize, minEntrySliceFree = 16, 4
		taskBatchSize = 0
	})
}

var shrinkOnce sync.Once
