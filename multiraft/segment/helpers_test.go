package segment

import (
	"testing"

	"github.com/eddy-broker/eddy"
	"github.com/eddy-broker/eddy/batch"
	"github.com/eddy-broker/eddy/internal/testutil"
)

func mustOpen(tb testing.TB, fsys FS, dir string, cfg Config) *Log {
	tb.Helper()
	l, err := Open(fsys, dir, cfg)
	if err != nil {
		tb.Fatalf("Open(%s): %v", dir, err)
	}
	tb.Cleanup(func() { l.Close() })
	return l
}

func mustAppend(tb testing.TB, l *Log, batch []byte, strict bool) AppendResult {
	tb.Helper()
	res, err := l.Append(batch, strict)
	if err != nil {
		tb.Fatalf("Append: %v", err)
	}
	if res.Err != nil {
		tb.Fatalf("Append refused: %v", res.Err)
	}
	return res
}

// readsAll checks that l holds want, from offset 0 on.
func readsAll(tb testing.TB, l *Log, want []eddy.Record) {
	tb.Helper()
	got := readAllRecords(tb, l)
	if len(got) != len(want) {
		tb.Fatalf("read %d records, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i].Offset != eddy.Offset(i) || !testutil.SameRecord(got[i].Record, want[i]) {
			tb.Fatalf("record %d differs", i)
		}
	}
}

// readAllRecords reads every visible record from the log start.
func readAllRecords(tb testing.TB, l *Log) []eddy.FetchedRecord {
	tb.Helper()
	start, end := l.Offsets()
	var out []eddy.FetchedRecord
	for off := start; off < end; {
		res, err := l.Read(off, 64<<10)
		if err != nil {
			tb.Fatalf("Read(%d): %v", off, err)
		}
		if len(res.Batches) == 0 {
			tb.Fatalf("Read(%d) returned nothing below the high watermark %d", off, end)
		}
		var recs []eddy.FetchedRecord
		next := off
		err = batch.Split(res.Batches, func(h batch.Header, b []byte) error {
			next = h.LastOffset() + 1 // past a compacted batch's gaps
			recs, err = batch.Decode(recs, b)
			return err
		})
		if err != nil {
			tb.Fatalf("decode at %d: %v", off, err)
		}
		for _, r := range recs {
			if int64(r.Offset) >= off {
				out = append(out, r)
			}
		}
		off = next
	}
	return out
}

// fileBytes returns the contents of every file in dir.
func fileBytes(tb testing.TB, fsys FS, dir string) map[string][]byte {
	tb.Helper()
	names, err := fsys.List(dir)
	if err != nil {
		tb.Fatal(err)
	}
	out := map[string][]byte{}
	for _, n := range names {
		if n == checkpointName {
			continue // holds the applied index, which differs by design
		}
		b, err := readAll(fsys, dir+"/"+n)
		if err != nil {
			tb.Fatal(err)
		}
		out[n] = b
	}
	return out
}
