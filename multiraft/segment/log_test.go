package segment

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"syscall"
	"testing"

	"github.com/eddy-broker/eddy/batch"
	"github.com/eddy-broker/eddy/internal/bufpool"
	"github.com/eddy-broker/eddy/internal/testutil"

	"github.com/eddy-broker/eddy"
)

const dir = "/data/p0"

func TestAppendReadRollReopen(t *testing.T) {
	fsys := NewMemFS()
	cfg := Config{SegmentBytes: 8 << 10, IndexIntervalBytes: 1024}
	l := mustOpen(t, fsys, dir, cfg)
	rng := rand.New(rand.NewPCG(3, 4))
	var want []eddy.Record
	for i := 0; i < 200; i++ {
		recs := testutil.RandomRecords(rng, 1+rng.IntN(8))
		res := mustAppend(t, l, batch.Append(nil, recs, batch.Options{ProducerID: -1}), false)
		if res.BaseOffset != int64(len(want)) {
			t.Fatalf("base offset %d, want %d", res.BaseOffset, len(want))
		}
		want = append(want, recs...)
		l.SetApplied(uint64(10 + 2*i))
		if rng.IntN(5) == 0 {
			if err := l.Flush(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, end := l.Offsets(); end == int64(len(want)) && rng.IntN(1) == 1 {
		t.Fatal("unreachable")
	}
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	if n := len(l.Segments()); n < 5 {
		t.Fatalf("only %d segments with 8 KiB segment.bytes", n)
	}
	for _, s := range l.Segments() {
		if s.Size > cfg.SegmentBytes && s.End-s.Base > 8 {
			t.Fatalf("segment %d is %d bytes", s.Base, s.Size)
		}
	}
	check := func(l *Log) {
		t.Helper()
		readsAll(t, l, want)
		// Every single offset is found directly, not only by scanning.
		for off := int64(0); off < int64(len(want)); off += 7 {
			res, err := l.Read(off, 1)
			if err != nil {
				t.Fatal(err)
			}
			h, _ := batch.Check(res.Batches)
			if h.FirstOffset > off || h.LastOffset() < off {
				t.Fatalf("Read(%d) returned batch [%d, %d]", off, h.FirstOffset, h.LastOffset())
			}
		}
	}
	check(l)
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	l.Close()
	l2 := mustOpen(t, fsys, dir, cfg)
	if l2.Applied() != uint64(10+2*199) {
		t.Fatalf("applied %d after reopen", l2.Applied())
	}
	check(l2)
	// Reading at the end is empty, past it or before the start is out of range.
	res, err := l2.Read(int64(len(want)), 100)
	if err != nil || len(res.Batches) != 0 || res.HighWatermark != int64(len(want)) {
		t.Fatalf("read at end: %v %d", err, len(res.Batches))
	}
	if _, err := l2.Read(int64(len(want))+1, 100); eddy.ErrorCode(err) != eddy.CodeOffsetOutOfRange {
		t.Fatalf("read past end: %v", err)
	}
	if _, err := l2.Read(-1, 100); eddy.ErrorCode(err) != eddy.CodeOffsetOutOfRange {
		t.Fatalf("read before start: %v", err)
	}
}

func TestRefusedBatchesChangeNothing(t *testing.T) {
	l := mustOpen(t, NewMemFS(), dir, Config{})
	good := batch.Append(nil, []eddy.Record{{Value: []byte("x")}}, batch.Options{ProducerID: -1})
	bad := append([]byte(nil), good...)
	bad[len(bad)-1] ^= 0xff
	for _, b := range [][]byte{bad, good[:40], append(append([]byte(nil), good...), 0)} {
		res, err := l.Append(b, false)
		if err != nil || res.Err == nil {
			t.Fatalf("bad batch accepted: %v %+v", err, res)
		}
	}
	if l.NextOffset() != 0 {
		t.Fatalf("next offset %d after refusals", l.NextOffset())
	}
	mustAppend(t, l, good, false)
}

func TestIdempotentWindowed(t *testing.T) {
	l := mustOpen(t, NewMemFS(), dir, Config{})
	mk := func(seq int32, n int) []byte {
		return batch.Append(nil, testutil.RandomRecords(rand.New(rand.NewPCG(uint64(seq), 0)), n), batch.Options{ProducerID: 9, BaseSequence: seq})
	}
	a := mustAppend(t, l, mk(0, 3), false)
	// seq 3 is dropped in flight; seq 5 commits first; then 3 is retried.
	c := mustAppend(t, l, mk(5, 2), false)
	b := mustAppend(t, l, mk(3, 2), false)
	if a.BaseOffset != 0 || c.BaseOffset != 3 || b.BaseOffset != 5 || b.Duplicate {
		t.Fatalf("offsets %d %d %d", a.BaseOffset, c.BaseOffset, b.BaseOffset)
	}
	// Retrying any of them returns the first offsets and appends nothing.
	for _, tc := range []struct {
		seq  int32
		n    int
		base int64
	}{{0, 3, 0}, {5, 2, 3}, {3, 2, 5}} {
		r := mustAppend(t, l, mk(tc.seq, tc.n), false)
		if !r.Duplicate || r.BaseOffset != tc.base {
			t.Fatalf("retry of seq %d: %+v", tc.seq, r)
		}
	}
	if l.NextOffset() != 7 {
		t.Fatalf("next offset %d, want 7", l.NextOffset())
	}
	// A retry with a different record count is a conflict, not a duplicate.
	r, _ := l.Append(mk(5, 3), false)
	if r.Err == nil || r.Err.Code != eddy.CodeConflict {
		t.Fatalf("mismatched retry: %+v", r)
	}
	// So is a different batch under a used sequence with the same count: it
	// must not be acknowledged with the earlier batch's offset.
	other := batch.Append(nil, testutil.RandomRecords(rand.New(rand.NewPCG(99, 1)), 2), batch.Options{ProducerID: 9, BaseSequence: 5})
	if r, _ := l.Append(other, false); r.Err == nil || r.Err.Code != eddy.CodeConflict || r.Duplicate {
		t.Fatalf("a reused sequence with other content: %+v", r)
	}
	if l.NextOffset() != 7 {
		t.Fatalf("next offset %d after refusals, want 7", l.NextOffset())
	}
	// The state survives a sync and reopen.
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
}

func TestIdempotentStrict(t *testing.T) {
	l := mustOpen(t, NewMemFS(), dir, Config{})
	mk := func(epoch int16, seq int32) []byte {
		return batch.Append(nil, []eddy.Record{{Value: []byte("v")}, {Value: []byte("w")}}, batch.Options{ProducerID: 4, ProducerEpoch: epoch, BaseSequence: seq})
	}
	refuse := func(b []byte, why string, code eddy.Code) {
		t.Helper()
		r, err := l.Append(b, true)
		if err != nil || r.Err == nil || r.Err.Code != code {
			t.Fatalf("%s: want %s (%v, %+v)", why, code, err, r)
		}
	}
	// A producer not known here may start anywhere (KIP-360).
	unknown := batch.Append(nil, []eddy.Record{{Value: []byte("u")}}, batch.Options{ProducerID: 44, BaseSequence: 5})
	if r := mustAppend(t, l, unknown, true); r.Duplicate {
		t.Fatalf("unknown producer at sequence 5: %+v", r)
	}
	mustAppend(t, l, mk(0, 0), true)
	mustAppend(t, l, mk(0, 2), true)
	refuse(mk(0, 6), "gap", eddy.CodeOutOfOrderSequence)
	if r := mustAppend(t, l, mk(0, 0), true); !r.Duplicate || r.BaseOffset != 1 { // after the unknown producer's record
		t.Fatalf("duplicate: %+v", r)
	}
	refuse(mk(1, 3), "new epoch not at sequence 0", eddy.CodeOutOfOrderSequence)
	mustAppend(t, l, mk(1, 0), true) // new epoch restarts sequences
	refuse(mk(0, 4), "fenced epoch", eddy.CodeProducerFenced)
}

func TestProducerEvictionIsBounded(t *testing.T) {
	l := mustOpen(t, NewMemFS(), dir, Config{})
	for pid := int64(0); pid < MaxProducers+10; pid++ {
		mustAppend(t, l, batch.Append(nil, []eddy.Record{{Value: []byte("v")}}, batch.Options{ProducerID: pid}), false)
	}
	if n := len(l.prod.m); n != MaxProducers {
		t.Fatalf("%d producers remembered", n)
	}
	if _, ok := l.prod.m[0]; ok {
		t.Fatal("oldest producer not evicted")
	}
}

func TestRetention(t *testing.T) {
	fsys := NewMemFS()
	cfg := Config{SegmentBytes: 4 << 10}
	l := mustOpen(t, fsys, dir, cfg)
	rng := rand.New(rand.NewPCG(5, 6))
	for i := 0; i < 100; i++ {
		mustAppend(t, l, batch.Append(nil, testutil.RandomRecords(rng, 4), batch.Options{ProducerID: -1}), false)
	}
	l.SetApplied(100)
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	segs := l.Segments()
	cut := segs[3].Base + 1
	if got := l.DeleteBefore(cut); got != cut {
		t.Fatalf("log start %d, want %d", got, cut)
	}
	if len(l.Segments()) != len(segs)-3 {
		t.Fatalf("%d segments after retention, want %d", len(l.Segments()), len(segs)-3)
	}
	if _, err := l.Read(cut-1, 100); eddy.ErrorCode(err) != eddy.CodeOffsetOutOfRange {
		t.Fatalf("read below log start: %v", err)
	}
	if res, err := l.Read(cut, 100); err != nil || len(res.Batches) == 0 {
		t.Fatalf("read at log start: %v", err)
	}
	// Files stay until the next sync has written a checkpoint without them.
	if !exists(fsys, segName(dir, segs[0].Base, ".log")) {
		t.Fatal("retired segment deleted before the checkpoint")
	}
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	for _, s := range segs[:3] {
		if exists(fsys, segName(dir, s.Base, ".log")) || exists(fsys, segName(dir, s.Base, ".index")) {
			t.Fatalf("segment %d not deleted", s.Base)
		}
	}
	// Deleting past the end clamps to the end; the active segment stays.
	end := l.NextOffset()
	if got := l.DeleteBefore(end + 100); got != end {
		t.Fatalf("log start %d, want %d", got, end)
	}
	if len(l.Segments()) != 1 {
		t.Fatalf("%d segments", len(l.Segments()))
	}
	l.Close()
	l2 := mustOpen(t, fsys, dir, cfg)
	if start, _ := l2.Offsets(); start != cut {
		t.Fatalf("log start %d after reopen, want %d (last synced)", start, cut)
	}
}

func TestMissingAndDamagedIndexRebuilt(t *testing.T) {
	fsys := NewMemFS()
	cfg := Config{SegmentBytes: 4 << 10, IndexIntervalBytes: 512}
	l := mustOpen(t, fsys, dir, cfg)
	rng := rand.New(rand.NewPCG(7, 8))
	for i := 0; i < 60; i++ {
		mustAppend(t, l, batch.Append(nil, testutil.RandomRecords(rng, 3), batch.Options{ProducerID: -1}), false)
	}
	l.SetApplied(60)
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	want := readAllRecords(t, l)
	segs := l.Segments()
	l.Close()
	// Remove one index, scramble another.
	if err := fsys.Remove(segName(dir, segs[0].Base, ".index")); err != nil {
		t.Fatal(err)
	}
	f, _ := fsys.Create(segName(dir, segs[1].Base, ".index"))
	f.Write([]byte{0, 0, 0, 9, 0xff, 0xff, 0xff, 0xff, 1})
	f.Close()
	l2 := mustOpen(t, fsys, dir, cfg)
	got := readAllRecords(t, l2)
	if len(got) != len(want) {
		t.Fatalf("%d records after index rebuild, want %d", len(got), len(want))
	}
	b, err := readAll(fsys, segName(dir, segs[0].Base, ".index"))
	if err != nil || len(b) == 0 {
		t.Fatalf("index not rebuilt: %v", err)
	}
}

func TestDiskFull(t *testing.T) {
	fsys := NewMemFS()
	l := mustOpen(t, fsys, dir, Config{})
	rng := rand.New(rand.NewPCG(9, 10))
	for i := 0; i < 10; i++ {
		mustAppend(t, l, batch.Append(nil, testutil.RandomRecords(rng, 5), batch.Options{ProducerID: -1}), false)
	}
	l.SetApplied(10)
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	synced := readAllRecords(t, l)
	fsys.SetCapacity(fsys.used + 100)
	mustAppend(t, l, batch.Append(nil, testutil.RandomRecords(rng, 20), batch.Options{ProducerID: -1}), false)
	err := l.Flush()
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("flush on a full disk: %v", err)
	}
	// The failed log refuses everything, and serves nothing past what was good.
	if _, err := l.Append(batch.Append(nil, testutil.RandomRecords(rng, 1), batch.Options{ProducerID: -1}), false); err == nil {
		t.Fatal("append after a failed write succeeded")
	}
	if _, end := l.Offsets(); end != int64(len(synced)) {
		t.Fatalf("high watermark %d moved past the failed write", end)
	}
	l.Close()
	fsys.SetCapacity(0)
	l2 := mustOpen(t, fsys, dir, Config{})
	got := readAllRecords(t, l2)
	if len(got) != len(synced) || l2.Applied() != 10 {
		t.Fatalf("after reopen: %d records (want %d), applied %d", len(got), len(synced), l2.Applied())
	}
}

// entry is a simulated Raft log entry.
type entry struct {
	index  uint64
	batch  []byte
	delete int64 // DeleteBefore when batch is nil
}

func apply(tb testing.TB, l *Log, ents []entry) {
	tb.Helper()
	for _, e := range ents {
		if e.batch != nil {
			if _, err := l.Append(e.batch, false); err != nil {
				tb.Fatalf("append entry %d: %v", e.index, err)
			}
		} else {
			l.DeleteBefore(e.delete)
		}
		l.SetApplied(e.index)
	}
	if err := l.Flush(); err != nil {
		tb.Fatal(err)
	}
}

// TestCrashRecovery drives a log the way dragonboat does (Update batches,
// periodic Sync), crashes the file system at a random point (losing unsynced
// writes and directory operations, tearing tails), reopens, re-applies the
// entries after the recovered index as dragonboat would, and checks that the
// result is byte-identical to a log that never crashed, and that nothing
// corrupt was ever readable.
func TestCrashRecovery(t *testing.T) {
	runs := 300
	if testing.Short() {
		runs = 50
	}
	for run := 0; run < runs; run++ {
		t.Run(fmt.Sprint(run), func(t *testing.T) { crashRun(t, uint64(run)) })
	}
}

func crashRun(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 99))
	cfg := Config{SegmentBytes: int64(2<<10 + rng.IntN(8<<10)), IndexIntervalBytes: int64(256 + rng.IntN(2048))}
	var raftLog []entry
	idx := uint64(0)
	nEntries := 20 + rng.IntN(120)
	seq := int32(0)
	for i := 0; i < nEntries; i++ {
		idx += 1 + uint64(rng.IntN(3)) // indexes have gaps
		if rng.IntN(15) == 0 && len(raftLog) > 0 {
			raftLog = append(raftLog, entry{index: idx, delete: int64(rng.IntN(i * 4))})
			continue
		}
		n := 1 + rng.IntN(6)
		pid := int64(-1)
		if rng.IntN(2) == 0 {
			pid = 1
		}
		raftLog = append(raftLog, entry{index: idx, batch: batch.Append(nil, testutil.RandomRecords(rng, n), batch.Options{ProducerID: pid, BaseSequence: seq})})
		if pid == 1 {
			seq += int32(n)
			if rng.IntN(6) == 0 { // a retried proposal
				e := raftLog[len(raftLog)-1]
				idx++
				raftLog = append(raftLog, entry{index: idx, batch: e.batch})
			}
		}
	}

	// The reference never crashes.
	ref := NewMemFS()
	rl := mustOpen(t, ref, dir, cfg)
	apply(t, rl, raftLog)

	fsys := NewMemFS()
	l := mustOpen(t, fsys, dir, cfg)
	crashAt := rng.IntN(len(raftLog) + 1)
	syncedApplied := uint64(0)
	for i := 0; i < crashAt; {
		n := min(1+rng.IntN(5), crashAt-i)
		apply(t, l, raftLog[i:i+n])
		i += n
		if rng.IntN(3) == 0 {
			if err := l.Sync(); err != nil {
				t.Fatal(err)
			}
			syncedApplied = l.Applied()
		}
	}
	crashed := fsys.CrashClone(rng, true)
	l.Close()

	l2 := mustOpen(t, crashed, dir, cfg)
	if got := l2.Applied(); got != syncedApplied {
		t.Fatalf("recovered applied index %d, last synced %d", got, syncedApplied)
	}
	// Nothing corrupt is served: every visible batch decodes.
	readAllRecords(t, l2)
	var rest []entry
	for _, e := range raftLog {
		if e.index > l2.Applied() {
			rest = append(rest, e)
		}
	}
	apply(t, l2, rest)
	if err := l2.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := rl.Sync(); err != nil {
		t.Fatal(err)
	}
	a, b := readAllRecords(t, rl), readAllRecords(t, l2)
	if len(a) != len(b) {
		t.Fatalf("%d records after recovery, reference has %d", len(b), len(a))
	}
	for i := range a {
		if a[i].Offset != b[i].Offset || !testutil.SameRecord(a[i].Record, b[i].Record) {
			t.Fatalf("record %d differs after recovery", i)
		}
	}
	fa, fb := fileBytes(t, ref, dir), fileBytes(t, crashed, dir)
	for name, ba := range fa {
		if bb, ok := fb[name]; !ok || !bytes.Equal(ba, bb) {
			t.Fatalf("file %s differs from the reference (present %v)", name, ok)
		}
	}
	if len(fa) != len(fb) {
		t.Fatalf("%d files, reference has %d", len(fb), len(fa))
	}
}

// TestAppendFromSource: a batch made from a producer's batch (a
// transform's output) deduplicates as that batch: a retry whose output
// differs is still a duplicate, another source at the same sequence is
// not, and the producer's next sequence follows the source's count.
func TestAppendFromSource(t *testing.T) {
	l := mustOpen(t, NewMemFS(), dir, Config{})
	out := func(v string, seq int32) []byte {
		return batch.Append(nil, []eddy.Record{{Value: []byte(v)}}, batch.Options{ProducerID: 7, BaseSequence: seq})
	}
	src := &Source{Count: 4, CRC: 0xfeed}
	a, err := l.AppendFrom(out("first output", 0), false, src)
	if err != nil || a.Err != nil || a.Duplicate {
		t.Fatalf("append: %+v %v", a, err)
	}
	b, _ := l.AppendFrom(out("another output", 0), false, src)
	if !b.Duplicate || b.BaseOffset != a.BaseOffset {
		t.Fatalf("the retry: %+v", b)
	}
	if c, _ := l.AppendFrom(out("x", 0), false, &Source{Count: 4, CRC: 0xbeef}); c.Err == nil {
		t.Fatalf("another batch under a used sequence: %+v", c)
	}
	if d, _ := l.Append(out("next", 4), true); d.Err != nil || d.Duplicate {
		t.Fatalf("the next sequence after the source's 4: %+v", d)
	}
}

// TestConsumeRemembersBatch: a producer's batch a transform consumed
// whole appends nothing, yet its retry is known, whether it comes back
// consumed again or as records (a transform that now passes them), and
// the state survives a reopen.
func TestConsumeRemembersBatch(t *testing.T) {
	fsys := NewMemFS()
	l := mustOpen(t, fsys, dir, Config{})
	mustAppend(t, l, batch.Append(nil, []eddy.Record{{Value: []byte("before")}}, batch.Options{ProducerID: -1}), false)
	id := batch.Header{ProducerID: 7, ProducerEpoch: 0, BaseSequence: 0, NumRecords: 3, CRC: 0xfeed}
	if r, err := l.Consume(id); err != nil || r.Err != nil || r.Duplicate || r.BaseOffset != -1 {
		t.Fatalf("consume: %+v %v", r, err)
	}
	if l.NextOffset() != 1 {
		t.Fatalf("a consumed batch appended: next offset %d", l.NextOffset())
	}
	if r, _ := l.Consume(id); !r.Duplicate || r.BaseOffset != -1 {
		t.Fatalf("consumed again: %+v", r)
	}
	if base, ok := l.Seen(id); !ok || base != -1 {
		t.Fatalf("seen: %d %v", base, ok)
	}
	out := batch.Append(nil, []eddy.Record{{Value: []byte("passed this time")}}, batch.Options{ProducerID: 7, BaseSequence: 0})
	if r, _ := l.AppendFrom(out, false, &Source{Count: 3, CRC: 0xfeed}); !r.Duplicate || r.BaseOffset != -1 || l.NextOffset() != 1 {
		t.Fatalf("the retry as records: %+v, next offset %d", r, l.NextOffset())
	}
	other := id
	other.CRC = 0xbeef
	if r, _ := l.Consume(other); r.Err == nil || r.Err.Code != eddy.CodeConflict {
		t.Fatalf("another batch under a used sequence: %+v", r)
	}
	if _, ok := l.Seen(other); ok {
		t.Fatal("another batch under a used sequence is seen")
	}
	next := batch.Append(nil, []eddy.Record{{Value: []byte("next")}}, batch.Options{ProducerID: 7, BaseSequence: 3})
	a := mustAppend(t, l, next, false)
	if a.BaseOffset != 1 || a.Duplicate {
		t.Fatalf("the next batch: %+v", a)
	}
	if base, ok := l.Seen(batch.Header{ProducerID: 7, BaseSequence: 3, NumRecords: 1, CRC: mustHeader(t, next).CRC}); !ok || base != 1 {
		t.Fatalf("the appended batch seen: %d %v", base, ok)
	}
	l.SetApplied(9)
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = mustOpen(t, fsys, dir, Config{})
	if base, ok := l.Seen(id); !ok || base != -1 {
		t.Fatalf("seen after a reopen: %d %v", base, ok)
	}
}

func mustHeader(t *testing.T, b []byte) batch.Header {
	t.Helper()
	h, err := batch.ParseHeader(b)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestLargeBatchesWrittenThrough: batches of writeThroughBytes and more
// go to the file as they are, among small ones gathered in pending; each
// reads back at its offset, before and after a reopen, and the caller's
// bytes (a Raft entry's) keep their first offset.
func TestLargeBatchesWrittenThrough(t *testing.T) {
	fsys := NewMemFS()
	cfg := Config{SegmentBytes: 1 << 20, IndexIntervalBytes: 4096}
	l := mustOpen(t, fsys, dir, cfg)
	rng := rand.New(rand.NewPCG(5, 6))
	var want []eddy.Record
	large := 0
	for i := 0; i < 60; i++ {
		n := 1 + rng.IntN(4)
		if i%3 == 0 {
			n = 70 + rng.IntN(60) // 1 KiB values: over writeThroughBytes
		}
		recs := make([]eddy.Record, n)
		for j := range recs {
			recs[j] = eddy.Record{Key: []byte(fmt.Sprint(i, j)), Value: bytes.Repeat([]byte{byte(i)}, 1024)}
		}
		b := batch.Append(nil, recs, batch.Options{ProducerID: -1})
		if len(b) >= writeThroughBytes {
			large++
		}
		res := mustAppend(t, l, b, false)
		if res.BaseOffset != int64(len(want)) {
			t.Fatalf("batch %d: base offset %d, want %d", i, res.BaseOffset, len(want))
		}
		if h, err := batch.Check(b); err != nil || h.FirstOffset != 0 {
			t.Fatalf("batch %d: the appended bytes changed (first offset %d, %v)", i, h.FirstOffset, err)
		}
		want = append(want, recs...)
		if rng.IntN(3) == 0 {
			if err := l.Flush(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if large < 15 {
		t.Fatalf("only %d batches over %d bytes", large, writeThroughBytes)
	}
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	readsAll(t, l, want)
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	l.Close()
	readsAll(t, mustOpen(t, fsys, dir, cfg), want)
}

// TestWriteback: Writeback runs beside appends (under -race), syncs the
// segments written since the last Sync, and a writeback that failed
// fails the next Sync even when the disk is fine again: the failed fsync
// reported the lost writeback once, and a Sync would otherwise find the
// file clean.
func TestWriteback(t *testing.T) {
	fsys := NewMemFS()
	l := mustOpen(t, fsys, dir, Config{SegmentBytes: 64 << 10})
	rng := rand.New(rand.NewPCG(11, 12))
	done := make(chan error)
	stop := make(chan struct{})
	go func() {
		for {
			select {
			case <-stop:
				done <- nil
				return
			default:
			}
			if err := l.Writeback(); err != nil {
				done <- err
				return
			}
		}
	}()
	var want []eddy.Record
	for i := uint64(1); i <= 200; i++ {
		recs := testutil.RandomRecords(rng, 3)
		want = append(want, recs...)
		apply(t, l, []entry{{index: i, batch: batch.Append(nil, recs, batch.Options{ProducerID: -1})}})
	}
	close(stop)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	var synced []string
	fsys.SetFault(func(op, name string) error {
		if op == "sync" {
			synced = append(synced, filepath.Base(name))
		}
		return nil
	})
	if err := l.Writeback(); err != nil {
		t.Fatal(err)
	}
	fsys.SetFault(nil)
	var segs []string // none synced yet: all written since
	for _, sg := range l.Segments() {
		segs = append(segs, filepath.Base(segName(dir, sg.Base, ".log")), filepath.Base(segName(dir, sg.Base, ".index")))
	}
	if len(segs) < 4 || !slices.Equal(synced, segs) {
		t.Fatalf("writeback synced %v, want %v", synced, segs)
	}
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	readsAll(t, l, want)
	synced = nil
	fsys.SetFault(func(op, name string) error {
		if op == "sync" {
			synced = append(synced, filepath.Base(name))
		}
		return nil
	})
	if err := l.Writeback(); err != nil || len(synced) != 0 {
		t.Fatalf("writeback after a sync: synced %v, %v; want nothing", synced, err)
	}

	broken := errors.New("injected: writeback failed")
	apply(t, l, []entry{{index: 201, batch: batch.Append(nil, testutil.RandomRecords(rng, 3), batch.Options{ProducerID: -1})}})
	fsys.SetFault(func(op, name string) error {
		if op == "sync" {
			return broken
		}
		return nil
	})
	if err := l.Writeback(); !errors.Is(err, broken) {
		t.Fatalf("writeback on a failing disk: %v", err)
	}
	fsys.SetFault(nil)
	if err := l.Sync(); !errors.Is(err, broken) {
		t.Fatalf("sync after a failed writeback: %v, want the writeback's error", err)
	}
}

// TestShortReadIsDamaged: a segment file shorter than the log knows it
// (cut behind its back) reads as damaged from where it was cut, pooled
// or not, never as the bytes a pooled buffer held before.
func TestShortReadIsDamaged(t *testing.T) {
	fsys := NewMemFS()
	l := mustOpen(t, fsys, dir, Config{SegmentBytes: 8 << 20, IndexIntervalBytes: 1})
	for range 40 {
		mustAppend(t, l, batch.Append(nil, []eddy.Record{{Value: bytes.Repeat([]byte("v"), 10000)}}, batch.Options{ProducerID: -1}), false)
	}
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	whole, err := l.ReadPooled(0, 1<<20)
	if err != nil || len(whole.Batches) < 400_000 || !whole.Pooled {
		t.Fatalf("read %d bytes, pooled %v: %v", len(whole.Batches), whole.Pooled, err)
	}
	f, err := fsys.OpenRW(segName(dir, 0, ".log"))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(int64(len(whole.Batches) / 2)); err != nil {
		t.Fatal(err)
	}
	f.Close()
	for range 20 {
		// Pooled buffers of every size a read below takes, holding good
		// batches (offsets from 0): likely the ones it gets.
		for n := bufpool.Min; n <= 1<<20; n *= 2 {
			b := bufpool.Get(n)
			bufpool.Put(append(b, whole.Batches[:min(cap(b), len(whole.Batches))]...))
		}
		for _, read := range []func(int64, int) (eddy.FetchedBatches, error){l.Read, l.ReadPooled} {
			if rr, err := read(30, 1<<20); eddy.ErrorCode(err) != eddy.CodeCorrupt {
				t.Fatalf("a read past the cut: %d bytes, %v; want %s", len(rr.Batches), err, eddy.CodeCorrupt)
			}
			if rr, err := read(0, 1<<20); err != nil || len(rr.Batches) == 0 || len(rr.Batches) > len(whole.Batches)/2 {
				t.Fatalf("a read from the start: %d bytes, %v; want the batches before the cut", len(rr.Batches), err)
			}
		}
	}
}

// SegmentMs rolls by record time: a batch this much newer than the
// active segment's first starts a new one, the same after a reopen (the
// active segment's first batch is read again).
func TestSegmentMsRolls(t *testing.T) {
	fsys := NewMemFS()
	cfg := Config{SegmentMs: 1000}
	l := mustOpen(t, fsys, "/p", cfg)
	at := func(ts int64) {
		mustAppend(t, l, batch.Append(nil, []eddy.Record{{Key: []byte("k"), Value: []byte("v"), Timestamp: ts}}, batch.Options{ProducerID: -1}), false)
	}
	bases := func() (out []int64) {
		for _, s := range l.Segments() {
			out = append(out, s.Base)
		}
		return out
	}
	at(10_000)
	at(10_500)
	at(10_999)
	if got := fmt.Sprint(bases()); got != "[0]" {
		t.Fatalf("segments %s before a second passed", got)
	}
	at(11_000) // a second after the first: rolls
	at(11_900)
	if got := fmt.Sprint(bases()); got != "[0 3]" {
		t.Fatalf("segments %s, want [0 3]", got)
	}
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	l.Close()
	l = mustOpen(t, fsys, "/p", cfg)
	at(11_950)
	at(12_000) // a second after 11,000, the active segment's first
	if got := fmt.Sprint(bases()); got != "[0 3 6]" {
		t.Fatalf("after a reopen, segments %s, want [0 3 6]", got)
	}
}
