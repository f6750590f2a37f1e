package segment

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/eddy-broker/eddy"
	"github.com/eddy-broker/eddy/batch"
)

// compactModel is what was appended, to say what compaction must leave.
type compactModel struct {
	recs []eddy.FetchedRecord
	ts   []int64 // each record's batch's newest timestamp
}

// appendKeyed appends n batches of 1-4 records over keys k0..k(keys-1),
// some keyless, some tombstones, some compressed.
func (m *compactModel) appendKeyed(t *testing.T, l *Log, rng *rand.Rand, n, keys, keyLen int) {
	t.Helper()
	for i := 0; i < n; i++ {
		ts := int64(1000 + len(m.recs))
		var recs []eddy.Record
		for j := rng.IntN(4); j >= 0; j-- {
			r := eddy.Record{Timestamp: ts, Value: []byte(fmt.Sprintf("v%d", len(m.recs)+len(recs)))}
			if rng.IntN(10) > 0 {
				k := fmt.Sprintf("k%d", rng.IntN(keys))
				r.Key = []byte(k + string(bytes.Repeat([]byte{'.'}, max(keyLen-len(k), 0))))
			}
			if rng.IntN(10) == 0 {
				r.Value = nil // a tombstone (or a keyless null, kept)
			}
			recs = append(recs, r)
		}
		b := batch.Append(nil, recs, batch.Options{ProducerID: -1})
		if c := rng.IntN(8); c >= 1 && c <= 4 {
			var err error
			if b, err = batch.Compress(b, c); err != nil {
				t.Fatal(err)
			}
		}
		res := mustAppend(t, l, b, false)
		for j, r := range recs {
			m.recs = append(m.recs, eddy.FetchedRecord{Offset: eddy.Offset(res.BaseOffset + int64(j)), Record: r})
			m.ts = append(m.ts, ts)
		}
	}
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
}

// want is what a compaction of the records below cleanEnd leaves, with
// tombstones of batches older than expire dropped (0: none).
func (m *compactModel) want(cleanEnd, expire int64) []eddy.FetchedRecord {
	newest := map[string]int64{}
	for _, r := range m.recs {
		if r.Key != nil && int64(r.Offset) < cleanEnd {
			newest[string(r.Key)] = int64(r.Offset)
		}
	}
	var out []eddy.FetchedRecord
	for i, r := range m.recs {
		if int64(r.Offset) < cleanEnd && r.Key != nil {
			if newest[string(r.Key)] != int64(r.Offset) || (r.Value == nil && m.ts[i] < expire) {
				continue
			}
		}
		out = append(out, r)
	}
	return out
}

// sameRecords checks that l holds exactly want, and that a read from each
// offset of the log finds the batch holding it.
func sameRecords(t *testing.T, l *Log, want []eddy.FetchedRecord) {
	t.Helper()
	got := readAllRecords(t, l)
	if len(got) != len(want) {
		t.Fatalf("read %d records, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Offset != w.Offset || !bytes.Equal(g.Key, w.Key) || !bytes.Equal(g.Value, w.Value) || (g.Value == nil) != (w.Value == nil) {
			t.Fatalf("record %d: offset %d key %q value %q, want offset %d key %q value %q", i, g.Offset, g.Key, g.Value, w.Offset, w.Key, w.Value)
		}
	}
	start, end := l.Offsets()
	for off := start; off < end; off++ {
		res, err := l.Read(off, 1)
		if err != nil {
			t.Fatalf("Read(%d): %v", off, err)
		}
		h, err := batch.ParseHeader(res.Batches)
		if err != nil || h.FirstOffset > off || h.LastOffset() < off {
			t.Fatalf("Read(%d) found the batch of %d to %d (%v)", off, h.FirstOffset, h.LastOffset(), err)
		}
	}
}

func sealedEnd(l *Log) int64 {
	segs := l.Segments()
	return segs[len(segs)-1].Base
}

func TestCompactKeepsNewestOfEachKey(t *testing.T) {
	fsys := NewMemFS()
	cfg := Config{SegmentBytes: 2048, IndexIntervalBytes: 256}
	l := mustOpen(t, fsys, "/p", cfg)
	rng := rand.New(rand.NewPCG(1, 2))
	var m compactModel
	m.appendKeyed(t, l, rng, 400, 20, 0)
	// Nothing is compacted before a checkpoint names it sealed: a
	// restart would replay it from the Raft log.
	if res, err := l.Compact(CompactOptions{NowMs: 1 << 40, DeleteRetentionMs: -1}); err != nil || res.Segments != 0 {
		t.Fatalf("compaction before a sync: %+v %v", res, err)
	}
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	if dirty, sealed := l.DirtyBytes(); dirty != sealed || sealed == 0 {
		t.Fatalf("before compaction: dirty %d of %d sealed bytes", dirty, sealed)
	}
	before := l.Size()
	clean := sealedEnd(l)
	res, err := l.Compact(CompactOptions{NowMs: 1 << 40, DeleteRetentionMs: -1})
	if err != nil {
		t.Fatal(err)
	}
	if res.CleanEnd != clean || res.Segments == 0 || res.Dropped == 0 || res.MapFull {
		t.Fatalf("compaction %+v, want it to end at %d", res, clean)
	}
	if after := l.Size(); before-after != res.BytesBefore-res.BytesAfter {
		t.Fatalf("log %d -> %d bytes, compaction says %d -> %d", before, after, res.BytesBefore, res.BytesAfter)
	}
	sameRecords(t, l, m.want(clean, 0))
	if dirty, _ := l.DirtyBytes(); dirty != 0 {
		t.Fatalf("after compaction %d bytes dirty", dirty)
	}

	// Again: nothing more to drop.
	if res, err := l.Compact(CompactOptions{NowMs: 1 << 40, DeleteRetentionMs: -1}); err != nil || res.Segments != 0 {
		t.Fatalf("second compaction %+v, %v", res, err)
	}
	// Tombstones older than delete.retention.ms go at the next pass (one
	// that new writes start, as Kafka's), and what their keys' older
	// values were stays gone.
	m.appendKeyed(t, l, rng, 100, 20, 0)
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	clean = sealedEnd(l)
	expire := int64(1 << 40)
	if len(m.want(clean, expire)) == len(m.want(clean, 0)) {
		t.Fatal("no tombstone to expire: the test proves nothing")
	}
	if _, err := l.Compact(CompactOptions{NowMs: expire + 10, DeleteRetentionMs: 10}); err != nil {
		t.Fatal(err)
	}
	sameRecords(t, l, m.want(clean, expire))

	// The segments compacted reopen without a sync since (of another
	// size than the checkpoint says), and appends go on, synced, reopened.
	l.Close()
	l = mustOpen(t, fsys, "/p", cfg)
	sameRecords(t, l, m.want(clean, expire))
	m.appendKeyed(t, l, rng, 50, 20, 0)
	sameRecords(t, l, m.want(clean, expire))
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	l.Close()
	l = mustOpen(t, fsys, "/p", cfg)
	sameRecords(t, l, m.want(clean, expire))
}

// A crash at any step of a compaction (every file operation it makes,
// each under a few random crash outcomes) leaves a log that opens with
// every key's newest record, nothing that was not appended, and at
// least what the compaction keeps.
func TestCompactCrash(t *testing.T) {
	fsys := NewMemFS()
	cfg := Config{SegmentBytes: 2048, IndexIntervalBytes: 256}
	l := mustOpen(t, fsys, "/p", cfg)
	rng := rand.New(rand.NewPCG(3, 4))
	var m compactModel
	m.appendKeyed(t, l, rng, 300, 10, 0)
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	clean := sealedEnd(l)
	var crashes []*MemFS
	fsys.SetFault(func(op, name string) error {
		switch op {
		case "create", "write", "sync", "rename", "syncdir", "remove":
			if testing.Short() && rng.IntN(4) > 0 {
				break // a quarter of them under the race detector
			}
			crashes = append(crashes, fsys.CrashCloneInFault(rng, rng.IntN(2) == 0))
		}
		return nil // reads change nothing a crash could find
	})
	if _, err := l.Compact(CompactOptions{NowMs: 1 << 40, DeleteRetentionMs: -1}); err != nil {
		t.Fatal(err)
	}
	fsys.SetFault(nil)
	crashes = append(crashes, fsys.CrashClone(rng, false))
	all := map[eddy.Offset]eddy.FetchedRecord{}
	for _, r := range m.recs {
		all[r.Offset] = r
	}
	least := m.want(clean, 0)
	for i, c := range crashes {
		l, err := Open(c, "/p", cfg)
		if err != nil {
			t.Fatalf("crash %d of %d: %v", i, len(crashes), err)
		}
		got := readAllRecords(t, l)
		have := map[eddy.Offset]bool{}
		for _, g := range got {
			w, ok := all[g.Offset]
			if !ok || !bytes.Equal(g.Key, w.Key) || !bytes.Equal(g.Value, w.Value) {
				t.Fatalf("crash %d: offset %d holds %q=%q, never appended there", i, g.Offset, g.Key, g.Value)
			}
			have[g.Offset] = true
		}
		for _, w := range least {
			if !have[w.Offset] {
				t.Fatalf("crash %d: offset %d (key %q) lost", i, w.Offset, w.Key)
			}
		}
		l.Close()
	}
	t.Logf("%d crash points", len(crashes))
	if len(crashes) < 20 && !testing.Short() {
		t.Fatalf("only %d crash points", len(crashes))
	}
}

// A key map that fills compacts the segments it covered wholly, and
// the next compaction goes on from there.
func TestCompactMapFull(t *testing.T) {
	fsys := NewMemFS()
	cfg := Config{SegmentBytes: 64 << 10}
	l := mustOpen(t, fsys, "/p", cfg)
	rng := rand.New(rand.NewPCG(5, 6))
	var m compactModel
	m.appendKeyed(t, l, rng, 1500, 1200, 1000) // 1,200 keys of 1 KB: over 1 MiB of map
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	res, err := l.Compact(CompactOptions{NowMs: 1 << 40, DeleteRetentionMs: -1, MaxKeyBytes: 1})
	if err != nil {
		t.Fatal(err)
	}
	if !res.MapFull || res.CleanEnd == 0 || res.CleanEnd >= sealedEnd(l) {
		t.Fatalf("compaction %+v with the sealed segments ending at %d", res, sealedEnd(l))
	}
	// What it dropped is superseded within what it mapped.
	got := readAllRecords(t, l)
	newest := map[string]int64{}
	for _, r := range m.recs {
		if r.Key != nil {
			newest[string(r.Key)] = int64(r.Offset)
		}
	}
	have := map[int64]bool{}
	for _, g := range got {
		have[int64(g.Offset)] = true
	}
	for k, off := range newest {
		if !have[off] {
			t.Fatalf("key %.8q lost its newest record (offset %d)", k, off)
		}
	}
	if dirty, sealed := l.DirtyBytes(); dirty == 0 || dirty == sealed {
		t.Fatalf("after a partial compaction %d of %d sealed bytes dirty", dirty, sealed)
	}
}

// Compaction beside appends, syncs, writebacks, retention and readers
// (run under the race detector by make race): readers always find whole
// batches, and every key's newest record stays.
func TestCompactConcurrent(t *testing.T) {
	fsys := NewMemFS()
	l := mustOpen(t, fsys, "/p", Config{SegmentBytes: 2048, IndexIntervalBytes: 256})
	rng := rand.New(rand.NewPCG(7, 8))
	var m compactModel
	done := make(chan struct{})
	errs := make(chan error, 3)
	loop := func(fn func() error) {
		go func() {
			for {
				select {
				case <-done:
					errs <- nil
					return
				default:
				}
				if err := fn(); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	loop(func() error {
		_, err := l.Compact(CompactOptions{NowMs: 1 << 40, DeleteRetentionMs: -1})
		return err
	})
	loop(l.Writeback)
	loop(func() error {
		start, end := l.Offsets()
		for off := start; off < end; {
			rr, err := l.Read(off, 512)
			if eddy.ErrorCode(err) == eddy.CodeOffsetOutOfRange {
				return nil // retention moved the start meanwhile
			}
			if err != nil {
				return err
			}
			next := off
			if err := batch.Split(rr.Batches, func(h batch.Header, b []byte) error {
				next = h.LastOffset() + 1
				_, err := batch.Decode(nil, b)
				return err
			}); err != nil {
				return err
			}
			if next <= off {
				return fmt.Errorf("read at %d: no progress", off)
			}
			off = next
		}
		return nil
	})
	for i := range 60 {
		m.appendKeyed(t, l, rng, 10, 15, 0)
		if err := l.Sync(); err != nil {
			t.Fatal(err)
		}
		if i == 40 {
			l.DeleteBefore(int64(len(m.recs) / 4))
		}
	}
	close(done)
	for range 3 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	newest := map[string]eddy.FetchedRecord{}
	for _, r := range m.recs {
		if r.Key != nil {
			newest[string(r.Key)] = r
		}
	}
	have := map[eddy.Offset]eddy.FetchedRecord{}
	for _, r := range readAllRecords(t, l) {
		have[r.Offset] = r
	}
	start, _ := l.Offsets()
	for k, w := range newest {
		if int64(w.Offset) < start {
			continue // retention's
		}
		if g, ok := have[w.Offset]; !ok || !bytes.Equal(g.Value, w.Value) {
			t.Fatalf("key %s: its newest record (offset %d) is gone", k, w.Offset)
		}
	}
}
