package batch

import (
	"fmt"
	"testing"

	"github.com/eddy-broker/eddy"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Filter keeps the records asked for, at their offsets, in a batch that
// checks, decodes (here and in franz-go) and keeps its offset range.
func TestFilter(t *testing.T) {
	var recs []eddy.Record
	for i := range 6 {
		r := eddy.Record{Key: fmt.Appendf(nil, "k%d", i%3), Value: fmt.Appendf(nil, "v%d", i), Timestamp: 1000 + int64(i)}
		if i == 4 {
			r.Value = nil
		}
		recs = append(recs, r)
	}
	for codec := CompressionNone; codec <= CompressionZstd; codec++ {
		b := Append(nil, recs, Options{ProducerID: 7, ProducerEpoch: 1, BaseSequence: 3})
		b, err := Compress(b, codec)
		if err != nil {
			t.Fatal(err)
		}
		SetFirstOffset(b, 100)
		var tombs []int64
		out, kept, dropped, err := Filter(nil, b, func(off int64, key []byte, tomb bool) bool {
			if tomb {
				tombs = append(tombs, off)
			}
			return off >= 103 // the newest of each key
		})
		if err != nil || kept != 3 || !dropped || fmt.Sprint(tombs) != "[104]" {
			t.Fatalf("codec %d: kept %d dropped %v tombstones %v: %v", codec, kept, dropped, tombs, err)
		}
		h, err := Check(out)
		if err != nil || h.FirstOffset != 100 || h.LastOffset() != 105 || h.NumRecords != 3 || h.Dense() || h.ProducerID != 7 || h.Codec() != codec {
			t.Fatalf("codec %d: header %+v: %v", codec, h, err)
		}
		got, err := Decode(nil, out)
		if err != nil || len(got) != 3 {
			t.Fatalf("codec %d: decoded %d: %v", codec, len(got), err)
		}
		for i, r := range got {
			if want := recs[3+i]; int64(r.Offset) != 103+int64(i) || string(r.Value) != string(want.Value) || r.Timestamp != want.Timestamp {
				t.Fatalf("codec %d: record %d is %d %q", codec, i, r.Offset, r.Value)
			}
		}
		var kb kmsg.RecordBatch
		if err := kb.ReadFrom(out); err != nil || kb.NumRecords != 3 || kb.LastOffsetDelta != 5 {
			t.Fatalf("codec %d: franz-go reads %+v: %v", codec, kb, err)
		}
		// Keeping all changes nothing; keeping none is the caller's.
		if o, k, d, err := Filter(nil, b, func(int64, []byte, bool) bool { return true }); o != nil || k != 6 || d || err != nil {
			t.Fatalf("codec %d: keep all: %d bytes, kept %d, dropped %v, %v", codec, len(o), k, d, err)
		}
		if o, k, d, err := Filter(nil, b, func(int64, []byte, bool) bool { return false }); o != nil || k != 0 || !d || err != nil {
			t.Fatalf("codec %d: keep none: %d bytes, kept %d, dropped %v, %v", codec, len(o), k, d, err)
		}
	}
	e := AppendEmpty(nil, 200, 299, 5, 9)
	h, err := Check(e)
	if err != nil || h.FirstOffset != 200 || h.LastOffset() != 299 || h.NumRecords != 0 || h.MaxTimestamp != 9 || h.ProducerID != -1 {
		t.Fatalf("empty batch %+v: %v", h, err)
	}
	if got, err := Decode(nil, e); err != nil || len(got) != 0 {
		t.Fatalf("empty batch decodes to %d records: %v", len(got), err)
	}
}
