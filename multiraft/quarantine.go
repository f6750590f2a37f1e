package multiraft

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/eddy-broker/eddy/internal/logkey"

	"github.com/eddy-broker/eddy"
	"github.com/eddy-broker/eddy/multiraft/catalog"
	"github.com/eddy-broker/eddy/multiraft/segment"
)

// Quarantine is a local replica whose log could not be opened (a flipped
// byte in its synced data, a truncated segment, a damaged checkpoint, an
// I/O error). It is not started: the node and its other partitions serve,
// and requests for the partition go to another replica, or are refused
// with CodeCorrupt when this node holds the only one. A replicated
// partition's replica is rebuilt from a healthy one; a partition with one
// replica waits for an operator's RepairPartition.
type Quarantine struct {
	Topic     string         `json:"topic"`
	Partition eddy.Partition `json:"partition"`
	Shard     uint64         `json:"shard_id"`
	ReplicaID uint64         `json:"replica_id"`
	Reason    string         `json:"reason"`
	SinceMs   int64          `json:"since_ms"`
}

// quarantine records a replica that failed to open.
func (h *Host) quarantine(shard uint64, d desiredShard, err error) {
	q := &Quarantine{Topic: d.meta.Ref().String(), Partition: d.p, Shard: shard, ReplicaID: d.replicaID,
		Reason: err.Error(), SinceMs: time.Now().UnixMilli()}
	h.mu.Lock()
	h.quarantined[shard] = q
	h.mu.Unlock()
	h.log.Error("partition replica quarantined: its log cannot be opened; the node serves its other partitions",
		logkey.Topic, q.Topic, logkey.Partition, int32(d.p), logkey.Shard, shard, logkey.Err, err)
}

// stillQuarantined reports whether the shard's replica replicaID is the
// quarantined one (a rebuild's new replica is not).
func (h *Host) stillQuarantined(shard, replicaID uint64) bool {
	h.mu.RLock()
	defer h.mu.RUnlock()
	q := h.quarantined[shard]
	return q != nil && q.ReplicaID == replicaID
}

// requestRebuilds asks the controller to rebuild each quarantined replica
// of a replicated partition from its healthy replicas (the leader removes
// the damaged replica, a new one joins on this node and receives the
// partition as a snapshot). It runs every second until the move exists.
func (h *Host) requestRebuilds() {
	h.mu.RLock()
	var todo []Quarantine
	for _, q := range h.quarantined {
		todo = append(todo, *q)
	}
	h.mu.RUnlock()
	for _, q := range todo {
		asked := false
		h.ctrl.view(func(st *catalog.State) {
			_, t, p := st.TopicOfShard(q.Shard)
			asked = t == nil || len(t.Replicas[p]) < 2 || st.Moves[q.Shard] != nil
		})
		if asked {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		_, err := h.ctrlPropose(ctx, &catalog.Cmd{Op: catalog.OpRebuild, Move: &catalog.Move{Shard: q.Shard, Node: h.cfg.NodeID}})
		cancel()
		if err == nil {
			h.log.Warn("rebuilding a quarantined replica from the partition's other replicas", logkey.Topic, q.Topic, logkey.Partition, int32(q.Partition), logkey.Shard, q.Shard)
		}
	}
}

// replaceQuarantined clears the way for a rebuild's new replica: the
// damaged replica's Raft data is removed and its directory moved aside.
func (h *Host) replaceQuarantined(shard, replicaID uint64) error {
	h.mu.RLock()
	q := h.quarantined[shard]
	h.mu.RUnlock()
	if q == nil || q.ReplicaID == replicaID {
		return nil
	}
	if err := h.moveAside(shard); err != nil {
		return fmt.Errorf("move the damaged replica of shard %d aside: %w", shard, err)
	}
	h.removeShardData(shard, q.ReplicaID) // its Raft state; the directory is aside
	h.mu.Lock()
	delete(h.quarantined, shard)
	h.mu.Unlock()
	h.log.Info("damaged replica set aside; a new replica joins and receives the partition", logkey.Topic, q.Topic,
		logkey.Partition, int32(q.Partition), logkey.Shard, shard, "old_replica_id", q.ReplicaID, logkey.Replica, replicaID)
	return nil
}

// Quarantined lists this node's quarantined replicas, by topic and
// partition.
func (h *Host) Quarantined() []Quarantine {
	h.mu.RLock()
	out := make([]Quarantine, 0, len(h.quarantined))
	for _, q := range h.quarantined {
		out = append(out, *q)
	}
	h.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].Topic != out[j].Topic {
			return out[i].Topic < out[j].Topic
		}
		return out[i].Partition < out[j].Partition
	})
	return out
}

// quarantineError is the refusal for a partition whose only reachable
// replica is quarantined here; nil if it is not.
func (h *Host) quarantineError(meta *catalog.TopicMeta, p eddy.Partition) error {
	h.mu.RLock()
	q := h.quarantined[meta.Shards[p]]
	h.mu.RUnlock()
	if q == nil {
		return nil
	}
	return eddy.Errorf(eddy.CodeCorrupt, "partition %d of %s is quarantined on node %d: %s; an operator repairs it with `eddy partition repair %s %d`",
		p, meta.Name, h.cfg.NodeID, q.Reason, meta.Name, p)
}

// RepairResult says what a repair kept and dropped.
type RepairResult struct {
	segment.RepairReport
	Topic     string         `json:"topic"`
	Partition eddy.Partition `json:"partition"`
}

// RepairPartition truncates a quarantined replica's log to its last good
// batch, restarts it, and reports exactly what was dropped. Offsets after
// the cut are given again to new records (as after an unclean election in
// Kafka); consumers past the new end get offset_out_of_range.
func (h *Host) RepairPartition(ctx context.Context, ref eddy.TopicRef, p eddy.Partition) (*RepairResult, error) {
	meta, err := h.Topic(ref)
	if err != nil {
		return nil, err
	}
	if err := p.Validate(meta.Partitions); err != nil {
		return nil, err
	}
	shard := meta.Shards[p]
	h.mu.Lock()
	q := h.quarantined[shard]
	h.mu.Unlock()
	if q == nil {
		return nil, eddy.Errorf(eddy.CodeConflict, "partition %d of %s is not quarantined on node %d", p, meta.Name, h.cfg.NodeID)
	}
	rep, err := segment.Repair(h.cfg.FS, h.partitionDir(shard))
	if err != nil {
		return nil, fmt.Errorf("repair %s partition %d: %w", meta.Name, p, err)
	}
	h.mu.Lock()
	delete(h.quarantined, shard)
	h.mu.Unlock()
	h.log.Warn("partition repaired: its log was truncated to the last good batch", logkey.Topic, q.Topic, logkey.Partition, int32(p),
		logkey.Shard, shard, "kept_end_offset", rep.NextOffset, "dropped_records", rep.DroppedRecords, "dropped_bytes", rep.DroppedBytes)
	h.kickReconcile()
	return &RepairResult{RepairReport: *rep, Topic: string(meta.Name), Partition: p}, nil
}

// moveAside renames a damaged replica's directory out of the way, so a
// fresh replica can start in its place. The newest damaged copy of a shard
// is kept next to it for forensics (older ones are removed, and all of them
// with the partition).
func (h *Host) moveAside(shard uint64) error {
	dir := h.partitionDir(shard)
	if _, err := os.Stat(dir); os.IsNotExist(err) {
		return nil
	}
	if old, _ := filepath.Glob(dir + ".damaged-*"); len(old) > 0 {
		for _, o := range old {
			os.RemoveAll(o)
		}
	}
	return os.Rename(dir, fmt.Sprintf("%s.damaged-%d", dir, time.Now().Unix()))
}
