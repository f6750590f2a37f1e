// The sync policy: when partition replicas make their segments durable
// and let dragonboat compact its log, the controller's compaction after
// module deploys, and the free-disk check.

package multiraft

import (
	"fmt"

	"syscall"
	"time"

	"github.com/eddy-broker/eddy"

	"github.com/lni/dragonboat/v4"
)

// syncDue applies the sync policy: it asks dragonboat for a snapshot of
// every local partition with SyncBytes unsynced or SyncInterval since its
// last sync. For an on-disk state machine that snapshot is Sync (segments,
// then checkpoint) plus metadata, after which the Raft log is compacted.
func (h *Host) syncDue() {
	type dueSync struct {
		shard    uint64
		overhead uint64
	}
	now := time.Now().UnixNano()
	h.mu.RLock()
	var due []dueSync
	for id, lp := range h.parts {
		n := lp.sm.unsynced.Load()
		if n >= h.cfg.SyncBytes || (n > 0 && now-lp.sm.lastSync.Load() >= int64(h.cfg.SyncInterval)) {
			due = append(due, dueSync{id, h.compactionOverhead(lp, n)})
		}
	}
	h.mu.RUnlock()
	for _, d := range due {
		opt := dragonboat.SnapshotOption{OverrideCompactionOverhead: true, CompactionOverhead: d.overhead}
		rs, err := h.nh.RequestSnapshot(d.shard, opt, 30*time.Second)
		if err != nil {
			continue // busy or closing; the next tick retries
		}
		rs.Release()
	}
}

// compactModules snapshots the controller once deploys carried module
// binaries through its log, and compacts the log behind the snapshot: the
// binaries then live only in the module store (and in snapshots, as
// links), not in the Raft log, its in-memory cache, or a restart's replay
// (40 uploads of 7.5 MiB took a restarted node to 494 MB without this).
func (h *Host) compactModules() {
	if h.ctrl.moduleBytes.Load() == 0 {
		return
	}
	opt := dragonboat.SnapshotOption{OverrideCompactionOverhead: true, CompactionOverhead: 0}
	rs, err := h.nh.RequestSnapshot(ControllerShardID, opt, 30*time.Second)
	if err != nil {
		return // busy or closing; the next tick retries
	}
	rs.Release()
}

// compactionOverhead is how many Raft entries to keep behind a sync, sized
// by bytes rather than by count: about RaftLogRetainBytes of recent entries,
// so a briefly lagging follower catches up from the log instead of a full
// segment stream. A single-replica partition has no follower and keeps few.
func (h *Host) compactionOverhead(lp *localPartition, unsyncedBytes int64) uint64 {
	if lp.replicas <= 1 {
		return 16
	}
	entries := max(lp.sm.unsyncedEntries.Load(), 1)
	avg := max(unsyncedBytes/entries, 1)
	return uint64(min(max(h.cfg.RaftLogRetainBytes/avg, 64), 200_000))
}

// logHeadroom is what the Raft log store may take at once, kept free above
// MinFreeBytes so it never meets ENOSPC mid-write (dragonboat panics): the
// pebble store flushes up to three 16 MiB memtables; tan preallocates a
// 64 MiB file for a shard at creation and at each roll.
const logHeadroom = 64 << 20

// partitionLogBytes is what a new partition replica's Raft log takes at
// once: tan preallocates its file; the pebble store shares its files.
func (h *Host) partitionLogBytes() uint64 {
	if h.tanStore {
		return 64 << 20
	}
	return 256 << 10
}

// freeBytes is the free space of the data directory's disk.
func (h *Host) freeBytes() (uint64, bool) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(h.cfg.Dir, &st); err != nil {
		return 0, false
	}
	return st.Bavail * uint64(st.Bsize), true
}

// checkDisk sets diskFull: produce is refused while the disk has less than
// MinFreeBytes plus one log file's preallocation free. It runs every
// second, and from produce after every 8 MiB admitted (noteWrite), so a
// fast producer cannot write through the margin between two ticks.
func (h *Host) checkDisk() {
	free, ok := h.freeBytes()
	if !ok {
		return
	}
	h.sinceCheck.Store(0)
	full := free < h.cfg.MinFreeBytes+logHeadroom
	if full != h.diskFull.Swap(full) {
		if full {
			h.log.Error("disk nearly full: refusing writes", "free_bytes", free, "min_free_bytes", h.cfg.MinFreeBytes)
		} else {
			h.log.Info("disk space recovered: accepting writes", "free_bytes", free)
		}
	}
}

// noteWrite counts bytes admitted for writing and checks the disk again
// after every 8 MiB.
func (h *Host) noteWrite(n int) {
	if h.sinceCheck.Add(int64(n)) >= 8<<20 {
		h.checkDisk()
	}
}

// storageFull refuses a write while the disk is nearly full, or when need
// more bytes (new partitions' log files, a module) would take it there.
func (h *Host) storageFull(what string, need uint64) error {
	free, ok := h.freeBytes()
	if h.diskFull.Load() || (ok && free < h.cfg.MinFreeBytes+logHeadroom+need) {
		return &eddy.Error{Code: eddy.CodeStorageFull, RetryAfterMs: 5000,
			Message: fmt.Sprintf("the node's disk is nearly full (%d MiB free, %d MiB kept free, %d MiB needed for %s); nothing was written",
				free>>20, (h.cfg.MinFreeBytes+logHeadroom)>>20, need>>20, what)}
	}
	return nil
}
