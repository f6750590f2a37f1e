// The sync policy: when partition replicas make their segments durable
// and let dragonboat compact its log, the controller's compaction after
// module deploys.

package multiraft

import (
	"context"
	"errors"
	"time"

	"github.com/lni/dragonboat/v4"
)

// syncDue applies the sync policy: it asks dragonboat for a snapshot of
// every local partition with SyncBytes unsynced, SyncInterval since its
// last sync, or entries unsynced and either idleAfter without more or the
// Raft log store asking (pinning). For an on-disk state machine that
// snapshot is Sync (segments, then checkpoint) plus metadata, after which
// the Raft log is compacted. dragonboat runs Sync under the state
// machine's lock, so the replica applies nothing meanwhile; a partition
// with writebackBytes or more unsynced first has its segments written
// back here, beside its applies. A partition is nudged (nudgeIdle) and
// then synced when its last sync kept Raft log it no longer needs: an
// idle one that kept more than rf1Overhead entries with nothing unsynced,
// a single replica the log store asked about (the rf1Overhead entries a
// sync keeps are a Kafka batch each; after the no-ops it keeps those),
// and a replicated one it asked about that has been quiet for quietAfter
// with every node alive.
func (h *Host) syncDue() {
	type dueSync struct {
		lp       *localPartition
		unsynced int64
		overhead uint64
	}
	now := time.Now().UnixNano()
	allAlive := h.allAlive()
	h.allAliveAt.Store(allAlive)
	h.mu.RLock()
	var due []dueSync
	var nudge []*localPartition
	for _, lp := range h.parts {
		n, entries := lp.sm.unsynced.Load(), lp.sm.unsyncedEntries.Load()
		pinned, nudged := lp.pinned.Swap(false), lp.nudged.Swap(false)
		// The log store asking (pinned), or the nudge that followed,
		// shortens the wait before a partition counts as idle to
		// quietAfter; an idle one with every node alive drops the log it
		// kept for lagging followers.
		idle := now-lp.sm.lastApply.Load() >= int64(idleAfter) || ((pinned || nudged) && quiet(lp, now))
		drop := idle && allAlive
		switch {
		case pinned && (lp.replicas <= 1 || drop):
			nudge = append(nudge, lp) // then synced, keeping only the no-ops
		case n >= h.cfg.SyncBytes || (entries > 0 && (idle || pinned || nudged || now-lp.sm.lastSync.Load() >= int64(h.cfg.SyncInterval))):
			due = append(due, dueSync{lp, n, h.compactionOverhead(lp, n, drop)})
		case drop && lp.kept.Load() > rf1Overhead:
			nudge = append(nudge, lp)
		}
	}
	h.mu.RUnlock()
	for _, d := range due {
		if d.unsynced >= writebackBytes {
			d.lp.sm.writeback()
		}
		opt := dragonboat.SnapshotOption{OverrideCompactionOverhead: true, CompactionOverhead: d.overhead}
		rs, err := h.nh.RequestSnapshot(d.lp.shardID, opt, 30*time.Second)
		if err != nil {
			continue // busy or closing; the next tick retries
		}
		d.lp.kept.Store(d.overhead)
		rs.Release()
	}
	if len(nudge) > 0 && h.nudging.CompareAndSwap(false, true) {
		h.wg.Add(1) // the sync loop holds one, so Close's Wait cannot have begun
		go h.nudgeIdle(nudge)
	} else {
		for _, lp := range nudge {
			if lp.replicas <= 1 {
				lp.pinned.Store(true) // a nudge is under way: at a later round
			}
		}
	}
}

// nudgeIdle proposes rf1Overhead no-ops, DeleteBefore(0), to each
// partition, then has the sync loop sync them. dragonboat snapshots, and
// so compacts, only a state machine that applied something since its
// last snapshot; an idle partition whose last sync kept
// RaftLogRetainBytes of log for lagging followers, or rf1Overhead entries
// of a megabyte, would keep them for as long as it stays idle, and Eddy's
// log store would carry them forward each time the log turns over (a
// single replica's two Kafka batches, every 40 MiB written to the node's
// other partitions). After the no-ops the sync keeps only them. Applying
// them does not end the idleness.
func (h *Host) nudgeIdle(lps []*localPartition) {
	defer h.wg.Done()
	defer h.kickSync()           // second: the round syncs them, and nudges what waited meanwhile
	defer h.nudging.Store(false) // first, so that the round can nudge
	for _, lp := range lps {
		for range rf1Overhead {
			if _, err := h.proposeWithRetry(lp.shardID, encodeDeleteBefore(0), true, nil, h.stop, nil); errors.Is(err, context.Canceled) {
				return
			}
		}
		lp.nudged.Store(true)
		select {
		case <-h.stop:
			return
		default:
		}
	}
}

// pinning is the Raft log store's word (raftlog.Options.Pinning) that an
// idle replica's entries keep its oldest file. A single replica is nudged
// and synced at the sync loop's next round, which compacts all but the
// no-ops out of the log. So is a replicated one that has been quiet for
// quietAfter with every node alive: its followers have had its last
// entries, and one that has not gets a snapshot. A replicated one
// written to more lately keeps RaftLogRetainBytes for lagging followers:
// it is synced if it has entries not yet synced, and the store carries
// what it keeps. It must not block, the store's writer lock being held,
// so it does not wait for the host's lock either.
func (h *Host) pinning(shard, replica uint64) bool {
	if !h.mu.TryRLock() {
		return false
	}
	lp := h.parts[shard]
	h.mu.RUnlock()
	if lp == nil || lp.replicaID != replica {
		return false
	}
	if lp.replicas > 1 && lp.sm.unsyncedEntries.Load() == 0 && !(h.allAliveAt.Load() && quiet(lp, time.Now().UnixNano())) {
		return false
	}
	lp.pinned.Store(true)
	h.kickSync()
	return true
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

// writebackBytes: a partition with this much unsynced has it written back
// before the Sync that would otherwise write it with the replica's applies
// held (syncDue). Under it, the extra fsync would cost more than it saves.
const writebackBytes = 1 << 20

// rf1Overhead is the margin a single replica keeps behind a sync: two
// entries, as a safety margin (16 before). None was tried, and
// TestMQTTBridge then failed once in CI (appends after a kill -9 and
// restart hung for the test's 60 s) for a cause not found; it passed 90
// runs with none under CPU and disk load later, and two have not failed it.
const rf1Overhead = 2

// idleAfter is how long a partition takes no records before it syncs
// what it has and, when every node is alive, drops the Raft log it keeps
// for lagging followers: an alive follower has long had the last entries,
// and Eddy's log store would otherwise carry an idle partition's
// RaftLogRetainBytes forward each time they are its oldest (under Kafka
// produce to three nodes, 800 MB for 1.8 GB of records in six topics).
const idleAfter = 5 * time.Second

// quietAfter is how long a replicated partition takes no records before
// the Raft log store's asking (pinning) drops the log it keeps for
// lagging followers, when every node is alive. Between two topics that a
// client writes one after the other, the first's RaftLogRetainBytes was
// carried forward each time the log turned over, until idleAfter:
// a third of what three local nodes wrote under Kafka produce.
const quietAfter = time.Second

// quiet reports whether lp applied no records for quietAfter.
func quiet(lp *localPartition, now int64) bool {
	return now-lp.sm.lastApply.Load() >= int64(quietAfter)
}

// allAlive reports whether every registered node answered lately.
func (h *Host) allAlive() bool {
	for _, n := range h.Nodes() {
		if !h.live.alive(n.ID) {
			return false
		}
	}
	return true
}

// compactionOverhead is how many Raft entries to keep behind a sync, sized
// by bytes rather than by count: about RaftLogRetainBytes of recent entries,
// so a briefly lagging follower catches up from the log instead of a full
// segment stream; rf1Overhead once the partition is idle and every node
// alive (idleAfter). A single-replica partition has no follower and keeps
// only rf1Overhead entries: what a sync made durable leaves the log at
// once, mostly while the log store still holds it in its memtable, so it
// is never flushed and compacted. (It kept 16 entries, which under Kafka
// produce, at about 1 MiB an entry, was 16 MiB more live log than the
// memtable's 16 MiB could hold: pebble wrote every entry three times or
// more.)
func (h *Host) compactionOverhead(lp *localPartition, unsyncedBytes int64, idle bool) uint64 {
	if lp.replicas <= 1 || idle {
		return rf1Overhead
	}
	entries := max(lp.sm.unsyncedEntries.Load(), 1)
	avg := max(unsyncedBytes/entries, 1)
	return uint64(min(max(h.cfg.RaftLogRetainBytes/avg, 16), 200_000))
}
