package segment

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/eddy-broker/eddy/batch"
	"github.com/eddy-broker/eddy/internal/testutil"

	"github.com/eddy-broker/eddy"
)

func TestSnapshotRestore(t *testing.T) {
	src := NewMemFS()
	cfg := Config{SegmentBytes: 4 << 10}
	l := mustOpen(t, src, dir, cfg)
	rng := rand.New(rand.NewPCG(11, 12))
	seq := int32(0)
	for i := 0; i < 80; i++ {
		n := 1 + rng.IntN(4)
		mustAppend(t, l, batch.Append(nil, testutil.RandomRecords(rng, n), batch.Options{ProducerID: 3, BaseSequence: seq}), false)
		seq += int32(n)
	}
	l.DeleteBefore(20)
	l.SetApplied(500)
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	snap, err := l.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	// The log keeps moving while the snapshot streams: more appends, and
	// retention plus a sync that deletes segments the snapshot still reads.
	for i := 0; i < 30; i++ {
		mustAppend(t, l, batch.Append(nil, testutil.RandomRecords(rng, 2), batch.Options{ProducerID: -1}), false)
	}
	l.DeleteBefore(l.Segments()[2].Base)
	l.SetApplied(600)
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	var stream bytes.Buffer
	if _, err := snap.WriteTo(&stream); err != nil {
		t.Fatal(err)
	}
	snap.Close()

	dst := NewMemFS()
	// The destination holds an older, different log that the restore replaces.
	old := mustOpen(t, dst, dir, cfg)
	mustAppend(t, old, batch.Append(nil, testutil.RandomRecords(rng, 5), batch.Options{ProducerID: -1}), false)
	old.SetApplied(7)
	if err := old.Sync(); err != nil {
		t.Fatal(err)
	}
	old.Close()
	if err := Restore(dst, dir, bytes.NewReader(stream.Bytes())); err != nil {
		t.Fatal(err)
	}
	r := mustOpen(t, dst, dir, cfg)
	if r.Applied() != 500 {
		t.Fatalf("restored applied %d, want 500", r.Applied())
	}
	if start, end := r.Offsets(); start != 20 || end != int64(seq) {
		t.Fatalf("restored offsets [%d, %d), want [20, %d)", start, end, seq)
	}
	// Producer state came along: a retry of the last batch is a duplicate.
	if len(r.prod.m) != 1 || len(r.prod.m[3].Batches) == 0 {
		t.Fatalf("producer state not restored: %+v", r.prod.m)
	}
	// Restored records equal the source's at the same offsets.
	got := readAllRecords(t, r)
	srcRecs := map[eddy.Offset]eddy.Record{}
	for _, fr := range readAllRecords(t, l) {
		srcRecs[fr.Offset] = fr.Record
	}
	for _, fr := range got {
		if want, ok := srcRecs[fr.Offset]; ok && !testutil.SameRecord(want, fr.Record) {
			t.Fatalf("offset %d differs", fr.Offset)
		}
	}
	if len(got) != int(seq)-20 {
		t.Fatalf("%d records restored, want %d", len(got), int(seq)-20)
	}
}

func TestRestoreRejectsDamagedStream(t *testing.T) {
	src := NewMemFS()
	l := mustOpen(t, src, dir, Config{})
	mustAppend(t, l, batch.Append(nil, testutil.RandomRecords(rand.New(rand.NewPCG(1, 1)), 10), batch.Options{ProducerID: -1}), false)
	l.SetApplied(3)
	snap, _ := l.Snapshot()
	var stream bytes.Buffer
	snap.WriteTo(&stream)
	snap.Close()
	for _, cut := range []int{0, 5, 20, stream.Len() - 1} {
		dst := NewMemFS()
		if err := Restore(dst, dir, bytes.NewReader(stream.Bytes()[:cut])); eddy.ErrorCode(err) != eddy.CodeCorrupt {
			t.Fatalf("truncated at %d: %v", cut, err)
		}
	}
	flipped := append([]byte(nil), stream.Bytes()...)
	flipped[len(flipped)-20] ^= 1
	dst := NewMemFS()
	if err := Restore(dst, dir, bytes.NewReader(flipped)); eddy.ErrorCode(err) != eddy.CodeCorrupt {
		t.Fatalf("flipped bit: %v", err)
	}
	// A failed restore leaves nothing half-built behind: Open finds no log.
	r := mustOpen(t, dst, dir, Config{})
	if r.NextOffset() != 0 {
		t.Fatal("a failed restore left data")
	}
}

// A crash anywhere during Restore leaves the old log or the new one.
func TestRestoreCrash(t *testing.T) {
	src := NewMemFS()
	l := mustOpen(t, src, dir, Config{SegmentBytes: 2 << 10})
	rng := rand.New(rand.NewPCG(13, 14))
	for i := 0; i < 30; i++ {
		mustAppend(t, l, batch.Append(nil, testutil.RandomRecords(rng, 3), batch.Options{ProducerID: -1}), false)
	}
	l.SetApplied(900)
	snap, _ := l.Snapshot()
	var stream bytes.Buffer
	snap.WriteTo(&stream)
	snap.Close()
	newCount := l.NextOffset()

	for trial := 0; trial < 100; trial++ {
		dst := NewMemFS()
		old := mustOpen(t, dst, dir, Config{})
		mustAppend(t, old, batch.Append(nil, testutil.RandomRecords(rng, 4), batch.Options{ProducerID: -1}), false)
		old.SetApplied(5)
		if err := old.Sync(); err != nil {
			t.Fatal(err)
		}
		old.Close()
		// Crash after a random number of file-system operations.
		ops, stop := 0, rng.IntN(60)
		var crashed *MemFS
		dst.SetFault(func(op, name string) error {
			ops++
			if ops == stop && crashed == nil {
				crashed = dst.CrashCloneInFault(rng, true)
			}
			return nil
		})
		if err := Restore(dst, dir, bytes.NewReader(stream.Bytes())); err != nil {
			t.Fatal(err)
		}
		dst.SetFault(nil)
		if crashed == nil {
			crashed = dst.CrashClone(rng, true)
		}
		r, err := Open(crashed, dir, Config{})
		if err != nil {
			t.Fatalf("trial %d: open after a crash in restore: %v", trial, err)
		}
		switch r.Applied() {
		case 5:
			if r.NextOffset() != 4 {
				t.Fatalf("old log damaged: %d records", r.NextOffset())
			}
		case 900:
			if r.NextOffset() != newCount {
				t.Fatalf("new log incomplete: %d records", r.NextOffset())
			}
			readAllRecords(t, r)
		default:
			t.Fatalf("trial %d: applied %d is neither the old nor the new log", trial, r.Applied())
		}
		r.Close()
	}
}
