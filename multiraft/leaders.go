package multiraft

import (
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
// later, from this node's replica (-1 when none is).
func (h *Host) OffsetForTime(ref eddy.TopicRef, p eddy.Partition, ts int64) (offset, timestamp int64, err error) {
	meta, err := h.Topic(ref)
	if err != nil {
		return -1, -1, err
	}
	lp, err := h.local(meta, p)
	if err != nil {
		return -1, -1, err
	}
	lg, err := lp.sm.log()
	if err != nil {
		return -1, -1, err
	}
	return lg.OffsetForTime(ts)
}
