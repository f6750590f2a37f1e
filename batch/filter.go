package batch

import (
	"encoding/binary"
	"hash/crc32"

	"github.com/eddy-broker/eddy"
)

// Keep decides, for compaction, whether a record stays: its offset, its
// key (nil for none) and whether its value is null (a tombstone).
type Keep func(offset int64, key []byte, tombstone bool) bool

// Filter appends to dst the batch b with only the records keep accepts:
// the batch keeps its first offset, last offset delta, producer and
// timestamps, so each record keeps its offset and a consumer skips the
// gaps, as it does in Kafka's compacted topics. A compressed batch is
// compressed again with its codec. It returns how many records were kept
// and whether any were dropped; when none were, dst is returned as it was
// (the caller keeps b). A batch whose every record is dropped is left to
// the caller (kept 0, nothing appended): a run of them is one empty batch
// (AppendEmpty).
func Filter(dst, b []byte, keep Keep) (out []byte, kept int, dropped bool, err error) {
	h, err := Check(b)
	if err != nil {
		return dst, 0, false, err
	}
	src := b[HeaderLen:h.Size()]
	codec := h.Codec()
	if codec != CompressionNone {
		if src, err = decompress(codec, src); err != nil {
			return dst, 0, false, err
		}
	}
	var spans [][2]int // kept records' byte ranges in src
	pos := 0
	for i := int32(0); i < h.NumRecords; i++ {
		r, err := parseRecordHead(src[pos:])
		if err != nil {
			return dst, 0, false, eddy.Errorf(eddy.CodeCorrupt, "record batch at offset %d: record %d: %v", h.FirstOffset, i, err)
		}
		if keep(h.FirstOffset+int64(r.offsetDelta), r.key, r.tombstone) {
			if n := len(spans); n > 0 && spans[n-1][1] == pos {
				spans[n-1][1] = pos + r.size
			} else {
				spans = append(spans, [2]int{pos, pos + r.size})
			}
			kept++
		} else {
			dropped = true
		}
		pos += r.size
	}
	if !dropped || kept == 0 {
		return dst, kept, dropped, nil
	}
	var recs []byte
	for _, s := range spans {
		recs = append(recs, src[s[0]:s[1]]...)
	}
	if codec != CompressionNone {
		if recs, err = compressRaw(codec, recs); err != nil {
			return dst, 0, false, err
		}
	}
	start := len(dst)
	dst = append(dst, b[:HeaderLen]...)
	dst = append(dst, recs...)
	binary.BigEndian.PutUint32(dst[start+lengthOffset:], uint32(len(dst)-start-12))
	binary.BigEndian.PutUint32(dst[start+57:], uint32(kept))
	binary.BigEndian.PutUint32(dst[start+17:], crc32.Checksum(dst[start+crcStart:], castagnoli))
	return dst, kept, true, nil
}

// AppendEmpty appends a batch of no records covering offsets first to
// last: what compaction leaves of a run of batches whose records all went
// (Kafka leaves such batches too; consumers move past them). It carries
// no producer: the log keeps producer state apart from its batches.
func AppendEmpty(dst []byte, first, last, firstTs, maxTs int64) []byte {
	start := len(dst)
	dst = append(dst, make([]byte, HeaderLen)...)
	h := dst[start:]
	binary.BigEndian.PutUint64(h[0:], uint64(first))
	binary.BigEndian.PutUint32(h[lengthOffset:], HeaderLen-12)
	binary.BigEndian.PutUint32(h[12:], 0xffffffff) // partition leader epoch -1
	h[16] = 2
	binary.BigEndian.PutUint32(h[23:], uint32(last-first))
	binary.BigEndian.PutUint64(h[27:], uint64(firstTs))
	binary.BigEndian.PutUint64(h[35:], uint64(maxTs))
	binary.BigEndian.PutUint64(h[43:], 0xffffffffffffffff) // producer -1
	binary.BigEndian.PutUint16(h[51:], 0xffff)
	binary.BigEndian.PutUint32(h[53:], 0xffffffff)
	binary.BigEndian.PutUint32(h[17:], crc32.Checksum(h[crcStart:], castagnoli))
	return dst
}

// recordHead is what compaction reads of a record.
type recordHead struct {
	size        int // the whole record, its length varint included
	offsetDelta int64
	key         []byte
	tombstone   bool
}

// parseRecordHead reads a v2 record's length, offset delta, key and
// whether its value is null, bounds-checking each.
func parseRecordHead(b []byte) (recordHead, error) {
	l, n := binary.Varint(b)
	if n <= 0 || l < 0 || int64(len(b)-n) < l {
		return recordHead{}, eddy.Errorf(eddy.CodeCorrupt, "bad length")
	}
	r := recordHead{size: n + int(l)}
	body := b[n:r.size]
	if len(body) < 1 {
		return r, eddy.Errorf(eddy.CodeCorrupt, "empty record")
	}
	body = body[1:] // attributes
	next := func() (int64, bool) {
		v, m := binary.Varint(body)
		if m <= 0 {
			return 0, false
		}
		body = body[m:]
		return v, true
	}
	if _, ok := next(); !ok { // timestamp delta
		return r, eddy.Errorf(eddy.CodeCorrupt, "bad timestamp delta")
	}
	var ok bool
	if r.offsetDelta, ok = next(); !ok || r.offsetDelta < 0 {
		return r, eddy.Errorf(eddy.CodeCorrupt, "bad offset delta")
	}
	kl, ok := next()
	if !ok || kl < -1 || kl > int64(len(body)) {
		return r, eddy.Errorf(eddy.CodeCorrupt, "bad key length")
	}
	if kl >= 0 {
		r.key, body = body[:kl:kl], body[kl:]
	}
	vl, ok := next()
	if !ok || vl < -1 || vl > int64(len(body)) {
		return r, eddy.Errorf(eddy.CodeCorrupt, "bad value length")
	}
	r.tombstone = vl == -1
	return r, nil
}
