package segment

import (
	"fmt"
	"io"
	"path/filepath"
	"sort"

	"github.com/eddy-broker/eddy/batch"
)

// RepairReport says what Repair kept and dropped.
type RepairReport struct {
	// NextOffset is the offset after the last good batch: the log's new
	// end, where the next record goes.
	NextOffset int64 `json:"next_offset"`
	// DroppedFrom and DroppedTo bound the offsets that were lost
	// [DroppedFrom, DroppedTo); equal when nothing was.
	DroppedFrom    int64  `json:"dropped_from_offset"`
	DroppedTo      int64  `json:"dropped_to_offset"`
	DroppedRecords int64  `json:"dropped_records"`
	DroppedBytes   int64  `json:"dropped_bytes"`
	Damage         string `json:"damage,omitempty"` // the first damage found
}

// Repair truncates a partition's log to its last good batch, for an
// operator on a partition whose only replica cannot be opened: it walks
// the segments (the checkpoint's, or every segment file when the
// checkpoint itself is damaged) from the first, checks every batch's CRC
// and offsets, cuts the segment at the first bad one, removes the segments
// after it, and writes a checkpoint for what is left. The Raft log then
// re-applies what it still holds after the checkpoint's applied index.
func Repair(fsys FS, dir string) (*RepairReport, error) {
	names, err := fsys.List(dir)
	if err != nil {
		return nil, err
	}
	var cp checkpoint
	if b, err := readAll(fsys, filepath.Join(dir, checkpointName)); err == nil {
		if c, err := decodeCheckpoint(b); err == nil {
			cp = *c
		}
	}
	oldEnd := cp.NextOffset
	// The segments, from the files (a damaged checkpoint lists none).
	var bases []int64
	for _, n := range names {
		if base, ext, ok := parseSegName(n); ok && ext == ".log" {
			bases = append(bases, base)
		}
	}
	sort.Slice(bases, func(i, j int) bool { return bases[i] < bases[j] })
	if len(bases) == 0 {
		bases = []int64{0}
	}
	rep := &RepairReport{}
	var kept []segMeta
	next, cut := bases[0], false
	if cp.LogStart > next {
		next = cp.LogStart // retention dropped what came before
	}
	for _, base := range bases {
		name := segName(dir, base, ".log")
		if cut {
			if sz, err := fileSize(fsys, name); err == nil {
				rep.DroppedBytes += sz
			}
			if err := fsys.Remove(name); err != nil {
				return nil, err
			}
			fsys.Remove(segName(dir, base, ".index"))
			continue
		}
		m, good, damage, err := repairSegment(fsys, name, base, &next)
		if err != nil {
			return nil, err
		}
		// Every index is rebuilt: the last kept segment is scanned at open,
		// and a sealed one's index is checked against its frames.
		fsys.Remove(segName(dir, base, ".index"))
		if damage != "" {
			rep.Damage, cut = damage, true
			rep.DroppedBytes += m.Size - good
			m.Size = good
		}
		kept = append(kept, m)
	}
	rep.NextOffset = next
	rep.DroppedFrom, rep.DroppedTo = next, max(oldEnd, next)
	rep.DroppedRecords = rep.DroppedTo - rep.DroppedFrom
	cp.Version = 1
	cp.Segments = kept
	cp.NextOffset = next
	cp.LogStart = min(max(cp.LogStart, kept[0].Base), next)
	if err := writeFileAtomic(fsys, filepath.Join(dir, checkpointName), encodeCheckpoint(&cp)); err != nil {
		return nil, err
	}
	return rep, fsys.SyncDir(dir)
}

// repairSegment checks a segment's frames from its start, continuing the
// offsets at *next, and truncates it after the last good one. It returns
// the segment's metadata (Size as found), the good length, and the damage.
func repairSegment(fsys FS, name string, base int64, next *int64) (segMeta, int64, string, error) {
	f, err := fsys.OpenRW(name)
	if err != nil {
		return segMeta{}, 0, "", err
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return segMeta{}, 0, "", err
	}
	m := segMeta{Base: base, Size: size}
	pos, damage := int64(0), ""
	hb := make([]byte, batch.HeaderLen)
	for pos < size {
		if _, err := f.ReadAt(hb, pos); err != nil && err != io.EOF {
			damage = fmt.Sprintf("segment %d: header at position %d: %v", base, pos, err)
			break
		}
		h, err := batch.ParseHeader(hb)
		if err != nil || pos+int64(h.Size()) > size {
			damage = fmt.Sprintf("segment %d: batch at position %d (offset %d) is damaged or cut short", base, pos, *next)
			break
		}
		buf := make([]byte, h.Size())
		if _, err := f.ReadAt(buf, pos); err != nil && err != io.EOF {
			damage = fmt.Sprintf("segment %d at position %d: %v", base, pos, err)
			break
		}
		if _, err := batch.Check(buf); err != nil {
			damage = fmt.Sprintf("segment %d: batch at offset %d fails its checksum: %v", base, h.FirstOffset, err)
			break
		}
		if pos == 0 && h.FirstOffset > *next {
			*next = h.FirstOffset // the segment starts after a retention cut
		}
		if h.FirstOffset != *next {
			damage = fmt.Sprintf("segment %d: batch at position %d has offset %d, want %d", base, pos, h.FirstOffset, *next)
			break
		}
		m.MaxTs = max(m.MaxTs, h.MaxTimestamp)
		*next = h.LastOffset() + 1
		pos += int64(h.Size())
	}
	if damage != "" {
		if err := f.Truncate(pos); err != nil {
			return m, pos, damage, err
		}
		if err := f.Sync(); err != nil {
			return m, pos, damage, err
		}
	}
	return m, pos, damage, nil
}

func fileSize(fsys FS, name string) (int64, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return f.Size()
}
