package segment

import (
	"math/rand/v2"
	"testing"

	"github.com/eddy-broker/eddy"
	"github.com/eddy-broker/eddy/batch"
)

// TestOffsetForTime: the first record at or after a time, across
// segments, with a batch whose timestamps are not in order; none after the
// last; nothing below the log start.
func TestOffsetForTime(t *testing.T) {
	l := mustOpen(t, NewMemFS(), "p", Config{SegmentBytes: 300})
	ts := []int64{100, 200, 150, 300, 400, 500}
	for i := 0; i < len(ts); i += 2 {
		recs := []eddy.Record{{Timestamp: ts[i], Value: []byte("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")},
			{Timestamp: ts[i+1], Value: []byte("b")}}
		mustAppend(t, l, batch.Append(nil, recs, batch.Options{ProducerID: -1}), false)
	}
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	if n := len(l.Segments()); n < 2 {
		t.Fatalf("%d segments; the test wants several", n)
	}
	for _, c := range []struct{ at, off, ts int64 }{
		{0, 0, 100}, {100, 0, 100}, {101, 1, 200}, {150, 1, 200}, {201, 3, 300}, {450, 5, 500}, {501, -1, -1},
	} {
		off, got, err := l.OffsetForTime(c.at)
		if err != nil || off != c.off || got != c.ts {
			t.Errorf("OffsetForTime(%d) = %d at %d (%v), want %d at %d", c.at, off, got, err, c.off, c.ts)
		}
	}
}

// TestOffsetForTimeMatchesScan: on random logs (several segments, batches
// of random sizes, timestamps that mostly rise but jump back inside and
// across batches, the oldest segments deleted) the time lookup answers
// what a linear scan of every stored batch answers under Kafka's rule:
// the first batch whose largest timestamp reaches the time, and in it the
// first record that does.
func TestOffsetForTimeMatchesScan(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	for round := 0; round < 30; round++ {
		l := mustOpen(t, NewMemFS(), "p", Config{SegmentBytes: int64(400 + rng.IntN(2000))})
		now := int64(1_000_000)
		for b := 0; b < 20+rng.IntN(60); b++ {
			var recs []eddy.Record
			for r := 0; r < 1+rng.IntN(8); r++ {
				now += int64(rng.IntN(50))
				ts := now
				if rng.IntN(5) == 0 {
					ts -= int64(rng.IntN(200)) // a late record
				}
				recs = append(recs, eddy.Record{Timestamp: ts, Value: make([]byte, rng.IntN(64))})
			}
			mustAppend(t, l, batch.Append(nil, recs, batch.Options{ProducerID: -1}), false)
		}
		if err := l.Sync(); err != nil {
			t.Fatal(err)
		}
		if rng.IntN(2) == 0 {
			start, end := l.Offsets()
			l.DeleteBefore(start + rng.Int64N(end-start))
		}
		start, end := l.Offsets()
		// The reference: every stored batch, in order, from the log start.
		type rec struct{ off, ts, batchMax, batch int64 }
		var all []rec
		batches := int64(0)
		for off := start; off < end; {
			res, err := l.Read(off, 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			batch.SplitVerified(res.Batches, func(h batch.Header, b []byte) error {
				recs, err := batch.Decode(nil, b)
				if err != nil {
					t.Fatal(err)
				}
				for _, r := range recs {
					all = append(all, rec{int64(r.Offset), r.Timestamp, h.MaxTimestamp, batches})
				}
				batches++
				off = h.LastOffset() + 1
				return nil
			})
		}
		scan := func(ts int64) (int64, int64) {
			for i, r := range all {
				if r.batchMax < ts || r.off < start {
					continue
				}
				for _, s := range all[i:] { // this batch: the first record that reaches ts
					if s.batch == r.batch && s.ts >= ts && s.off >= start {
						return s.off, s.ts
					}
				}
			}
			return -1, -1
		}
		for q := 0; q < 200; q++ {
			ts := int64(1_000_000) - 100 + rng.Int64N(now-1_000_000+300)
			wantOff, wantTs := scan(ts)
			off, got, err := l.OffsetForTime(ts)
			if err != nil || off != wantOff || got != wantTs {
				t.Fatalf("round %d: OffsetForTime(%d) = %d at %d (%v); the scan says %d at %d", round, ts, off, got, err, wantOff, wantTs)
			}
		}
	}
}
