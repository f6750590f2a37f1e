package multiraft

import (
	"context"
	"time"

	"github.com/eddy-broker/eddy"
	"github.com/eddy-broker/eddy/multiraft/catalog"
)

// PartitionLeader is the node leading the partition's Raft group and the
// group's term, as this node's replica knows them; ok is false when this
// node holds no replica or no leader is known. The term grows with every
// change of leader, so it serves as Kafka's leader epoch.
func (h *Host) PartitionLeader(meta *catalog.TopicMeta, p eddy.Partition) (node, term uint64, ok bool) {
	if p.Validate(meta.Partitions) != nil {
		return 0, 0, false
	}
	h.mu.RLock()
	lp, local := h.parts[meta.Shards[p]]
	h.mu.RUnlock()
	if !local {
		return 0, 0, false
	}
	id, term, valid, err := h.nh.GetLeaderID(lp.shardID)
	if err != nil || !valid {
		return 0, 0, false
	}
	node = meta.NodeOf(int(p), id)
	return node, term, node != 0
}

// ControllerLeader is the node leading the controller shard, 0 when none
// is known.
func (h *Host) ControllerLeader() uint64 {
	id, _, valid, err := h.nh.GetLeaderID(ControllerShardID)
	if err != nil || !valid {
		return 0
	}
	return id
}

// OffsetForTime is the first offset whose record's timestamp is ts or
// later (-1 when none is), from this node's replica or, on a node without
// one, asked of a node that has one: through its segments' and batches'
// max timestamps either way. (A node without a replica scanned the whole
// partition through fetches of 8 MiB, each answer held outside any
// budget.)
func (h *Host) OffsetForTime(ref eddy.TopicRef, p eddy.Partition, ts int64) (offset, timestamp int64, err error) {
	meta, err := h.Topic(ref)
	if err != nil {
		return -1, -1, err
	}
	if p.Validate(meta.Partitions) == nil && !h.IsLocal(meta, p) {
		n, err := h.remoteReplica(meta, p)
		if err != nil {
			return -1, -1, err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return h.cfg.Forwarder.OffsetForTime(ctx, n, ref, p, ts)
	}
	lg, err := h.replicaLog(meta, p)
	if err != nil {
		return -1, -1, err
	}
	return lg.OffsetForTime(ts)
}
