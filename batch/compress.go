package batch

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"hash/crc32"
	"io"
	"sync"

	"github.com/eddy-broker/eddy"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// Kafka's compression codecs, in the low three bits of the attributes.
const (
	CompressionGzip   = 1
	CompressionSnappy = 2
	CompressionLZ4    = 3
	CompressionZstd   = 4
)

// MaxDecompressedBytes bounds what one compressed batch may expand to: a
// small batch claiming gigabytes (a decompression bomb) is refused once
// that many bytes came out, before more memory is taken.
const MaxDecompressedBytes = MaxBytes

// Codec is the batch's compression codec.
func (h *Header) Codec() int { return int(h.Attributes & codecMask) }

// decompress returns the records area of a compressed batch, expanded.
func decompress(codec int, src []byte) ([]byte, error) {
	var out []byte
	var err error
	switch codec {
	case CompressionGzip:
		out, err = readCapped(func() (io.Reader, error) { return gzip.NewReader(bytes.NewReader(src)) })
	case CompressionSnappy:
		out, err = snappyDecode(src)
	case CompressionLZ4:
		out, err = readCapped(func() (io.Reader, error) { return lz4.NewReader(bytes.NewReader(src)), nil })
	case CompressionZstd:
		out, err = zstdDecode(src)
	default:
		return nil, eddy.Errorf(eddy.CodeInvalid, "record batch: unknown compression codec %d", codec)
	}
	if err == errTooLarge {
		return nil, eddy.Errorf(eddy.CodeRecordTooLarge, "record batch: %s: %s", codecName(codec), err.(*eddy.Error).Message)
	}
	if err != nil {
		return nil, eddy.Errorf(eddy.CodeInvalid, "record batch: %s: %v", codecName(codec), err)
	}
	return out, nil
}

func codecName(c int) string {
	return [...]string{"none", "gzip", "snappy", "lz4", "zstd"}[c]
}

var errTooLarge = eddy.Errorf(eddy.CodeRecordTooLarge, "decompressed to more than %d bytes", MaxDecompressedBytes)

func readCapped(open func() (io.Reader, error)) ([]byte, error) {
	r, err := open()
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	n, err := b.ReadFrom(io.LimitReader(r, MaxDecompressedBytes+1))
	if err != nil {
		return nil, err
	}
	if n > MaxDecompressedBytes {
		return nil, errTooLarge
	}
	return b.Bytes(), nil
}

// xerialHeader starts snappy data in the framing Java clients write
// (magic, version, compatible version); raw snappy is a single block.
var xerialHeader = []byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0}

// snappyDecode reads raw snappy or xerial-framed chunks, each chunk's
// declared length checked against the cap before it is expanded.
func snappyDecode(src []byte) ([]byte, error) {
	if !bytes.HasPrefix(src, xerialHeader) {
		return snappyBlock(nil, src)
	}
	if len(src) < 16 {
		return nil, io.ErrUnexpectedEOF
	}
	var out []byte
	for p := 16; p < len(src); {
		if len(src)-p < 4 {
			return nil, io.ErrUnexpectedEOF
		}
		n := int(binary.BigEndian.Uint32(src[p:]))
		p += 4
		if n < 0 || n > len(src)-p {
			return nil, io.ErrUnexpectedEOF
		}
		var err error
		if out, err = snappyBlock(out, src[p:p+n]); err != nil {
			return nil, err
		}
		p += n
	}
	return out, nil
}

// snappyBlock appends one decoded snappy block to dst.
func snappyBlock(dst, block []byte) ([]byte, error) {
	n, err := s2.DecodedLen(block)
	if err != nil {
		return nil, err
	}
	if len(dst)+n > MaxDecompressedBytes {
		return nil, errTooLarge
	}
	out := make([]byte, n)
	if _, err := s2.Decode(out, block); err != nil {
		return nil, err
	}
	return append(dst, out...), nil
}

// One zstd decoder serves every batch (DecodeAll is safe for concurrent
// use); its memory is bounded by the cap.
var zstdDec = sync.OnceValue(func() *zstd.Decoder {
	d, _ := zstd.NewReader(nil, zstd.WithDecoderConcurrency(2), zstd.WithDecoderMaxMemory(MaxDecompressedBytes))
	return d
})

func zstdDecode(src []byte) ([]byte, error) {
	out, err := zstdDec().DecodeAll(src, nil)
	if err == zstd.ErrDecoderSizeExceeded {
		return nil, errTooLarge
	}
	return out, err
}

// CodecByName is the codec of a Kafka compression.type name ("" and
// "none" are CompressionNone); ok is false for an unknown name.
func CodecByName(name string) (codec int, ok bool) {
	switch name {
	case "", "none":
		return CompressionNone, true
	case "gzip":
		return CompressionGzip, true
	case "snappy":
		return CompressionSnappy, true
	case "lz4":
		return CompressionLZ4, true
	case "zstd":
		return CompressionZstd, true
	}
	return 0, false
}

// One zstd encoder serves every batch (EncodeAll is safe for concurrent
// use); it is deterministic, so a batch compressed again after a restart
// has the same bytes and CRC (a link resends batches byte for byte).
var zstdEnc = sync.OnceValue(func() *zstd.Encoder {
	e, _ := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1), zstd.WithEncoderLevel(zstd.SpeedDefault))
	return e
})

// Compress returns the uncompressed batch b (one batch, as Append makes)
// with its records compressed by codec, in Kafka's framings: gzip, raw
// snappy (as librdkafka and franz-go write it), the LZ4 frame format, zstd.
func Compress(b []byte, codec int) ([]byte, error) {
	h, err := ParseHeader(b)
	if err != nil || codec == CompressionNone {
		return b, err
	}
	if h.Codec() != CompressionNone {
		return nil, eddy.Errorf(eddy.CodeInvalid, "record batch: already compressed")
	}
	out, err := compressRaw(codec, b[HeaderLen:h.Size()])
	if err != nil {
		return nil, err
	}
	c := make([]byte, 0, HeaderLen+len(out))
	c = append(c, b[:HeaderLen]...)
	c = append(c, out...)
	binary.BigEndian.PutUint32(c[lengthOffset:], uint32(len(c)-12))
	binary.BigEndian.PutUint16(c[21:], uint16(h.Attributes&^codecMask|int16(codec)))
	binary.BigEndian.PutUint32(c[17:], crc32.Checksum(c[crcStart:], castagnoli))
	return c, nil
}

// compressRaw compresses a batch's records area.
func compressRaw(codec int, recs []byte) ([]byte, error) {
	switch codec {
	case CompressionGzip:
		var buf bytes.Buffer
		w := gzip.NewWriter(&buf)
		w.Write(recs)
		w.Close()
		return buf.Bytes(), nil
	case CompressionSnappy:
		return s2.EncodeSnappy(nil, recs), nil
	case CompressionLZ4:
		var buf bytes.Buffer
		w := lz4.NewWriter(&buf)
		if _, err := w.Write(recs); err != nil {
			return nil, err
		}
		err := w.Close()
		return buf.Bytes(), err
	case CompressionZstd:
		return zstdEnc().EncodeAll(recs, nil), nil
	}
	return nil, eddy.Errorf(eddy.CodeInvalid, "record batch: unknown compression codec %d", codec)
}
