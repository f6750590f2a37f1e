// Package segment is a partition's log on disk, with no Raft in it.
//
// A partition directory holds segments named <baseOffset:020d>.log, each a
// run of Kafka v2 RecordBatches exactly as a Kafka Fetch returns them (base
// offset patched in place, CRC-32C intact), a sparse .index per segment, and
// a checkpoint written at every Sync.
//
// The log is driven like a deterministic state machine: the same Appends and
// DeleteBefores in the same order give byte-identical files on every
// replica, because the roll decision depends only on the log's own state and
// Config.SegmentBytes. Compact (compact.go) is the exception: each replica
// compacts its sealed segments on its own, dropping only records a newer
// one of the same key supersedes, so replicas hold the same records, not
// always the same bytes.
//
//	l, err := segment.Open(segment.OSFS{}, dir, segment.Config{})
//	res, err := l.Append(batch, false) // in Update: assign offsets
//	l.SetApplied(raftIndex)
//	err = l.Flush()                     // end of Update: visible to readers
//	err = l.Sync()                      // fsync data, then the checkpoint
//	rr, err := l.Read(offset, 1<<20)    // whole batches, concurrently
//
// Recovery: Open truncates everything written after the last checkpoint and
// reports the checkpoint's Raft index; the caller (dragonboat) re-applies
// the entries after it. Only an unsynced suffix is ever dropped, and it is
// rebuilt byte for byte from the Raft log.
//
// All file access goes through FS; MemFS is a crashable in-memory FS for
// tests that loses unsynced writes and directory operations at a crash.
package segment
