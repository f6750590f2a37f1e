package multiraft

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync/atomic"
	"time"

	"github.com/eddy-broker/eddy/internal/logkey"

	"github.com/eddy-broker/eddy"
	"github.com/eddy-broker/eddy/multiraft/catalog"
	"github.com/eddy-broker/eddy/multiraft/segment"
)

// CreateTopic creates a topic and waits until this node's replicas of it are
// started and have leaders (bounded by ctx), so a produce right after
// creation succeeds.
func (h *Host) CreateTopic(ctx context.Context, tenant eddy.TenantID, spec catalog.TopicSpec) (*catalog.TopicMeta, error) {
	if err := tenant.Validate(); err != nil {
		return nil, err
	}
	nodes := 0
	h.ctrl.view(func(st *catalog.State) { nodes = len(st.Nodes) })
	if err := spec.Validate(nodes); err != nil {
		return nil, err
	}
	if _, err := h.Topic(eddy.TopicRef{Tenant: tenant, Name: spec.Name}); err == nil {
		return nil, eddy.Errorf(eddy.CodeTopicExists, "topic %s already exists", spec.Name)
	}
	if err := h.configAllowed(spec.Config); err != nil {
		return nil, err
	}
	// Each partition replica's Raft log takes its first bytes at once.
	if err := h.storageFull(fmt.Sprintf("%d partitions' Raft logs", spec.Partitions), uint64(spec.Partitions)*h.partitionLogBytes()); err != nil {
		return nil, err
	}
	meta := &catalog.TopicMeta{Tenant: tenant, Name: spec.Name, Partitions: spec.Partitions,
		ReplicationFactor: spec.ReplicationFactor, Config: spec.Config, CreatedMs: time.Now().UnixMilli()}
	if meta.Config == nil {
		meta.Config = map[string]string{}
	}
	res, err := h.tenantPropose(ctx, tenant, &catalog.Cmd{Op: catalog.OpCreateTopic, Topic: meta})
	if err != nil {
		return nil, err
	}
	h.awaitPartitions(ctx, res.Topic, 0)
	return res.Topic, nil
}

// configAllowed refuses topic configs a node of an earlier build in the
// cluster would refuse as it applied them (its catalog would differ).
func (h *Host) configAllowed(c map[string]string) error {
	if catalog.NeedsCompactionFeature(c) && !h.allHave(catalog.FeatureCompaction) {
		return eddy.Errorf(eddy.CodeConflict, "a node of an earlier build is in the cluster: compaction and segment.ms can be set once every node is upgraded")
	}
	return nil
}

// AlterTopic changes a topic's config keys (an empty value resets one)
// and grows its partitions (0: unchanged), then waits, bounded by ctx,
// for new partitions to be served.
func (h *Host) AlterTopic(ctx context.Context, ref eddy.TopicRef, config map[string]string, partitions int32) (*catalog.TopicMeta, error) {
	cur, err := h.Topic(ref)
	if err != nil {
		return nil, err
	}
	if err := h.configAllowed(config); err != nil {
		return nil, err
	}
	if partitions > cur.Partitions {
		if err := h.storageFull(fmt.Sprintf("%d partitions' Raft logs", partitions-cur.Partitions), uint64(partitions-cur.Partitions)*h.partitionLogBytes()); err != nil {
			return nil, err
		}
	}
	res, err := h.tenantPropose(ctx, ref.Tenant, &catalog.Cmd{Op: catalog.OpAlterTopic, Ref: ref.String(),
		Topic: &catalog.TopicMeta{Partitions: partitions, Config: config}})
	if err != nil {
		return nil, err
	}
	h.awaitPartitions(ctx, res.Topic, int(cur.Partitions))
	return res.Topic, nil
}

// awaitPartitions starts a topic's replicas here and waits, bounded by
// ctx, until its partitions from the first on have leaders (or, held by
// other nodes, answer there).
func (h *Host) awaitPartitions(ctx context.Context, t *catalog.TopicMeta, first int) {
	h.kickReconcile()
	for p := first; p < len(t.Shards); p++ {
		if !slices.Contains(t.Replicas[p], h.cfg.NodeID) {
			h.waitRemote(ctx, t, eddy.Partition(p))
			continue
		}
		if err := h.waitLeader(ctx, t.Shards[p]); err != nil {
			return // created; leaders will follow
		}
	}
}

// waitRemote waits (bounded by ctx) until the node holding a partition
// this node does not host serves it.
func (h *Host) waitRemote(ctx context.Context, meta *catalog.TopicMeta, p eddy.Partition) {
	for ctx.Err() == nil {
		n, err := h.remoteReplica(meta, p)
		if err != nil {
			return
		}
		if _, err := h.cfg.Forwarder.Offsets(ctx, n, meta.Ref(), p); err == nil {
			return
		}
		select {
		case <-ctx.Done():
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (h *Host) waitLeader(ctx context.Context, shard uint64) error {
	for {
		h.mu.RLock()
		_, local := h.parts[shard]
		h.mu.RUnlock()
		if local {
			if _, _, ok, _ := h.nh.GetLeaderID(shard); ok {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// DeleteTopic deletes a topic; every replica removes its data.
func (h *Host) DeleteTopic(ctx context.Context, ref eddy.TopicRef) error {
	if _, err := h.Topic(ref); err != nil {
		return err
	}
	_, err := h.tenantPropose(ctx, ref.Tenant, &catalog.Cmd{Op: catalog.OpDeleteTopic, Ref: ref.String()})
	h.kickReconcile()
	return err
}

// Topic returns a topic's metadata.
func (h *Host) Topic(ref eddy.TopicRef) (*catalog.TopicMeta, error) {
	var t *catalog.TopicMeta
	h.ctrl.view(func(st *catalog.State) {
		if m, ok := st.Topics[ref.String()]; ok {
			c := *m
			t = &c
		}
	})
	if t == nil {
		return nil, eddy.Errorf(eddy.CodeNotFound, "topic %s does not exist", ref.Name)
	}
	return t, nil
}

// PartitionIncarnation tells one life of a partition from the next: its Raft
// shard, which a topic deleted and made again under its name (its offsets
// starting over) does not keep.
func (h *Host) PartitionIncarnation(ref eddy.TopicRef, p eddy.Partition) (uint64, error) {
	var shard uint64
	h.ctrl.view(func(st *catalog.State) {
		if m, ok := st.Topics[ref.String()]; ok && p >= 0 && int(p) < len(m.Shards) {
			shard = m.Shards[p]
		}
	})
	if shard == 0 {
		return 0, eddy.Errorf(eddy.CodeNotFound, "partition %d of topic %s does not exist", p, ref.Name)
	}
	return shard, nil
}

// Topics lists a tenant's topics by name.
func (h *Host) Topics(tenant eddy.TenantID) []*catalog.TopicMeta {
	var out []*catalog.TopicMeta
	h.ctrl.view(func(st *catalog.State) {
		for _, m := range st.Topics {
			if m.Tenant == tenant {
				c := *m
				out = append(out, &c)
			}
		}
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Nodes lists the registered nodes.
func (h *Host) Nodes() []catalog.NodeMeta {
	var out []catalog.NodeMeta
	h.ctrl.view(func(st *catalog.State) {
		for _, id := range st.NodeIDs() {
			out = append(out, *st.Nodes[id])
		}
	})
	return out
}

// NodeID is this node's id.
func (h *Host) NodeID() uint64 { return h.cfg.NodeID }

func (h *Host) local(meta *catalog.TopicMeta, p eddy.Partition) (*localPartition, error) {
	if err := p.Validate(meta.Partitions); err != nil {
		return nil, err
	}
	h.mu.RLock()
	lp, ok := h.parts[meta.Shards[p]]
	h.mu.RUnlock()
	if !ok {
		return nil, &eddy.Error{Code: eddy.CodeUnavailable, RetryAfterMs: 500,
			Message: "partition " + p.String() + " is not available on this node yet"}
	}
	return lp, nil
}

// ProduceResult is where one batch landed.
type ProduceResult struct {
	Partition  eddy.Partition
	BaseOffset eddy.Offset
}

// AutoPartition in a Batch's Partition asks Produce to choose: by key with
// murmur2 when the records share... see Produce.
const AutoPartition eddy.Partition = -1

// Produce appends records to a topic and returns each record's partition
// and offset (in input order) once they are committed.
//
// part[i] is record i's partition, or AutoPartition: keyed records map with
// Kafka's murmur2, unkeyed ones go to one partition per call, round-robin
// across calls. Validation (partitions, max.message.bytes, queue space) is
// complete before anything is enqueued: a call is refused whole or admitted
// whole. Each partition's records are appended atomically as one batch.
func (h *Host) Produce(ctx context.Context, ref eddy.TopicRef, recs []eddy.Record, part []eddy.Partition) ([]ProduceResult, error) {
	meta, err := h.Topic(ref)
	if err != nil {
		return nil, err
	}
	return h.ProduceTo(ctx, meta, recs, part)
}

// CatalogVersion moves whenever the controller's state changes: metadata
// read at one version (Topic, Tenant) is current while it has not moved.
func (h *Host) CatalogVersion() uint64 { return h.ctrl.version.Load() }

// ProduceTo is Produce to a topic whose metadata the caller has read
// (ingest caches it per CatalogVersion).
func (h *Host) ProduceTo(ctx context.Context, meta *catalog.TopicMeta, recs []eddy.Record, part []eddy.Partition) ([]ProduceResult, error) {
	if len(recs) == 0 {
		return nil, eddy.Errorf(eddy.CodeInvalid, "no records")
	}
	if err := h.fullDisk(); err != nil {
		return nil, err
	}
	ref := meta.Ref()
	var err error
	maxMsg := meta.ConfigInt(catalog.ConfMaxMessageBytes)
	out := make([]ProduceResult, len(recs))
	var unkeyed eddy.Partition = -1
	size := 0
	for i := range recs {
		sz := recs[i].Size()
		if int64(sz) > maxMsg {
			return nil, eddy.Errorf(eddy.CodeRecordTooLarge, "record %d is %d bytes, over the topic's max.message.bytes of %d", i, sz, maxMsg)
		}
		size += sz
		p := AutoPartition
		if part != nil {
			p = part[i]
		}
		switch {
		case p != AutoPartition:
			if err := p.Validate(meta.Partitions); err != nil {
				return nil, err
			}
		case recs[i].Key != nil:
			p = eddy.KeyPartition(recs[i].Key, meta.Partitions)
		case meta.Partitions == 1:
			p = 0
		default:
			if unkeyed < 0 {
				unkeyed = h.nextRoundRobin(ref, meta.Partitions)
			}
			p = unkeyed
		}
		out[i].Partition = p
	}
	h.noteWrite(size) // the disk is checked again every 8 MiB admitted
	// Group by partition, preserving order within each.
	type group struct {
		lp     *localPartition // nil: forwarded to remote
		remote catalog.NodeMeta
		idx    []int
		req    produceReq
		bytes  int
	}
	groups := map[eddy.Partition]*group{}
	var order []eddy.Partition
	for i := range recs {
		p := out[i].Partition
		g, ok := groups[p]
		if !ok {
			g = &group{}
			if err := p.Validate(meta.Partitions); err != nil {
				return nil, err
			}
			if h.IsLocal(meta, p) {
				if g.lp, err = h.local(meta, p); err != nil {
					return nil, err
				}
			} else if g.remote, err = h.remoteReplica(meta, p); err != nil {
				return nil, err
			}
			groups[p] = g
			order = append(order, p)
		}
		g.idx = append(g.idx, i)
		g.bytes += recs[i].Size() + 32
	}
	// Reserve queue space on every local partition first: all or nothing.
	for n, p := range order {
		g := groups[p]
		if g.lp == nil {
			continue
		}
		if err := g.lp.prop.reserve(len(g.idx), g.bytes); err != nil {
			for _, q := range order[:n] {
				if gq := groups[q]; gq.lp != nil {
					gq.lp.prop.unreserve(len(gq.idx), gq.bytes)
				}
			}
			return nil, err
		}
	}
	for _, p := range order {
		g := groups[p]
		if len(g.idx) == len(recs) {
			g.req.recs = recs
		} else {
			g.req.recs = make([]eddy.Record, len(g.idx))
			for j, i := range g.idx {
				g.req.recs[j] = recs[i]
			}
		}
		g.req.bytes = g.bytes
		if g.lp != nil {
			g.lp.prop.enqueue(&g.req)
			continue
		}
		g.req.done = make(chan struct{})
		go func(g *group, p eddy.Partition) {
			g.req.base, g.req.err = h.cfg.Forwarder.Produce(ctx, g.remote, ref, p, g.req.recs)
			close(g.req.done)
		}(g, p)
	}
	eddy.Queued(ctx)
	var firstErr error
	for _, p := range order {
		g := groups[p]
		if err := g.req.await(ctx); err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		for j, i := range g.idx {
			out[i].BaseOffset = eddy.Offset(g.req.base + int64(j))
		}
	}
	if firstErr != nil {
		return nil, firstErr
	}
	return out, nil
}

func (h *Host) nextRoundRobin(key eddy.TopicRef, n int32) eddy.Partition {
	h.mu.RLock()
	c, ok := h.rr[key]
	h.mu.RUnlock()
	if !ok {
		h.mu.Lock()
		if c, ok = h.rr[key]; !ok {
			c = new(atomic.Uint32)
			h.rr[key] = c
		}
		h.mu.Unlock()
	}
	return eddy.Partition((c.Add(1) - 1) % uint32(n))
}

// PartitionOffsets are a partition's bounds and placement.
type PartitionOffsets struct {
	Partition     eddy.Partition
	LogStart      eddy.Offset
	HighWatermark eddy.Offset
	Leader        uint64 // node id, 0 when unknown
	Replicas      []uint64
	Bytes         int64
	Err           error // set by TopicOffsets when unavailable
	// Quarantined is why this node's replica is quarantined, if it is.
	Quarantined string
}

// Offsets returns a partition's earliest and latest offsets as this node's
// replica sees them.
func (h *Host) Offsets(ref eddy.TopicRef, p eddy.Partition) (PartitionOffsets, error) {
	meta, err := h.Topic(ref)
	if err != nil {
		return PartitionOffsets{}, err
	}
	return h.partitionOffsets(meta, p)
}

func (h *Host) partitionOffsets(meta *catalog.TopicMeta, p eddy.Partition) (PartitionOffsets, error) {
	if p.Validate(meta.Partitions) == nil && !h.IsLocal(meta, p) {
		n, err := h.remoteReplica(meta, p)
		if err != nil {
			return PartitionOffsets{}, err
		}
		if !h.live.alive(n.ID) {
			// Do not wait on a node known to be down (a describe would
			// take a timeout per partition).
			return PartitionOffsets{Partition: p, Replicas: meta.Replicas[p]},
				eddy.Errorf(eddy.CodeUnavailable, "node %d, which holds partition %d, is unreachable", n.ID, p)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		po, err := h.cfg.Forwarder.Offsets(ctx, n, meta.Ref(), p)
		po.Partition, po.Replicas = p, meta.Replicas[p]
		return po, err
	}
	lp, err := h.local(meta, p)
	if err != nil {
		return PartitionOffsets{}, err
	}
	lg, err := lp.sm.log()
	if err != nil {
		return PartitionOffsets{}, err
	}
	s, e := lg.Offsets()
	po := PartitionOffsets{Partition: p, LogStart: eddy.Offset(s), HighWatermark: eddy.Offset(e),
		Replicas: meta.Replicas[p], Bytes: lg.Size()}
	if id, _, ok, _ := h.nh.GetLeaderID(lp.shardID); ok {
		po.Leader = meta.NodeOf(int(p), id)
	}
	return po, nil
}

// TopicOffsets returns every partition's offsets; a partition whose offsets
// cannot be had (its node is down) carries the error in Err.
func (h *Host) TopicOffsets(meta *catalog.TopicMeta) []PartitionOffsets {
	out := make([]PartitionOffsets, meta.Partitions)
	for p := range out {
		po, err := h.partitionOffsets(meta, eddy.Partition(p))
		po.Partition, po.Replicas, po.Err = eddy.Partition(p), meta.Replicas[p], err
		h.mu.RLock()
		if q := h.quarantined[meta.Shards[p]]; q != nil {
			po.Quarantined = q.Reason
		}
		h.mu.RUnlock()
		out[p] = po
	}
	return out
}

// localPartitions lists the partition replicas this node holds now.
func (h *Host) localPartitions() []*localPartition {
	h.mu.RLock()
	defer h.mu.RUnlock()
	parts := make([]*localPartition, 0, len(h.parts))
	for _, lp := range h.parts {
		parts = append(parts, lp)
	}
	return parts
}

// applyRetention: on each partition this node leads, propose DeleteBefore
// from the retention policy. Every replica applies it at the same index.
func (h *Host) applyRetention(now time.Time) {
	parts := h.localPartitions()
	for _, lp := range parts {
		if id, _, ok, _ := h.nh.GetLeaderID(lp.shardID); !ok || id != lp.replicaID {
			continue
		}
		meta, err := h.Topic(lp.ref)
		if err != nil || !meta.Deletes() {
			continue // cleanup.policy compact: only compaction drops records
		}
		lg, err := lp.sm.log()
		if err != nil {
			continue
		}
		cut := RetentionPoint(lg.Segments(), now.UnixMilli(), meta.ConfigInt(catalog.ConfRetentionMs), meta.ConfigInt(catalog.ConfRetentionBytes))
		// A link's unsent records stay; the link itself gives up what is
		// past its caps (links.go), which moves its hold.
		var hold int64 = -1
		h.ctrl.view(func(st *catalog.State) { hold = st.LinkHold(lp.shardID) })
		if hold >= 0 {
			cut = min(cut, hold)
		}
		if start, _ := lg.Offsets(); cut <= start {
			continue
		}
		if _, err := h.proposeWithRetry(lp.shardID, encodeDeleteBefore(cut), false, nil, h.stop, nil); err != nil && !errors.Is(err, context.Canceled) {
			h.log.Warn("retention proposal failed", logkey.Topic, lp.ref.String(), logkey.Partition, int32(lp.partition), logkey.Err, err)
		}
	}
}

// RetentionPoint returns the first offset to keep: whole sealed segments are
// dropped while they are older than retentionMs (by their newest record) or
// while the log is over retentionBytes. -1 disables a limit. The active
// segment is always kept.
func RetentionPoint(segs []segment.SegmentInfo, nowMs, retentionMs, retentionBytes int64) int64 {
	if len(segs) == 0 {
		return 0
	}
	var total int64
	for _, s := range segs {
		total += s.Size
	}
	cut := segs[0].Base
	for _, s := range segs[:len(segs)-1] {
		expired := retentionMs > 0 && s.MaxTimestamp > 0 && nowMs-s.MaxTimestamp > retentionMs
		over := retentionBytes > 0 && total > retentionBytes
		if !expired && !over {
			break
		}
		total -= s.Size
		cut = s.End
	}
	return cut
}
