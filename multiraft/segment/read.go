package segment

import (
	"encoding/binary"
	"fmt"
	"io"

	"github.com/eddy-broker/eddy"
	"github.com/eddy-broker/eddy/batch"
	"github.com/eddy-broker/eddy/internal/bufpool"
)

// Read returns whole batches starting with the one that holds off, up to
// about maxBytes (at least one batch, however large), from one segment.
// Reading at the high watermark returns no batches; outside [log start,
// high watermark] is CodeOffsetOutOfRange.
func (l *Log) Read(off int64, maxBytes int) (eddy.FetchedBatches, error) {
	return l.read(off, maxBytes, false)
}

// ReadPooled is Read into a buffer of internal/bufpool (Pooled set), for
// a caller that gives it back once it has written the batches. Its
// capacity may be up to twice what is read.
func (l *Log) ReadPooled(off int64, maxBytes int) (eddy.FetchedBatches, error) {
	return l.read(off, maxBytes, true)
}

func (l *Log) read(off int64, maxBytes int, pooled bool) (eddy.FetchedBatches, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	res := eddy.FetchedBatches{LogStart: l.logStart, HighWatermark: l.visibleEnd}
	s, pos, h, err := l.findLocked(off)
	if err != nil || s == nil {
		return res, err
	}
	maxBytes = max(maxBytes, h.Size())
	n := min(int64(maxBytes), s.size-pos)
	var buf []byte
	if pooled {
		buf = bufpool.Get(int(n))[:n]
	} else {
		buf = make([]byte, n)
	}
	giveBack := func() {
		if pooled {
			bufpool.Put(buf)
		}
	}
	m, err := s.f.ReadAt(buf, pos)
	if err != nil && err != io.EOF {
		giveBack()
		return res, fmt.Errorf("read segment %d: %w", s.base, err)
	}
	clear(buf[m:]) // a file shorter than its size reads as zeros (damaged), never as a pooled buffer's earlier bytes
	if end := pos + int64(m); end <= s.dropped.Load() {
		// Older than what a sync leaves cached: read from the disk, and
		// dropped again behind the reader, so that a catch-up read does
		// not grow the page cache either (dropCachedLocked).
		s.f.DropCache(0, end)
	}
	// Keep whole batches below the high watermark, each checked. A damaged
	// batch ends the answer: the good batches before it are returned, and
	// a read that starts at it is refused, saying where it is and where
	// the next batch starts, so a consumer can decide to skip it.
	keep := 0
	for keep+batch.HeaderLen <= len(buf) {
		h, err := batch.ParseHeader(buf[keep:])
		if err != nil {
			if keep > 0 {
				break
			}
			giveBack()
			return res, eddy.Errorf(eddy.CodeCorrupt, "the batch holding offset %d is damaged (segment %d at position %d: %v)", off, s.base, pos, err)
		}
		if h.FirstOffset >= l.visibleEnd {
			break
		}
		if keep+h.Size() > len(buf) {
			if keep == 0 { // buf holds the rest of the segment, or h.Size()
				giveBack()
				return res, eddy.Errorf(eddy.CodeCorrupt, "the batch of offsets %d to %d is damaged (its length runs past its segment); the next batch starts at offset %d",
					h.FirstOffset, h.LastOffset(), h.LastOffset()+1)
			}
			break
		}
		if _, err := batch.Check(buf[keep:]); err != nil {
			if keep > 0 {
				break
			}
			giveBack()
			return res, eddy.Errorf(eddy.CodeCorrupt, "the batch of offsets %d to %d fails its checksum (%v); the next batch starts at offset %d",
				h.FirstOffset, h.LastOffset(), err, h.LastOffset()+1)
		}
		keep += h.Size()
	}
	res.Batches, res.Pooled = buf[:keep], pooled
	return res, nil
}

// BatchBytesAt is the size of the batch holding off: what a read from off
// returns at least, however small its maxBytes. It is 0 at the high
// watermark, and outside [log start, high watermark].
func (l *Log) BatchBytesAt(off int64) int {
	h, ok := l.BatchAt(off)
	if !ok {
		return 0
	}
	return h.Size()
}

// BatchAt is the header of the batch holding off, read alone; false at the
// high watermark, and outside [log start, high watermark].
func (l *Log) BatchAt(off int64) (batch.Header, bool) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	s, _, h, err := l.findLocked(off)
	return h, err == nil && s != nil
}

// findLocked finds the batch holding off: its segment, position and header
// (no segment at the high watermark).
func (l *Log) findLocked(off int64) (*seg, int64, batch.Header, error) {
	if l.segs == nil {
		return nil, 0, batch.Header{}, ErrClosed
	}
	if off < l.logStart || off > l.visibleEnd {
		return nil, 0, batch.Header{}, eddy.Errorf(eddy.CodeOffsetOutOfRange, "offset %d is outside [%d, %d]", off, l.logStart, l.visibleEnd)
	}
	if off == l.visibleEnd {
		return nil, 0, batch.Header{}, nil
	}
	i := len(l.segs) - 1
	for i > 0 && l.segs[i].base > off {
		i--
	}
	s := l.segs[i]
	pos, err := s.lookup(off)
	if err != nil {
		return nil, 0, batch.Header{}, err
	}
	var hb [batch.HeaderLen]byte
	for {
		if pos >= s.size {
			return nil, 0, batch.Header{}, eddy.Errorf(eddy.CodeCorrupt, "segment %d: offset %d not found", s.base, off)
		}
		if _, err := s.f.ReadAt(hb[:], pos); err != nil {
			return nil, 0, batch.Header{}, eddy.Errorf(eddy.CodeCorrupt, "segment %d: read header at %d: %v", s.base, pos, err)
		}
		h, err := batch.ParseHeader(hb[:])
		if err != nil {
			return nil, 0, batch.Header{}, eddy.Errorf(eddy.CodeCorrupt, "segment %d at %d: %v", s.base, pos, err)
		}
		if h.LastOffset() >= off {
			return s, pos, h, nil
		}
		pos += int64(h.Size())
	}
}

// lookup returns the file position to start scanning for off.
func (s *seg) lookup(off int64) (int64, error) {
	rel := uint32(off - s.base)
	if s.entries != nil {
		return floorPos(s.entries, rel), nil
	}
	// Sealed: binary search the index file.
	size, err := s.idx.Size()
	if err != nil {
		return 0, err
	}
	n := int(size / indexEntryLen)
	lo, hi := 0, n // find the first entry with rel > target
	var b [indexEntryLen]byte
	for lo < hi {
		mid := (lo + hi) / 2
		if _, err := s.idx.ReadAt(b[:], int64(mid)*indexEntryLen); err != nil {
			return 0, fmt.Errorf("read index %d: %w", s.base, err)
		}
		if binary.BigEndian.Uint32(b[:]) > rel {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	if lo == 0 {
		return 0, nil
	}
	if _, err := s.idx.ReadAt(b[:], int64(lo-1)*indexEntryLen); err != nil {
		return 0, err
	}
	return int64(binary.BigEndian.Uint32(b[4:])), nil
}
