package multiraft

import _ "unsafe" // go:linkname

// dragonboat keeps a replica's entries not yet applied in a slice, and
// once some were applied and the slice is (nearly) empty it replaces it
// with a new one of InMemEntrySliceSize entries: 512, about 37 KB. A
// partition that keeps up applies each proposal on its own, so that was
// 37 KB allocated per proposal: 80% of what a lone client's request made
// the node allocate (376 of 467 MB over 10,000 requests of 1 KiB), a
// garbage collection every 110 requests and the tail latency that comes
// with it, and 18% under MQTT QoS 1 load. Eddy's proposer makes a few
// large proposals, never hundreds of small ones, so the new slice is
// made for 16; a larger run of entries grows it as append does. The
// setting is dragonboat's internal one (settings.Soft, read from a file
// in the working directory otherwise), reached through the package
// variables it is copied to; the build fails if they go, and
// TestLoneProposalAllocates measures the effect.

//go:linkname entrySliceSize github.com/lni/dragonboat/v4/internal/raft.entrySliceSize
var entrySliceSize uint64

//go:linkname minEntrySliceFree github.com/lni/dragonboat/v4/internal/raft.minEntrySliceSize
var minEntrySliceFree uint64

func init() {
	// A new slice once fewer than 4 places are free (dragonboat requires
	// fewer than the slice's size).
	entrySliceSize, minEntrySliceFree = 16, 4
}
