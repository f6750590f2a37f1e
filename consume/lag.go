package consume

import (
	"context"
	"sort"
	"time"

	"github.com/eddy-broker/eddy"
	"github.com/eddy-broker/eddy/multiraft"
	"github.com/eddy-broker/eddy/multiraft/catalog"
)

// LagReader is what a group's lag is read from.
type LagReader interface {
	Topic(ref eddy.TopicRef) (*catalog.TopicMeta, error)
	TopicOffsets(meta *catalog.TopicMeta) []multiraft.PartitionOffsets
	// StampedAt is when the records from offset on began (false: none
	// there); see multiraft.Host.StampedAt.
	StampedAt(ctx context.Context, ref eddy.TopicRef, p eddy.Partition, offset eddy.Offset) (int64, bool)
}

// PartitionLag is how far a group is behind on one partition.
type PartitionLag struct {
	Topic     string
	Partition eddy.Partition
	Committed *int64 // nil: nothing committed (the group starts at the log start)
	End       int64  // the high watermark
	Lag       int64  // records between the committed offset (or the log start) and the end
	// LagMs is how long ago the oldest record not yet consumed was
	// stamped (0 when caught up, or when not asked for).
	LagMs int64
}

// GroupLag is a group's lag on every partition of the topics it reads or
// holds offsets for, sorted by topic and partition, with the sums (the
// largest LagMs). With inTime each lagging partition costs a batch
// header's read, for LagMs (a one-record fetch where the partition is on
// another node).
func GroupLag(ctx context.Context, r LagReader, g *catalog.GroupMeta, inTime bool, now time.Time) (parts []PartitionLag, lag, lagMs int64) {
	topics := g.Topics()
	sort.Strings(topics)
	for _, topic := range topics {
		meta, err := r.Topic(eddy.TopicRef{Tenant: g.Tenant, Name: eddy.TopicName(topic)})
		if err != nil {
			continue
		}
		for _, po := range r.TopicOffsets(meta) {
			pl := PartitionLag{Topic: topic, Partition: po.Partition, End: int64(po.HighWatermark)}
			next := int64(po.LogStart)
			if c, ok := g.Offsets[catalog.TopicPartition{Topic: topic, Partition: po.Partition}.Key()]; ok {
				pl.Committed = &c
				next = max(c, next)
			}
			pl.Lag = max(0, pl.End-next)
			if pl.Lag > 0 && inTime {
				if stamped, ok := r.StampedAt(ctx, meta.Ref(), po.Partition, eddy.Offset(next)); ok {
					pl.LagMs = max(0, now.UnixMilli()-stamped)
				}
			}
			lag += pl.Lag
			lagMs = max(lagMs, pl.LagMs)
			parts = append(parts, pl)
		}
	}
	return parts, lag, lagMs
}
