package segment

import (
	"math/rand/v2"
	"testing"

	"github.com/eddy-broker/eddy/batch"
	"github.com/eddy-broker/eddy/internal/testutil"

	"github.com/eddy-broker/eddy"
)

// FuzzDecodeBatch: arbitrary bytes never panic the decoder, and whatever
// passes the CRC check decodes to records that re-encode to a valid batch.
func FuzzDecodeBatch(f *testing.F) {
	rng := rand.New(rand.NewPCG(1, 1))
	for _, n := range []int{1, 3, 10} {
		f.Add(batch.Append(nil, testutil.RandomRecords(rng, n), batch.Options{ProducerID: 1, BaseSequence: 5}))
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := batch.Check(b)
		if err != nil {
			return
		}
		recs, err := batch.Decode(nil, b[:h.Size()])
		if err != nil {
			return
		}
		plain := make([]eddy.Record, len(recs))
		for i := range recs {
			plain[i] = recs[i].Record
		}
		if _, err := batch.Check(batch.Append(nil, plain, batch.Options{ProducerID: -1})); len(plain) > 0 && err != nil {
			t.Fatalf("re-encoded batch invalid: %v", err)
		}
	})
}

// FuzzRecover: a partition directory with arbitrary bytes in its active
// segment (under a valid checkpoint) or as its checkpoint never panics Open,
// and a log that opens serves only batches that pass their CRC.
func FuzzRecover(f *testing.F) {
	rng := rand.New(rand.NewPCG(2, 2))
	seg := batch.Append(nil, testutil.RandomRecords(rng, 3), batch.Options{ProducerID: -1})
	seg = append(seg, batch.Append(nil, testutil.RandomRecords(rng, 2), batch.Options{ProducerID: -1})...)
	f.Add(seg, int64(len(seg)), false)
	f.Add(seg, int64(len(seg)/2), false)
	f.Add(encodeCheckpoint(&checkpoint{Version: 1, Applied: 3, NextOffset: 5, Segments: []segMeta{{Size: int64(len(seg))}}}), int64(0), true)
	f.Fuzz(func(t *testing.T, data []byte, size int64, asCheckpoint bool) {
		fsys := NewMemFS()
		fsys.MkdirAll(dir)
		sf, _ := fsys.Create(segName(dir, 0, ".log"))
		if asCheckpoint {
			sf.Write(seg)
			cf, _ := fsys.Create(dir + "/" + checkpointName)
			cf.Write(data)
			cf.Close()
		} else {
			sf.Write(data)
			cp := &checkpoint{Version: 1, Applied: 1, NextOffset: 5, Segments: []segMeta{{Size: max(size, 0)}}}
			cf, _ := fsys.Create(dir + "/" + checkpointName)
			cf.Write(encodeCheckpoint(cp))
			cf.Close()
		}
		sf.Close()
		l, err := Open(fsys, dir, Config{})
		if err != nil {
			return
		}
		defer l.Close()
		start, end := l.Offsets()
		for off := start; off < end; {
			res, err := l.Read(off, 1<<20)
			if err != nil {
				return
			}
			if len(res.Batches) == 0 {
				t.Fatalf("empty read below the high watermark")
			}
			last := off
			if err := batch.Split(res.Batches, func(h batch.Header, b []byte) error {
				last = h.LastOffset()
				return nil
			}); err != nil {
				t.Fatalf("served a batch that fails its check: %v", err)
			}
			off = last + 1
		}
	})
}
