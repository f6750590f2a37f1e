package multiraft

import (
	"context"
	"time"

	"github.com/eddy-broker/eddy"
	"github.com/eddy-broker/eddy/multiraft/catalog"
)

// Forwarder carries work for a partition this node holds no replica of to a
// node that does. The node package implements it over the HTTP API.
type Forwarder interface {
	// Produce appends recs to partition p on node n and returns the base
	// offset (the records are appended as one batch there).
	Produce(ctx context.Context, n catalog.NodeMeta, ref eddy.TopicRef, p eddy.Partition, recs []eddy.Record) (int64, error)
	// Fetch reads partition p on node n.
	Fetch(ctx context.Context, n catalog.NodeMeta, ref eddy.TopicRef, p eddy.Partition, offset eddy.Offset, maxRecords, maxBytes int, wait time.Duration) (*FetchResult, error)
	// AppendBatch appends a client's record batch, as it came, to
	// partition p on node n (see Host.AppendBatch) and returns its base
	// offset.
	AppendBatch(ctx context.Context, n catalog.NodeMeta, ref eddy.TopicRef, p eddy.Partition, b []byte) (int64, error)
	// TransformBatch hands a client's record batch, admitted here, to
	// partition p on node n, which runs the topic's transform on it and
	// appends the output (see Host.TransformElsewhere); it returns the base
	// offset, -1 when nothing was appended.
	TransformBatch(ctx context.Context, n catalog.NodeMeta, ref eddy.TopicRef, p eddy.Partition, b []byte) (int64, error)
	// FetchBatches reads stored batches of partition p on node n.
	FetchBatches(ctx context.Context, n catalog.NodeMeta, ref eddy.TopicRef, p eddy.Partition, offset eddy.Offset, maxBytes int, wait time.Duration) (eddy.FetchedBatches, error)
	// Await waits up to wait on node n for a record of partition p at
	// offset or later, reading none there, and reports whether one is
	// there (or the offset is out of range).
	Await(ctx context.Context, n catalog.NodeMeta, ref eddy.TopicRef, p eddy.Partition, offset eddy.Offset, wait time.Duration) (bool, error)
	// BatchBytesAt asks node n for the size of the stored batch holding
	// offset in partition p (Host.BatchBytesAt there).
	BatchBytesAt(ctx context.Context, n catalog.NodeMeta, ref eddy.TopicRef, p eddy.Partition, offset eddy.Offset) (int, error)
	// Offsets asks node n for partition p's offsets.
	Offsets(ctx context.Context, n catalog.NodeMeta, ref eddy.TopicRef, p eddy.Partition) (PartitionOffsets, error)
	// OffsetForTime asks node n for the first offset of partition p whose
	// record's timestamp is ts or later, and that timestamp (-1 and -1
	// when none is).
	OffsetForTime(ctx context.Context, n catalog.NodeMeta, ref eddy.TopicRef, p eddy.Partition, ts int64) (int64, int64, error)
	// DeleteRecords asks node n to move partition p's log start (see
	// Host.DeleteRecords there) and returns the log start after it.
	DeleteRecords(ctx context.Context, n catalog.NodeMeta, ref eddy.TopicRef, p eddy.Partition, before int64) (int64, error)
}

// remoteReplica picks a node holding a replica of partition p: an alive one,
// else the first. It fails when forwarding is off or no replica is known.
func (h *Host) remoteReplica(meta *catalog.TopicMeta, p eddy.Partition) (catalog.NodeMeta, error) {
	if h.cfg.Forwarder == nil {
		return catalog.NodeMeta{}, &eddy.Error{Code: eddy.CodeUnavailable, RetryAfterMs: 500,
			Message: "partition " + p.String() + " has no replica on this node"}
	}
	var nodes []catalog.NodeMeta
	h.ctrl.view(func(st *catalog.State) {
		for _, id := range meta.Replicas[p] {
			if n, ok := st.Nodes[id]; ok && id != h.cfg.NodeID {
				nodes = append(nodes, *n)
			}
		}
	})
	if len(nodes) == 0 {
		if err := h.quarantineError(meta, p); err != nil {
			return catalog.NodeMeta{}, err
		}
		return catalog.NodeMeta{}, eddy.Errorf(eddy.CodeUnavailable, "no node holds partition %d", p)
	}
	for _, n := range nodes {
		if h.live.alive(n.ID) {
			return n, nil
		}
	}
	return nodes[0], nil
}

// IsLocal reports whether this node holds a replica of the partition.
func (h *Host) IsLocal(meta *catalog.TopicMeta, p eddy.Partition) bool {
	h.mu.RLock()
	defer h.mu.RUnlock()
	_, ok := h.parts[meta.Shards[p]]
	return ok
}
