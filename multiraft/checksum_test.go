package multiraft

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/eddy-broker/eddy"
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
		c, err := logChecksum(context.Background(), lg, 0, 1, hw, noRoom)
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
	if _, err := logChecksum(context.Background(), lg, 0, 1, hw+1, noRoom); err == nil {
		t.Fatal("upto beyond the high watermark was accepted")
	}
}

// noRoom is a ReadRoom that always has room.
func noRoom(int) (func(), error) { return func() {}, nil }

// TestChecksumTakesRoomPerRead: each read of a digest takes room for what
// it returns, the whole batch when that is larger than a read asks, gives
// it back before the next, and a refusal is the digest's answer.
func TestChecksumTakesRoomPerRead(t *testing.T) {
	p := openSM(t, segment.NewMemFS(), "/p")
	big := []eddy.Record{{Value: bytes.Repeat([]byte("x"), checksumRead+checksumRead/2)}}
	small := []eddy.Record{{Value: []byte("y")}}
	ents := []sm.Entry{{Index: 1, Cmd: appendCmd(small, 7, 0)}, {Index: 2, Cmd: appendCmd(big, 7, 1)}, {Index: 3, Cmd: appendCmd(small, 7, 2)}}
	if _, err := p.Update(ents); err != nil {
		t.Fatal(err)
	}
	lg, _ := p.log()
	var asked []int
	held := 0
	room := func(n int) (func(), error) {
		if held != 0 {
			t.Fatalf("room for %d taken while %d is held", n, held)
		}
		asked, held = append(asked, n), n
		return func() { held = 0 }, nil
	}
	if _, err := logChecksum(context.Background(), lg, 0, 1, 0, room); err != nil {
		t.Fatal(err)
	}
	if len(asked) < 2 || asked[0] != checksumRead || !slices.ContainsFunc(asked, func(n int) bool { return n > checksumRead+checksumRead/2 }) || held != 0 {
		t.Fatalf("room asked %v (held %d at the end): want %d a read, the big batch whole when a read starts in it", asked, held, checksumRead)
	}
	full := &eddy.Error{Code: eddy.CodeBackpressure, Message: "no room"}
	_, err := logChecksum(context.Background(), lg, 0, 1, 0, func(int) (func(), error) { return nil, full })
	if !errors.Is(err, full) {
		t.Fatalf("without room: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := logChecksum(ctx, lg, 0, 1, 0, noRoom); err == nil {
		t.Fatal("a digest went on after its context was done")
	}
}
