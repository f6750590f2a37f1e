package multiraft

import (
	"bytes"
	"runtime"
	"testing"

	"github.com/eddy-broker/eddy"
	"github.com/eddy-broker/eddy/batch"
	"github.com/eddy-broker/eddy/multiraft/segment"
)

// TestReadRecordsReadsWhatItKeeps: a fetch of a few records with a large
// max bytes (8 MiB, as eddy bench consume asks) reads about what it keeps,
// not max bytes (it used to read, check and decode 8 MiB to keep ten
// records); and many records are still read whole, in order, across reads.
func TestReadRecordsReadsWhatItKeeps(t *testing.T) {
	lg, err := segment.Open(segment.NewMemFS(), "/p", segment.Config{SegmentBytes: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer lg.Close()
	value := bytes.Repeat([]byte("v"), 1000)
	for range 100 { // 10,000 records, 10 MB, in batches of 100
		recs := make([]eddy.Record, 100)
		for i := range recs {
			recs[i] = eddy.Record{Value: value}
		}
		if res, err := lg.Append(batch.Append(nil, recs, batch.Options{ProducerID: -1}), false); err != nil || res.Err != nil {
			t.Fatal(err, res.Err)
		}
	}
	if err := lg.Flush(); err != nil {
		t.Fatal(err)
	}
	var h *Host
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	res, err := h.readRecords(lg, 5, 10, 8<<20)
	runtime.ReadMemStats(&after)
	if err != nil || len(res.Records) != 10 || res.Records[0].Offset != 5 || res.NextOffset != 15 {
		t.Fatalf("read %d records, next %d: %v", len(res.Records), res.NextOffset, err)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 1<<20 {
		t.Fatalf("ten records of 1 KB made the read allocate %d bytes", alloc)
	}
	res, err = h.readRecords(lg, 0, 5000, 8<<20)
	if err != nil || len(res.Records) != 5000 || res.NextOffset != 5000 {
		t.Fatalf("read %d records, next %d: %v", len(res.Records), res.NextOffset, err)
	}
	for i, r := range res.Records {
		if int(r.Offset) != i || !bytes.Equal(r.Value, value) {
			t.Fatalf("record %d: offset %d, %d bytes", i, r.Offset, len(r.Value))
		}
	}
}
