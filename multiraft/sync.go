// The sync policy: when partition replicas make their segments durable
// and let dragonboat compact its log, the controller's compaction after
// module deploys.

package multiraft

import (
	"time"

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

// kickSync runs the sync policy now (a partition reached SyncBytes).
func (h *Host) kickSync() {
	select {
	case h.syncC <- struct{}{}:
	default:
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

// rf1Overhead is the margin a single replica keeps behind a sync: two
// entries, as a safety margin (16 before). None was tried, and
// TestMQTTBridge then failed once in CI (appends after a kill -9 and
// restart hung for the test's 60 s) for a cause not found; it passed 90
// runs with none under CPU and disk load later, and two have not failed it.
const rf1Overhead = 2

// compactionOverhead is how many Raft entries to keep behind a sync, sized
// by bytes rather than by count: about RaftLogRetainBytes of recent entries,
// so a briefly lagging follower catches up from the log instead of a full
// segment stream. A single-replica partition has no follower and keeps
// only rf1Overhead entries: what a sync made durable leaves the log at
// once, mostly while the log store still holds it in its memtable, so it
// is never flushed and compacted. (It kept 16 entries, which under Kafka
// produce, at about 1 MiB an entry, was 16 MiB more live log than the
// memtable's 16 MiB could hold: pebble wrote every entry three times or
// more.)
func (h *Host) compactionOverhead(lp *localPartition, unsyncedBytes int64) uint64 {
	if lp.replicas <= 1 {
		return rf1Overhead
	}
	entries := max(lp.sm.unsyncedEntries.Load(), 1)
	avg := max(unsyncedBytes/entries, 1)
	return uint64(min(max(h.cfg.RaftLogRetainBytes/avg, 64), 200_000))
}
