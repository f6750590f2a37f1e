package segment

import (
	"fmt"
	"testing"

	"github.com/eddy-broker/eddy"
	"github.com/eddy-broker/eddy/batch"
)

// BenchmarkCompact compacts a partition of 32 MiB on the disk (64 MiB
// segments of 4 MiB here: 8 sealed), 16 records of 512 bytes a batch
// over 10,000 keys, each key written about six times: MB/s is of the
// sealed segments read.
func BenchmarkCompact(b *testing.B) {
	const total, keys = 32 << 20, 10000
	val := make([]byte, 512)
	for b.Loop() {
		b.StopTimer()
		dir := b.TempDir()
		l, err := Open(OSFS{}, dir, Config{SegmentBytes: 4 << 20})
		if err != nil {
			b.Fatal(err)
		}
		recs := make([]eddy.Record, 16)
		for n, i := 0, 0; n < total; i++ {
			for j := range recs {
				recs[j] = eddy.Record{Key: fmt.Appendf(nil, "device-%05d", (i*16+j)*7919%keys), Value: val, Timestamp: 1}
			}
			bt := batch.Append(nil, recs, batch.Options{ProducerID: -1})
			if _, err := l.Append(bt, false); err != nil {
				b.Fatal(err)
			}
			n += len(bt)
		}
		if err := l.Sync(); err != nil {
			b.Fatal(err)
		}
		_, sealed := l.DirtyBytes()
		b.SetBytes(sealed)
		b.StartTimer()
		res, err := l.Compact(CompactOptions{NowMs: 2, DeleteRetentionMs: -1, MaxKeyBytes: 16 << 20})
		if err != nil || res.Segments == 0 {
			b.Fatalf("%+v %v", res, err)
		}
		b.StopTimer()
		b.ReportMetric(float64(res.BytesAfter)/float64(res.BytesBefore), "kept/before")
		l.Close()
		b.StartTimer()
	}
}
