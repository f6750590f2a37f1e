// Package batch is the Kafka v2 RecordBatch: the unit Eddy stores (one
// batch is one frame of a partition's log), replicates, and serves to
// consumers unchanged. It encodes, checks and decodes batches; it knows
// nothing of logs or partitions.
package batch

import (
	"encoding/binary"
	"hash/crc32"

	"github.com/eddy-broker/eddy"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// A frame on disk is exactly one RecordBatch, so a fetch answers with the
// stored bytes unchanged. Layout of the 61-byte header (HeaderLen):
//
//	 0 firstOffset int64      (patched on append; outside the CRC)
//	 8 length int32           (bytes after this field)
//	12 partitionLeaderEpoch   (outside the CRC)
//	16 magic int8 = 2
//	17 crc uint32             (CRC-32C of bytes 21..end)
//	21 attributes int16
//	23 lastOffsetDelta int32
//	27 firstTimestamp int64
//	35 maxTimestamp int64
//	43 producerID int64
//	51 producerEpoch int16
//	53 baseSequence int32
//	57 numRecords int32
const (
	HeaderLen    = 61
	lengthOffset = 8
	crcStart     = 21
	// MaxBytes bounds one stored batch.
	MaxBytes = 64 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Compression codecs in the low bits of a batch's attributes.
const (
	CompressionNone = 0
	codecMask       = 0x07
	attrLogAppend   = 0x08
)

// Header is the decoded fixed part of a RecordBatch.
type Header struct {
	FirstOffset     int64
	Length          int32
	Attributes      int16
	LastOffsetDelta int32
	FirstTimestamp  int64
	MaxTimestamp    int64
	ProducerID      int64
	ProducerEpoch   int16
	BaseSequence    int32
	NumRecords      int32
	CRC             uint32 // CRC-32C of the batch from its attributes on
}

// Size is the whole frame's size in bytes.
func (h *Header) Size() int { return int(h.Length) + 12 }

// Dense reports whether the batch holds a record at each of its offsets,
// as every produced batch does; compaction leaves gaps.
func (h *Header) Dense() bool { return int64(h.NumRecords) == int64(h.LastOffsetDelta)+1 }

// Count is the number of offsets the batch occupies.
func (h *Header) Count() int64 { return int64(h.LastOffsetDelta) + 1 }

// LastOffset is the batch's last offset.
func (h *Header) LastOffset() int64 { return h.FirstOffset + int64(h.LastOffsetDelta) }

// LogAppendTime reports whether the batch's records are stamped with the
// time it was appended (its MaxTimestamp), not their own.
func (h *Header) LogAppendTime() bool { return h.Attributes&attrLogAppend != 0 }

// ParseHeader decodes the header fields without checking the CRC.
func ParseHeader(b []byte) (Header, error) {
	if len(b) < HeaderLen {
		return Header{}, eddy.Errorf(eddy.CodeInvalid, "record batch: %d bytes is shorter than the %d-byte header", len(b), HeaderLen)
	}
	h := Header{
		FirstOffset:     int64(binary.BigEndian.Uint64(b[0:])),
		Length:          int32(binary.BigEndian.Uint32(b[8:])),
		Attributes:      int16(binary.BigEndian.Uint16(b[21:])),
		LastOffsetDelta: int32(binary.BigEndian.Uint32(b[23:])),
		FirstTimestamp:  int64(binary.BigEndian.Uint64(b[27:])),
		MaxTimestamp:    int64(binary.BigEndian.Uint64(b[35:])),
		ProducerID:      int64(binary.BigEndian.Uint64(b[43:])),
		ProducerEpoch:   int16(binary.BigEndian.Uint16(b[51:])),
		BaseSequence:    int32(binary.BigEndian.Uint32(b[53:])),
		NumRecords:      int32(binary.BigEndian.Uint32(b[57:])),
		CRC:             binary.BigEndian.Uint32(b[17:]),
	}
	if b[16] != 2 {
		return h, eddy.Errorf(eddy.CodeInvalid, "record batch: magic %d, only v2 (magic 2) is supported", int8(b[16]))
	}
	if h.Length < HeaderLen-12 || int64(h.Length)+12 > MaxBytes {
		return h, eddy.Errorf(eddy.CodeInvalid, "record batch: length %d out of range", h.Length)
	}
	// Fewer records than offsets is a compacted batch's gaps; more is
	// never right. Produced batches must be dense (Dense).
	if h.LastOffsetDelta < 0 || h.NumRecords < 0 || int64(h.NumRecords) > int64(h.LastOffsetDelta)+1 {
		return h, eddy.Errorf(eddy.CodeInvalid, "record batch: %d records with last offset delta %d", h.NumRecords, h.LastOffsetDelta)
	}
	return h, nil
}

// Check validates one whole RecordBatch in b (which must hold exactly
// it, or start with it): header, length and CRC-32C. It returns the header.
func Check(b []byte) (Header, error) {
	h, err := ParseHeader(b)
	if err != nil {
		return h, err
	}
	if len(b) < h.Size() {
		return h, eddy.Errorf(eddy.CodeInvalid, "record batch: %d bytes, header says %d", len(b), h.Size())
	}
	want := binary.BigEndian.Uint32(b[17:])
	if got := crc32.Checksum(b[crcStart:h.Size()], castagnoli); got != want {
		return h, eddy.Errorf(eddy.CodeCorrupt, "record batch: CRC-32C %08x, header says %08x", got, want)
	}
	return h, nil
}

// SetPartitionLeaderEpoch writes a batch's partition leader epoch (bytes
// 12-15, outside the CRC).
func SetPartitionLeaderEpoch(b []byte, epoch int32) {
	binary.BigEndian.PutUint32(b[12:], uint32(epoch))
}

// SetMaxTimestamp writes a batch's max timestamp and its CRC again (a
// producer that left it unset: sarama).
func SetMaxTimestamp(b []byte, ts int64) {
	binary.BigEndian.PutUint64(b[35:], uint64(ts))
	h, _ := ParseHeader(b)
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[crcStart:h.Size()], castagnoli))
}

// Options are the producer fields of a batch being encoded.
type Options struct {
	ProducerID    int64 // -1 for none
	ProducerEpoch int16
	BaseSequence  int32
	// LogAppendTime, when positive, stamps every record with this time
	// (ms) and marks the batch's timestamp type as log-append time.
	LogAppendTime int64
}

// Append encodes records as one uncompressed v2 RecordBatch with
// firstOffset 0, appends it to dst and returns the result.
func Append(dst []byte, recs []eddy.Record, opt Options) []byte {
	if len(recs) == 0 {
		return dst
	}
	first, maxTs := recs[0].Timestamp, recs[0].Timestamp
	for i := range recs {
		first = min(first, recs[i].Timestamp)
		maxTs = max(maxTs, recs[i].Timestamp)
	}
	var attrs int16
	if opt.LogAppendTime > 0 {
		first, maxTs = opt.LogAppendTime, opt.LogAppendTime
		attrs |= attrLogAppend
	}
	start := len(dst)
	b := kmsg.RecordBatch{
		FirstOffset:          0,
		PartitionLeaderEpoch: -1,
		Magic:                2,
		Attributes:           attrs,
		LastOffsetDelta:      int32(len(recs) - 1),
		FirstTimestamp:       first,
		MaxTimestamp:         maxTs,
		ProducerID:           opt.ProducerID,
		ProducerEpoch:        opt.ProducerEpoch,
		FirstSequence:        opt.BaseSequence,
		NumRecords:           int32(len(recs)),
	}
	dst = b.AppendTo(dst) // header with empty Records; length and CRC fixed below
	for i := range recs {
		dst = appendRecord(dst, &recs[i], int32(i), recs[i].Timestamp-first)
	}
	binary.BigEndian.PutUint32(dst[start+lengthOffset:], uint32(len(dst)-start-12))
	binary.BigEndian.PutUint32(dst[start+17:], crc32.Checksum(dst[start+crcStart:], castagnoli))
	return dst
}

// appendRecord writes one record in the v2 layout (the layout kmsg.Record
// reads): varint length, attributes, varint timestamp delta, varint offset
// delta, key, value, headers. Varints are zig-zag, as in Kafka.
func appendRecord(dst []byte, r *eddy.Record, offsetDelta int32, tsDelta int64) []byte {
	bodyLen := 1 + varintLen(tsDelta) + varintLen(int64(offsetDelta)) +
		bytesLen(r.Key) + bytesLen(r.Value) + varintLen(int64(len(r.Headers)))
	for _, h := range r.Headers {
		bodyLen += varintLen(int64(len(h.Key))) + len(h.Key) + bytesLen(h.Value)
	}
	dst = binary.AppendVarint(dst, int64(bodyLen))
	dst = append(dst, 0)
	dst = binary.AppendVarint(dst, tsDelta)
	dst = binary.AppendVarint(dst, int64(offsetDelta))
	dst = appendBytes(dst, r.Key)
	dst = appendBytes(dst, r.Value)
	dst = binary.AppendVarint(dst, int64(len(r.Headers)))
	for _, h := range r.Headers {
		dst = binary.AppendVarint(dst, int64(len(h.Key)))
		dst = append(dst, h.Key...)
		dst = appendBytes(dst, h.Value)
	}
	return dst
}

func appendBytes(dst, b []byte) []byte {
	if b == nil {
		return binary.AppendVarint(dst, -1)
	}
	dst = binary.AppendVarint(dst, int64(len(b)))
	return append(dst, b...)
}

func bytesLen(b []byte) int {
	if b == nil {
		return 1
	}
	return varintLen(int64(len(b))) + len(b)
}

func varintLen(v int64) int {
	u := uint64(v<<1) ^ uint64(v>>63)
	n := 1
	for u >= 0x80 {
		u >>= 7
		n++
	}
	return n
}

// Decode decodes the records of one batch, compressed or not, and appends
// them to dst with their offsets.
func Decode(dst []eddy.FetchedRecord, b []byte) ([]eddy.FetchedRecord, error) {
	if _, err := Check(b); err != nil {
		return dst, err
	}
	return DecodeVerified(dst, b)
}

// DecodeVerified is Decode for a batch whose CRC was already checked
// (Log.Read checks every batch it returns); it still bounds-checks every
// field.
func DecodeVerified(dst []eddy.FetchedRecord, b []byte) ([]eddy.FetchedRecord, error) {
	h, err := ParseHeader(b)
	if err != nil {
		return dst, err
	}
	if len(b) < h.Size() {
		return dst, eddy.Errorf(eddy.CodeCorrupt, "record batch: %d bytes, header says %d", len(b), h.Size())
	}
	logAppend := h.LogAppendTime()
	src := b[HeaderLen:h.Size()]
	if c := h.Codec(); c != CompressionNone {
		if src, err = decompress(c, src); err != nil {
			return dst, err
		}
	}
	for i := int32(0); i < h.NumRecords; i++ {
		l, n := binary.Varint(src)
		if n <= 0 || l < 0 || int64(len(src)-n) < l {
			return dst, eddy.Errorf(eddy.CodeCorrupt, "record batch at offset %d: record %d: bad length", h.FirstOffset, i)
		}
		var kr kmsg.Record
		if err := kr.ReadFrom(src[:n+int(l)]); err != nil {
			return dst, eddy.Errorf(eddy.CodeCorrupt, "record batch at offset %d: record %d: %v", h.FirstOffset, i, err)
		}
		src = src[n+int(l):]
		ts := h.FirstTimestamp + kr.TimestampDelta64
		if logAppend {
			ts = h.MaxTimestamp
		}
		if kr.OffsetDelta < 0 || kr.OffsetDelta > h.LastOffsetDelta {
			return dst, eddy.Errorf(eddy.CodeCorrupt, "record batch at offset %d: offset delta %d out of range", h.FirstOffset, kr.OffsetDelta)
		}
		fr := eddy.FetchedRecord{Offset: eddy.Offset(h.FirstOffset + int64(kr.OffsetDelta))}
		fr.Key, fr.Value, fr.Timestamp = kr.Key, kr.Value, ts
		if len(kr.Headers) > 0 {
			fr.Headers = make([]eddy.Header, len(kr.Headers))
			for j, kh := range kr.Headers {
				fr.Headers[j] = eddy.Header{Key: kh.Key, Value: kh.Value}
			}
		}
		dst = append(dst, fr)
	}
	if len(src) != 0 {
		return dst, eddy.Errorf(eddy.CodeCorrupt, "record batch at offset %d: %d trailing bytes", h.FirstOffset, len(src))
	}
	return dst, nil
}

// Split walks a run of whole batches, checking each one's CRC, and
// calls fn with each.
func Split(b []byte, fn func(h Header, batch []byte) error) error {
	return splitBatches(b, true, fn)
}

// SplitVerified is Split for bytes Log.Read returned (already
// checked): it checks headers and lengths, not CRCs.
func SplitVerified(b []byte, fn func(h Header, batch []byte) error) error {
	return splitBatches(b, false, fn)
}

func splitBatches(b []byte, crc bool, fn func(h Header, batch []byte) error) error {
	for len(b) > 0 {
		var h Header
		var err error
		if crc {
			h, err = Check(b)
		} else if h, err = ParseHeader(b); err == nil && len(b) < h.Size() {
			err = eddy.Errorf(eddy.CodeCorrupt, "record batch: %d bytes, header says %d", len(b), h.Size())
		}
		if err != nil {
			return err
		}
		if err := fn(h, b[:h.Size()]); err != nil {
			return err
		}
		b = b[h.Size():]
	}
	return nil
}

// SetFirstOffset patches a batch's base offset (outside the CRC).
func SetFirstOffset(b []byte, off int64) { binary.BigEndian.PutUint64(b, uint64(off)) }

// SetBaseSequence rewrites the producer sequence of the batch b begins
// with, and its CRC.
func SetBaseSequence(b []byte, seq int32) {
	binary.BigEndian.PutUint32(b[53:], uint32(seq))
	size := int(binary.BigEndian.Uint32(b[lengthOffset:])) + 12
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[crcStart:size], castagnoli))
}
