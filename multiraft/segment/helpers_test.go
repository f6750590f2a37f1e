package segment

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/eddy-broker/eddy"
)

func randRecords(rng *rand.Rand, n int) []eddy.Record {
	recs := make([]eddy.Record, n)
	for i := range recs {
		r := &recs[i]
		r.Timestamp = 1_700_000_000_000 + rng.Int64N(1_000_000)
		if rng.IntN(4) > 0 {
			r.Key = []byte(fmt.Sprintf("key-%d", rng.IntN(100)))
		}
		switch rng.IntN(5) {
		case 0: // null value
		case 1:
			r.Value = []byte{}
		default:
			r.Value = make([]byte, rng.IntN(300))
			for j := range r.Value {
				r.Value[j] = byte(rng.Uint32())
			}
		}
		for h := rng.IntN(3); h > 0; h-- {
			r.Headers = append(r.Headers, eddy.Header{Key: fmt.Sprintf("h%d", h), Value: []byte("v")})
		}
	}
	return recs
}

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
		err = SplitBatches(res.Batches, func(h BatchHeader, b []byte) error {
			recs, err = DecodeBatch(recs, b)
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
		off = int64(recs[len(recs)-1].Offset) + 1
	}
	return out
}

func sameRecord(a eddy.Record, b eddy.Record) bool {
	if (a.Key == nil) != (b.Key == nil) || (a.Value == nil) != (b.Value == nil) {
		return false
	}
	if !bytes.Equal(a.Key, b.Key) || !bytes.Equal(a.Value, b.Value) || a.Timestamp != b.Timestamp || len(a.Headers) != len(b.Headers) {
		return false
	}
	for i := range a.Headers {
		if a.Headers[i].Key != b.Headers[i].Key || !bytes.Equal(a.Headers[i].Value, b.Headers[i].Value) {
			return false
		}
	}
	return true
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
