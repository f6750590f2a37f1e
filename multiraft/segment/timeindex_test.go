package segment

import (
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
