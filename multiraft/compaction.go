package multiraft

import (
	"time"

	"github.com/eddy-broker/eddy/internal/logkey"
	"github.com/eddy-broker/eddy/multiraft/catalog"
	"github.com/eddy-broker/eddy/multiraft/segment"
)

// compactLogs compacts, one at a time, the replicas this node holds of
// topics with cleanup.policy compact whose logs were written enough since
// their last compaction (min.cleanable.dirty.ratio of their sealed
// bytes). Every replica compacts its own log: compaction only drops what
// a newer record of the same key supersedes, so replicas hold the same
// records however their compactions fall, and no Raft entry is needed.
// Records a link has not sent stay as they are (the link reads them
// whole), as they stay through retention.
func (h *Host) compactLogs(now time.Time) {
	parts := h.localPartitions()
	for _, lp := range parts {
		select {
		case <-h.stop:
			return
		default:
		}
		meta, err := h.Topic(lp.ref)
		if err != nil || !meta.Compacted() {
			continue
		}
		lg, err := lp.sm.log()
		if err != nil {
			continue
		}
		dirty, sealed := lg.DirtyBytes()
		if dirty == 0 || float64(dirty) < meta.ConfigFloat(catalog.ConfMinCleanableRatio)*float64(sealed) {
			continue
		}
		var hold int64 = -1
		h.ctrl.view(func(st *catalog.State) { hold = st.LinkHold(lp.shardID) })
		opt := segment.CompactOptions{NowMs: now.UnixMilli(), DeleteRetentionMs: meta.ConfigInt(catalog.ConfDeleteRetentionMs),
			MaxKeyBytes: h.cfg.CompactionKeyBytes, BytesPerSec: h.cfg.CompactionBytesPerSec}
		if hold >= 0 {
			opt.Before = max(hold, 1) // 0 sent: nothing to compact
		}
		res, err := lg.Compact(opt)
		if err != nil {
			h.log.Warn("compaction failed", logkey.Topic, lp.ref.String(), logkey.Partition, int32(lp.partition), logkey.Err, err)
		}
		if f := h.cfg.Hooks.OnCompaction; f != nil {
			f(lp.ref.Tenant, res.Dropped, res.BytesBefore-res.BytesAfter, err)
		}
	}
}
