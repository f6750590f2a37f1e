package multiraft

import (
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/eddy-broker/eddy/multiraft/segment"
	sm "github.com/lni/dragonboat/v4/statemachine"
)

// TestChecksumWhileRetentionMovesTheStart: a digest taken while retention
// drops segments starts again from the new log start instead of failing
// with offset_out_of_range (the rare 416 in TestClusterRetention).
func TestChecksumWhileRetentionMovesTheStart(t *testing.T) {
	p := openSM(t, segment.NewMemFS(), "/p")
	rng := rand.New(rand.NewPCG(3, 4))
	var ents []sm.Entry
	seq := int32(0)
	for i := 0; i < 600; i++ {
		recs := recsN(rng, 4)
		ents = append(ents, sm.Entry{Index: uint64(i + 1), Cmd: appendCmd(recs, 7, seq)})
		seq += int32(len(recs))
	}
	if _, err := p.Update(ents); err != nil {
		t.Fatal(err)
	}
	lg, _ := p.log()
	var wg sync.WaitGroup
	wg.Add(1)
	done := make(chan struct{})
	go func() { // retention: drop the oldest segment every millisecond
		defer wg.Done()
		defer close(done)
		for idx := uint64(601); ; idx++ {
			time.Sleep(time.Millisecond)
			segs := lg.Segments()
			if len(segs) < 3 {
				return
			}
			if _, err := p.Update([]sm.Entry{{Index: idx, Cmd: encodeDeleteBefore(segs[1].Base)}}); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	_, hw := lg.Offsets()
	digests := 0
	for running := true; running; digests++ {
		select {
		case <-done:
			running = false // and one digest more
		default:
		}
		i := digests
		c, err := logChecksum(lg, 0, 1, hw)
		if err != nil {
			t.Fatalf("digest %d: %v", i, err)
		}
		if start, _ := lg.Offsets(); c.LogStart > start || c.Upto != hw || c.Bytes == 0 {
			t.Fatalf("digest %d: %+v (log start now %d)", i, c, start)
		}
	}
	wg.Wait()
	if digests < 20 {
		t.Fatalf("only %d digests overlapped retention", digests)
	}
	// Out of range for another reason is still an error.
	if _, err := logChecksum(lg, 0, 1, hw+1); err == nil {
		t.Fatal("upto beyond the high watermark was accepted")
	}
}
