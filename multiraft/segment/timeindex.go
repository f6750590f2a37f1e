package segment

import (
	"github.com/eddy-broker/eddy"
	"github.com/eddy-broker/eddy/batch"
)

// OffsetForTime finds the first record, at or above the log start and
// below the visible end, whose timestamp is ts or later (Kafka's
// ListOffsets by time): the segments' max timestamps pick the one segment
// to look in, its batch headers' max timestamps the one batch, and only
// that batch is decoded. It returns -1, -1 when no record is that late.
// A segment's batches are not sorted by time (producers set timestamps),
// so like Kafka it answers the first batch whose max reaches ts.
func (l *Log) OffsetForTime(ts int64) (offset, timestamp int64, err error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.segs == nil {
		return -1, -1, ErrClosed
	}
	hb := make([]byte, batch.HeaderLen)
	for _, s := range l.segs {
		if s.maxTs < ts || s.end <= l.logStart {
			continue
		}
		for pos := int64(0); pos < s.size; {
			if _, err := s.f.ReadAt(hb, pos); err != nil {
				return -1, -1, eddy.Errorf(eddy.CodeCorrupt, "segment %d: read header at %d: %v", s.base, pos, err)
			}
			h, err := batch.ParseHeader(hb)
			if err != nil {
				return -1, -1, eddy.Errorf(eddy.CodeCorrupt, "segment %d at %d: %v", s.base, pos, err)
			}
			if h.FirstOffset >= l.visibleEnd {
				return -1, -1, nil
			}
			if h.MaxTimestamp >= ts && h.LastOffset() >= l.logStart {
				b := make([]byte, h.Size())
				if _, err := s.f.ReadAt(b, pos); err != nil {
					return -1, -1, eddy.Errorf(eddy.CodeCorrupt, "segment %d: read batch at %d: %v", s.base, pos, err)
				}
				recs, err := batch.Decode(nil, b)
				if err != nil {
					return -1, -1, err
				}
				for _, r := range recs {
					if int64(r.Offset) >= l.logStart && int64(r.Offset) < l.visibleEnd && r.Timestamp >= ts {
						return int64(r.Offset), r.Timestamp, nil
					}
				}
			}
			pos += int64(h.Size())
		}
	}
	return -1, -1, nil
}
