package segment

import (
	"encoding/binary"
	"sort"
)

// The sparse index maps an offset to a file position: one 8-byte entry
// (offset relative to the segment base, position; both big-endian uint32)
// for the first batch after every IndexIntervalBytes of data. A lookup finds
// the last entry at or below an offset and scans batch headers from there.
const indexEntryLen = 8

type indexEntry struct {
	rel uint32
	pos uint32
}

func appendIndexEntry(dst []byte, e indexEntry) []byte {
	dst = binary.BigEndian.AppendUint32(dst, e.rel)
	return binary.BigEndian.AppendUint32(dst, e.pos)
}

// parseIndex decodes an index file and reports whether it is consistent
// with a segment of size bytes holding offsets below base+span.
func parseIndex(b []byte, size int64, span int64) ([]indexEntry, bool) {
	if len(b)%indexEntryLen != 0 {
		return nil, false
	}
	out := make([]indexEntry, 0, len(b)/indexEntryLen)
	for i := 0; i < len(b); i += indexEntryLen {
		e := indexEntry{rel: binary.BigEndian.Uint32(b[i:]), pos: binary.BigEndian.Uint32(b[i+4:])}
		if int64(e.pos) >= size || int64(e.rel) >= span {
			return nil, false
		}
		if n := len(out); n > 0 && (e.rel <= out[n-1].rel || e.pos <= out[n-1].pos) {
			return nil, false
		}
		out = append(out, e)
	}
	return out, true
}

// floorPos returns the position of the last entry with rel <= target, or 0.
func floorPos(entries []indexEntry, target uint32) int64 {
	i := sort.Search(len(entries), func(i int) bool { return entries[i].rel > target })
	if i == 0 {
		return 0
	}
	return int64(entries[i-1].pos)
}
