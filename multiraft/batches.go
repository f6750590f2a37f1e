package multiraft

import (
	"context"
	"time"

	"github.com/eddy-broker/eddy"
	"github.com/eddy-broker/eddy/batch"
	"github.com/eddy-broker/eddy/internal/bufpool"
	"github.com/eddy-broker/eddy/multiraft/catalog"
	"github.com/eddy-broker/eddy/multiraft/segment"
)

// A client's own record batch (a Kafka producer's) is appended as it came:
// its compression, producer id, epoch and sequence kept, so a retry of it
// is answered with the offset it got the first time and a gap or an older
// epoch is refused (segment/producers.go, the strict rules).

// AllocKafkaProducer hands out a producer id for a tenant's Kafka client.
func (h *Host) AllocKafkaProducer(ctx context.Context, tenant eddy.TenantID) (int64, error) {
	res, err := h.tenantPropose(ctx, tenant, &catalog.Cmd{Op: catalog.OpAllocKafkaProducer})
	if err != nil {
		return 0, err
	}
	return res.ProducerID, nil
}

// KafkaProducer reports whether pid was handed to a Kafka client.
func (h *Host) KafkaProducer(pid int64) bool {
	var ok bool
	h.ctrl.view(func(st *catalog.State) { ok = st.KafkaProducer(pid) })
	return ok
}

// AppendBatch appends one checked record batch to a partition, as its own
// Raft entry, and returns its base offset (the first one's, for a retry).
// Its partition leader epoch is set to -1 (a client's value means nothing
// here). A partition this node holds no replica of is appended by a node
// that does (the batch travels as it came). The caller has checked the
// batch's producer id and decoded its records (quotas, limits).
func (h *Host) AppendBatch(ctx context.Context, meta *catalog.TopicMeta, p eddy.Partition, b []byte) (eddy.Offset, error) {
	if err := p.Validate(meta.Partitions); err != nil {
		return 0, err
	}
	if !h.IsLocal(meta, p) {
		n, err := h.remoteReplica(meta, p)
		if err != nil {
			return 0, err
		}
		base, err := h.cfg.Forwarder.AppendBatch(ctx, n, meta.Ref(), p, b)
		return eddy.Offset(base), err
	}
	if err := h.fullDisk(); err != nil {
		return 0, err
	}
	if maxMsg := meta.ConfigInt(catalog.ConfMaxMessageBytes); int64(len(b)) > maxMsg {
		return 0, eddy.Errorf(eddy.CodeRecordTooLarge, "the batch is %d bytes, over the topic's max.message.bytes of %d", len(b), maxMsg)
	}
	lp, err := h.local(meta, p)
	if err != nil {
		return 0, err
	}
	h.noteWrite(len(b))
	batch.SetPartitionLeaderEpoch(b, -1)
	hdr, err := batch.ParseHeader(b)
	if err != nil {
		return 0, err
	}
	return h.await(ctx, lp, append(encodeAppend(bufpool.Get(len(b)+2), true), b...), hdr.ProducerID < 0)
}

// await proposes an append entry on a local partition until it commits, or
// ctx ends. Retries are safe when the producer's sequence deduplicates
// them; an entry of no producer (once) is proposed again only while no
// attempt can have reached the log. The first attempt is made (waiting
// out a busy shard) before await tells ctx's caller the entry is queued
// (eddy.Queued), so a caller that waits for that before its next append
// keeps its entries in order (the Kafka listener pipelines a connection's
// produce requests so).
func (h *Host) await(ctx context.Context, lp *localPartition, cmd []byte, once bool) (eddy.Offset, error) {
	type result struct {
		base int64
		err  error
	}
	done := make(chan result, 1)
	first := h.submitInOrder(ctx, lp.shardID, cmd, once, lp.prop.stop)
	eddy.Queued(ctx)
	go func() {
		base, err := h.proposeWithRetry(lp.shardID, cmd, once, nil, lp.prop.stop, first)
		bufpool.Put(cmd)
		done <- result{base, err}
	}()
	select {
	case r := <-done:
		return eddy.Offset(r.base), r.err
	case <-ctx.Done():
		return 0, eddy.Errorf(eddy.CodeTimeout, "gave up waiting for the commit: %v; the write may or may not have been applied", ctx.Err())
	}
}

// AppendTransformed appends records a transform made from a client's
// batch (one partition's) as one batch under the client's producer id,
// epoch and base sequence; deduplication counts the client's batch (its
// record count and CRC), so a retry of it is answered with the first
// offset even when the transform's output differs. The rules are the
// windowed ones: a transform that dropped a batch leaves a gap in the
// producer's sequences. A partition held elsewhere, or a batch of no
// idempotent producer, is appended as records, without deduplication.
func (h *Host) AppendTransformed(ctx context.Context, meta *catalog.TopicMeta, p eddy.Partition, recs []eddy.Record, client []byte) (eddy.Offset, error) {
	if err := p.Validate(meta.Partitions); err != nil {
		return 0, err
	}
	ch, err := batch.ParseHeader(client)
	if err != nil {
		return 0, err
	}
	if !h.IsLocal(meta, p) || ch.ProducerID < 0 {
		parts := make([]eddy.Partition, len(recs))
		for i := range parts {
			parts[i] = p
		}
		res, err := h.ProduceTo(ctx, meta, recs, parts)
		if err != nil {
			return 0, err
		}
		return res[0].BaseOffset, nil
	}
	if err := h.fullDisk(); err != nil {
		return 0, err
	}
	lp, err := h.local(meta, p)
	if err != nil {
		return 0, err
	}
	opt := batch.Options{ProducerID: ch.ProducerID, ProducerEpoch: ch.ProducerEpoch, BaseSequence: ch.BaseSequence}
	if meta.ConfigValue(catalog.ConfTimestampType) == "LogAppendTime" {
		opt.LogAppendTime = time.Now().UnixMilli()
	}
	cmd := encodeAppendFrom(nil, segment.Source{Count: ch.NumRecords, CRC: ch.CRC})
	cmd = batch.Append(cmd, recs, opt)
	h.noteWrite(len(cmd))
	return h.await(ctx, lp, cmd, false)
}

// ConsumeBatch remembers, on partition p, that the topic's transform
// consumed a client's batch whole (dropped or dead-lettered every
// record), so that a retry of it is known (SeenBatch) and not transformed
// again. It returns the base offset the batch is answered with: -1, or
// where a first attempt that was appended went. A batch of no idempotent
// producer, or for a partition held elsewhere, is not remembered.
func (h *Host) ConsumeBatch(ctx context.Context, meta *catalog.TopicMeta, p eddy.Partition, client []byte) (eddy.Offset, error) {
	ch, err := batch.ParseHeader(client)
	if err != nil {
		return 0, err
	}
	if ch.ProducerID < 0 || !h.IsLocal(meta, p) {
		return -1, nil
	}
	if err := h.fullDisk(); err != nil {
		return 0, err
	}
	lp, err := h.local(meta, p)
	if err != nil {
		return 0, err
	}
	base, err := h.await(ctx, lp, encodeConsume(ch), false)
	return base - 1, err
}

// SeenBatch reports whether partition p's replica here remembers a
// client's batch (a retry of it), and its base offset then (-1: it was
// consumed). What the replica has not applied yet is not seen.
func (h *Host) SeenBatch(meta *catalog.TopicMeta, p eddy.Partition, client []byte) (eddy.Offset, bool) {
	ch, err := batch.ParseHeader(client)
	if err != nil || ch.ProducerID < 0 || !h.IsLocal(meta, p) {
		return 0, false
	}
	lg, err := h.replicaLog(meta, p)
	if err != nil {
		return 0, false
	}
	base, ok := lg.Seen(ch)
	return eddy.Offset(base), ok
}

// TransformElsewhere hands a client's batch for partition p, which this
// node holds no replica of, to a node that does; that node runs the
// topic's transform and appends the output under the client's producer
// id, so a retry is known whichever node it arrives at. It returns the
// base offset, -1 when the transform consumed the batch.
func (h *Host) TransformElsewhere(ctx context.Context, meta *catalog.TopicMeta, p eddy.Partition, client []byte) (eddy.Offset, error) {
	if err := p.Validate(meta.Partitions); err != nil {
		return 0, err
	}
	n, err := h.remoteReplica(meta, p)
	if err != nil {
		return 0, err
	}
	base, err := h.cfg.Forwarder.TransformBatch(ctx, n, meta.Ref(), p, client)
	return eddy.Offset(base), err
}
