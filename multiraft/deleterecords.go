package multiraft

import (
	"context"

	"github.com/eddy-broker/eddy"
	"github.com/eddy-broker/eddy/multiraft/catalog"
)

// DeleteRecords moves a partition's log start to before (-1: its high
// watermark), as Kafka's DeleteRecords: the records below are no longer
// read, and the segments wholly below go at the next sync. It is an entry
// of the partition's own Raft log (the one retention proposes), so every
// replica applies it at the same index; a replica that does not lead
// proposes it through the leader, and a node without a replica asks one
// that has it. Past the high watermark (as this replica knows it) is out
// of range. Records the topic's link has not sent yet are kept: deleting
// them is a conflict naming the link's position. It returns the log
// start after it.
func (h *Host) DeleteRecords(ctx context.Context, ref eddy.TopicRef, p eddy.Partition, before int64) (int64, error) {
	meta, err := h.Topic(ref)
	if err != nil {
		return 0, err
	}
	if err := p.Validate(meta.Partitions); err != nil {
		return 0, err
	}
	if !h.IsLocal(meta, p) {
		n, err := h.remoteReplica(meta, p)
		if err != nil {
			return 0, err
		}
		return h.cfg.Forwarder.DeleteRecords(ctx, n, ref, p, before)
	}
	lp, err := h.local(meta, p)
	if err != nil {
		return 0, err
	}
	lg, err := lp.sm.log()
	if err != nil {
		return 0, err
	}
	start, hw := lg.Offsets()
	switch {
	case before == -1:
		before = hw
	case before < 0 || before > hw:
		return 0, eddy.Errorf(eddy.CodeOffsetOutOfRange, "offset %d is outside partition %d's log (%d to its high watermark %d)", before, p, start, hw)
	}
	var hold int64 = -1
	h.ctrl.view(func(st *catalog.State) { hold = st.LinkHold(lp.shardID) })
	if hold >= 0 && before > hold {
		return 0, eddy.Errorf(eddy.CodeConflict, "the topic's link has sent partition %d's records up to offset %d only; those from there on stay until it has", p, hold)
	}
	if before <= start {
		return start, nil
	}
	return h.proposeWithRetry(lp.shardID, encodeDeleteBefore(before), false, nil, ctx.Done(), nil)
}
