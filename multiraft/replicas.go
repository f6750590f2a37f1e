// Local replicas: the reconciler starts and stops this node's partition
// replicas to match the controller, and removes the data of those it no
// longer holds.

package multiraft

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/eddy-broker/eddy/internal/logkey"

	"github.com/eddy-broker/eddy"
	"github.com/eddy-broker/eddy/multiraft/catalog"
	"github.com/eddy-broker/eddy/multiraft/segment"
	"github.com/lni/dragonboat/v4"
	sm "github.com/lni/dragonboat/v4/statemachine"
)

func (h *Host) reconcileNow() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	h.reconcile(ctx)
}

type desiredShard struct {
	meta      *catalog.TopicMeta
	p         eddy.Partition
	members   map[uint64]dragonboat.Target // by ReplicaID
	replicaID uint64                       // this node's
}

// reconcile starts and stops local replicas to match the controller. It
// first reads the controller linearizably, so a node that restarts behind
// the controller never mistakes a live partition for a deleted one.
func (h *Host) reconcile(ctx context.Context) {
	// A ReadIndex whose request or answer is lost (the leader's connection
	// to a node that just restarted was still the dead one) is never
	// retried by dragonboat and would wait out the whole deadline: ask in
	// short attempts.
	for {
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := h.nh.SyncRead(rctx, ControllerShardID, nil)
		cancel()
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			h.log.Debug("reconcile: controller not readable yet", logkey.Err, err)
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-h.stop:
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
	desired := map[uint64]desiredShard{}
	h.ctrl.view(func(st *catalog.State) {
		for _, t := range st.Topics {
			tc := *t
			for p, shard := range t.Shards {
				mine := false
				members := map[uint64]dragonboat.Target{}
				for _, id := range t.Replicas[p] {
					if id == h.cfg.NodeID {
						mine = true
					}
					if n, ok := st.Nodes[id]; ok {
						members[t.ReplicaID(p, id)] = n.RaftAddr
					}
				}
				d := desiredShard{meta: &tc, p: eddy.Partition(p), members: members, replicaID: t.ReplicaID(p, h.cfg.NodeID)}
				if mv := st.Moves[shard]; mv != nil && mv.Node == h.cfg.NodeID && mv.Phase != catalog.MoveRebuild {
					mine, d.replicaID = true, mv.ReplicaID
				}
				if mine {
					desired[shard] = d
				}
			}
		}
	})
	h.mu.RLock()
	var stale []*localPartition
	for id, lp := range h.parts {
		if _, ok := desired[id]; !ok {
			stale = append(stale, lp)
		}
	}
	var missing []uint64
	for id := range desired {
		if _, ok := h.parts[id]; !ok {
			missing = append(missing, id)
		}
	}
	h.mu.RUnlock()
	for _, id := range missing {
		if h.stillQuarantined(id, desired[id].replicaID) {
			continue
		}
		if err := h.startPartition(id, desired[id]); err != nil {
			h.log.Error("start partition replica", logkey.Shard, id, logkey.Err, err)
		}
	}
	for _, lp := range stale {
		h.removePartition(lp)
	}
	h.reportDrained(ctx)
	h.removeOrphanDirs(desired)
}

func (h *Host) partitionDir(shardID uint64) string {
	return filepath.Join(h.cfg.Dir, "partitions", fmt.Sprintf("%010d", shardID))
}

func (h *Host) startPartition(shardID uint64, d desiredShard) error {
	segBytes := d.meta.ConfigInt(catalog.ConfSegmentBytes)
	psm := &partitionSM{fs: h.cfg.FS, dir: h.partitionDir(shardID), shardID: shardID,
		cfg: segment.Config{SegmentBytes: segBytes, SegmentMs: d.meta.ConfigInt(catalog.ConfSegmentMs), CacheBytes: h.cfg.SegmentCacheBytes}, syncBytes: h.cfg.SyncBytes, syncDue: h.kickSync, onSync: h.metrics.partitionSync}
	ref, part := d.meta.Ref().String(), int32(d.p)
	psm.onRestore = func(lg *segment.Log, err error) {
		if err != nil {
			h.log.Error("partition restore from a snapshot failed", logkey.Topic, ref, logkey.Partition, part, logkey.Shard, shardID, logkey.Err, err)
			return
		}
		start, end := lg.Offsets()
		h.log.Info("partition restored from a snapshot stream", logkey.Topic, ref, logkey.Partition, part, logkey.Shard, shardID,
			"log_start_offset", start, "high_watermark", end, "bytes", lg.Size())
	}
	if err := h.replaceQuarantined(shardID, d.replicaID); err != nil {
		return err
	}
	initial, join := d.members, false
	if d.replicaID > catalog.MaxNodeID {
		initial, join = nil, true // added by a move: it joins the shard
	}
	if h.nh.HasNodeInfo(shardID, d.replicaID) {
		initial, join = nil, false
		// A restart: open the log here, so a damaged one quarantines this
		// replica instead of failing dragonboat's Open (which panics the
		// whole node, every tenant with it).
		lg, err := segment.Open(h.cfg.FS, psm.dir, psm.cfg)
		if err != nil {
			h.quarantine(shardID, d, err)
			return nil
		}
		psm.pre = lg
	}
	cfg := h.shardConfig(shardID, d.replicaID, len(d.meta.Replicas[d.p]))
	cfg.IsNonVoting = startsNonVoting(d.replicaID)
	err := h.nh.StartOnDiskReplica(initial, join, func(uint64, uint64) sm.IOnDiskStateMachine { return psm }, cfg)
	if err != nil && !errors.Is(err, dragonboat.ErrShardAlreadyExist) {
		if psm.pre != nil { // never handed to dragonboat
			psm.pre.Close()
		}
		return err
	}
	lp := &localPartition{replicaID: d.replicaID,
		replicas: len(d.meta.Replicas[d.p]), ref: d.meta.Ref(), partition: d.p, shardID: shardID, sm: psm,
		prop: newProposer(h, shardID, d.meta.ConfigValue(catalog.ConfTimestampType) == "LogAppendTime")}
	h.mu.Lock()
	h.parts[shardID] = lp
	if h.byTenant[lp.ref.Tenant] == nil {
		h.byTenant[lp.ref.Tenant] = map[uint64]*localPartition{}
	}
	h.byTenant[lp.ref.Tenant][shardID] = lp
	h.mu.Unlock()
	h.log.Info("partition replica started", logkey.Topic, lp.ref.String(), logkey.Partition, int32(d.p), logkey.Shard, shardID)
	return nil
}

// removePartition stops a replica of a deleted topic (or one moved away)
// and deletes its data.
func (h *Host) removePartition(lp *localPartition) {
	h.stopPartition(lp)
	h.removeShardData(lp.shardID, lp.replicaID)
	h.log.Info("partition replica removed", logkey.Topic, lp.ref.String(), logkey.Partition, int32(lp.partition), logkey.Shard, lp.shardID)
}

// stopPartition stops a local replica, keeping its data.
func (h *Host) stopPartition(lp *localPartition) {
	h.mu.Lock()
	delete(h.parts, lp.shardID)
	if tp := h.byTenant[lp.ref.Tenant]; tp[lp.shardID] == lp {
		delete(tp, lp.shardID)
		if len(tp) == 0 {
			delete(h.byTenant, lp.ref.Tenant)
		}
	}
	h.mu.Unlock()
	lp.prop.close()
	if err := h.nh.StopShard(lp.shardID); err != nil && !errors.Is(err, dragonboat.ErrShardNotFound) {
		h.log.Warn("stop shard", logkey.Shard, lp.shardID, logkey.Err, err)
	}
}

func (h *Host) removeShardData(shardID, replicaID uint64) {
	for i := 0; i < 50; i++ {
		err := h.nh.RemoveData(shardID, replicaID)
		if err == nil || !errors.Is(err, dragonboat.ErrShardNotStopped) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := os.RemoveAll(h.partitionDir(shardID)); err != nil {
		h.log.Warn("remove partition data", logkey.Shard, shardID, logkey.Err, err)
	}
}

// removeOrphanDirs deletes partition directories of shards the controller
// no longer assigns here (a topic deleted while this node was down).
func (h *Host) removeOrphanDirs(desired map[uint64]desiredShard) {
	ents, err := os.ReadDir(filepath.Join(h.cfg.Dir, "partitions"))
	if err != nil {
		return
	}
	for _, e := range ents {
		base, damaged := e.Name(), false
		if i := strings.Index(base, ".damaged-"); i > 0 {
			base, damaged = base[:i], true
		}
		id, err := strconv.ParseUint(strings.TrimSuffix(base, ".restore"), 10, 64)
		if err != nil || id < catalog.FirstPartitionShard {
			continue
		}
		if _, ok := desired[id]; ok {
			continue
		}
		if damaged { // a set-aside copy of a deleted partition's replica
			os.RemoveAll(filepath.Join(h.cfg.Dir, "partitions", e.Name()))
			continue
		}
		h.mu.RLock()
		_, running := h.parts[id]
		h.mu.RUnlock()
		if !running {
			h.log.Info("removing data of a deleted partition", logkey.Shard, id)
			h.removeShardData(id, h.cfg.NodeID)
		}
	}
}
