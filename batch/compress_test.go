package batch

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"math/rand/v2"
	"testing"

	"github.com/eddy-broker/eddy"
	"github.com/eddy-broker/eddy/internal/testutil"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/snappy/xerial"
)

// compressed re-encodes an uncompressed batch with codec c (snappy in
// the xerial framing the Java clients write, which Compress does not),
// its whole body whatever its header's length says (the bomb's does not).
func compressed(t testing.TB, b []byte, c int) []byte {
	t.Helper()
	z, err := compressRaw(c, b[HeaderLen:])
	if c == CompressionSnappy {
		z = xerial.Encode(nil, b[HeaderLen:])
	}
	if err != nil {
		t.Fatal(err)
	}
	out := append(append([]byte(nil), b[:HeaderLen]...), z...)
	binary.BigEndian.PutUint32(out[8:], uint32(len(out)-12))
	attr := binary.BigEndian.Uint16(out[21:])
	binary.BigEndian.PutUint16(out[21:], attr&^codecMask|uint16(c))
	binary.BigEndian.PutUint32(out[17:], crc32.Checksum(out[crcStart:], castagnoli))
	return out
}

// TestDecodeCompressed: each of Kafka's codecs decodes to the records that
// went in, raw snappy as well as the xerial framing.
func TestDecodeCompressed(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	recs := testutil.RandomRecords(rng, 50)
	plain := Append(nil, recs, Options{ProducerID: -1})
	cases := map[string][]byte{}
	for c := CompressionGzip; c <= CompressionZstd; c++ {
		cases[codecName(c)] = compressed(t, plain, c)
	}
	raw := append([]byte(nil), plain[:HeaderLen]...)
	raw = append(raw, s2.EncodeSnappy(nil, plain[HeaderLen:])...)
	binary.BigEndian.PutUint32(raw[8:], uint32(len(raw)-12))
	binary.BigEndian.PutUint16(raw[21:], CompressionSnappy)
	binary.BigEndian.PutUint32(raw[17:], crc32.Checksum(raw[crcStart:], castagnoli))
	cases["raw snappy"] = raw
	if again, _ := Compress(plain, CompressionZstd); !bytes.Equal(again, cases["zstd"]) {
		t.Fatal("zstd compression is not deterministic: a link's resent batch would differ")
	}
	for name, b := range cases {
		got, err := Decode(nil, b)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(got) != len(recs) {
			t.Fatalf("%s: %d records, want %d", name, len(got), len(recs))
		}
		for i := range recs {
			if !testutil.SameRecord(got[i].Record, recs[i]) {
				t.Fatalf("%s: record %d differs", name, i)
			}
		}
	}
}

// TestDecompressionBomb: a batch that expands past the cap is refused as
// too large, whatever the codec, without expanding it all.
func TestDecompressionBomb(t *testing.T) {
	big := make([]byte, MaxDecompressedBytes+1<<20)
	body := Append(nil, []eddy.Record{{Value: []byte("x")}}, Options{ProducerID: -1})
	hdr := body[:HeaderLen]
	for c := CompressionGzip; c <= CompressionZstd; c++ {
		b := compressed(t, append(append([]byte(nil), hdr...), big...), c)
		if _, err := Decode(nil, b); eddy.ErrorCode(err) != eddy.CodeRecordTooLarge {
			t.Errorf("%s bomb of %d bytes (%d compressed): %v", codecName(c), len(big), len(b), err)
		}
	}
}
