package multiraft

import (
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

// shrinkDragonboatQueues sets the queue lengths for shards started from now.
func shrinkDragonboatQueues() {
	incomingProposalsMaxLen = 128
	incomingReadIndexMaxLen = 64
	receiveQueueLen = 64
	pendingProposalShards = 2
}
