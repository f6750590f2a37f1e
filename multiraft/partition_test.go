package multiraft

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/eddy-broker/eddy/batch"

	"github.com/eddy-broker/eddy"
	"github.com/eddy-broker/eddy/multiraft/segment"
	sm "github.com/lni/dragonboat/v4/statemachine"
)

func appendCmd(recs []eddy.Record, pid int64, seq int32) []byte {
	return batch.Append(encodeAppend(nil, false), recs, batch.Options{ProducerID: pid, BaseSequence: seq})
}

func openSM(tb testing.TB, fs segment.FS, dir string) *partitionSM {
	tb.Helper()
	p := &partitionSM{fs: fs, dir: dir, cfg: segment.Config{SegmentBytes: 2048}}
	if _, err := p.Open(nil); err != nil {
		tb.Fatal(err)
	}
	return p
}

func recsN(rng *rand.Rand, n int) []eddy.Record {
	out := make([]eddy.Record, n)
	for i := range out {
		out[i] = eddy.Record{Key: []byte{byte(rng.IntN(9))}, Value: bytes.Repeat([]byte{byte(i)}, rng.IntN(200))}
	}
	return out
}

func TestPartitionSMUpdateDedupAndRefusals(t *testing.T) {
	p := openSM(t, segment.NewMemFS(), "/p")
	rng := rand.New(rand.NewPCG(1, 2))
	a := appendCmd(recsN(rng, 3), 7, 0)
	b := appendCmd(recsN(rng, 2), 7, 3)
	ents := []sm.Entry{
		{Index: 3, Cmd: a},
		{Index: 5, Cmd: a}, // a retried proposal
		{Index: 6, Cmd: []byte{99}},
		{Index: 8, Cmd: b},
		{Index: 9, Cmd: encodeDeleteBefore(2)},
	}
	out, err := p.Update(ents)
	if err != nil {
		t.Fatal(err)
	}
	if out[0].Result.Value != 0 || out[1].Result.Value != 0 || out[3].Result.Value != 3 {
		t.Fatalf("results %+v", out)
	}
	if out[2].Result.Value != resultRefused || eddy.ErrorCode(resultError(out[2].Result)) != eddy.CodeInvalid {
		t.Fatalf("unknown command result %+v", out[2].Result)
	}
	if out[4].Result.Value != 2 {
		t.Fatalf("delete-before result %d", out[4].Result.Value)
	}
	lg, _ := p.log()
	if s, e := lg.Offsets(); s != 2 || e != 5 || lg.Applied() != 9 {
		t.Fatalf("offsets [%d,%d) applied %d", s, e, lg.Applied())
	}
}

// Snapshot, stream and recover, called as dragonboat calls them, including
// Updates that run while SaveSnapshot streams.
func TestPartitionSMSnapshot(t *testing.T) {
	fs := segment.NewMemFS()
	src := openSM(t, fs, "/src")
	rng := rand.New(rand.NewPCG(3, 4))
	idx := uint64(0)
	seq := int32(0)
	update := func(p *partitionSM, n int) {
		var ents []sm.Entry
		for i := 0; i < n; i++ {
			idx += 2
			k := 1 + rng.IntN(4)
			ents = append(ents, sm.Entry{Index: idx, Cmd: appendCmd(recsN(rng, k), 1, seq)})
			seq += int32(k)
		}
		if _, err := p.Update(ents); err != nil {
			t.Fatal(err)
		}
	}
	update(src, 50)
	if err := src.Sync(); err != nil {
		t.Fatal(err)
	}
	update(src, 20)
	ctx, err := src.PrepareSnapshot()
	if err != nil {
		t.Fatal(err)
	}
	snapIndex := idx
	var buf bytes.Buffer
	done := make(chan error, 1)
	go func() { done <- src.SaveSnapshot(ctx, &buf, make(chan struct{})) }()
	update(src, 30) // concurrent with SaveSnapshot
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	dst := openSM(t, segment.NewMemFS(), "/dst")
	if err := dst.RecoverFromSnapshot(bytes.NewReader(buf.Bytes()), make(chan struct{})); err != nil {
		t.Fatal(err)
	}
	dl, _ := dst.log()
	if dl.Applied() != snapIndex {
		t.Fatalf("recovered applied %d, want %d", dl.Applied(), snapIndex)
	}
	// Re-apply what came after the snapshot, as dragonboat would from the
	// Raft log; the replicas must then hold identical records.
	sl, _ := src.log()
	_, end := sl.Offsets()
	_, dend := dl.Offsets()
	if dend >= end {
		t.Fatalf("snapshot holds %d records, source %d: it should predate the later updates", dend, end)
	}
	for off := int64(0); off < dend; {
		a, err := sl.Read(off, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		b, err := dl.Read(off, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		n := min(len(a.Batches), len(b.Batches))
		if n == 0 || !bytes.Equal(a.Batches[:n], b.Batches[:n]) {
			t.Fatalf("replicas differ at offset %d", off)
		}
		var last int64
		batch.Split(b.Batches, func(h batch.Header, _ []byte) error { last = h.LastOffset(); return nil })
		off = last + 1
	}
	// A stopped node aborts a stream.
	ctx2, _ := src.PrepareSnapshot()
	stop := make(chan struct{})
	close(stop)
	if err := src.SaveSnapshot(ctx2, &bytes.Buffer{}, stop); err == nil {
		t.Fatal("snapshot streamed after stop")
	}
}
