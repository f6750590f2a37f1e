package batch

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
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
