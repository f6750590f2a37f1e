package mqtt

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eddy-broker/eddy"
)

// laggingLog is a memLog read through replicas, as a node without one of
// its own reads a partition: the replica that answers may hold fewer
// records than the one read before (visible, -1 for all), and retention
// may have removed the first ones (start). Offsets outside are refused as
// Eddy's segments refuse them. It notes every offset asked.
type laggingLog struct {
	*memLog
	visible atomic.Int64
	start   atomic.Int64

	mu    sync.Mutex
	asked []int64
}

func (g *laggingLog) Bounds(ref eddy.TopicRef, p eddy.Partition) (int64, int64, error) {
	_, end, _ := g.memLog.Bounds(ref, p)
	if v := g.visible.Load(); v >= 0 {
		end = min(end, v)
	}
	return g.start.Load(), end, nil
}

func (g *laggingLog) Read(ctx context.Context, ref eddy.TopicRef, p eddy.Partition, offset int64, maxBytes int, wait time.Duration) ([]eddy.FetchedRecord, int64, error) {
	g.mu.Lock()
	g.asked = append(g.asked, offset)
	g.mu.Unlock()
	recs, next, err := g.memLog.Read(ctx, ref, p, offset, maxBytes, wait)
	if start, end, _ := g.Bounds(ref, p); offset < start || offset > end {
		return nil, 0, eddy.Errorf(eddy.CodeOffsetOutOfRange, "offset %d is outside [%d, %d]", offset, start, end)
	}
	return recs, next, err
}

func (g *laggingLog) offsets() []int64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.asked)
}

// TestTailLaggingReplica: a partition's tail that meets a replica behind
// the one it read before waits for it at the same offset (it went back
// to the log start, and every subscriber on the node got the whole log
// again); one that meets retention goes on from the new log start.
func TestTailLaggingReplica(t *testing.T) {
	lg := &laggingLog{memLog: newMemLog()}
	lg.visible.Store(-1)
	for range 10 {
		lg.append(eddy.Record{Value: []byte("v")})
	}
	l := New(Config{Addr: "127.0.0.1:0", Log: lg}, &recorder{recs: map[eddy.TopicRef]int{}, gate: make(chan struct{})})
	f := newFanout(l, lg)
	defer f.close()
	ref := eddy.TopicRef{Tenant: "t", Name: "a"}
	f.changed() // as a first subscriber does
	f.wg.Add(1)
	go f.tail(f.base, &feed{}, ref, 0, false)
	waitAsked := func(what string, cond func([]int64) bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); !cond(lg.offsets()); {
			if time.Now().After(deadline) {
				t.Fatalf("%s: the tail asked %v", what, lg.offsets())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	count := func(off int64) func([]int64) bool {
		return func(asked []int64) bool {
			n := 0
			for _, a := range asked {
				if a == off {
					n++
				}
			}
			return n >= 3
		}
	}

	waitAsked("the tail at the end", func(asked []int64) bool { return slices.Contains(asked, 10) })
	// The replica read now holds 5 records: offset 10 is refused, again
	// and again, until the replica catches up.
	lg.visible.Store(5)
	lg.append(eddy.Record{Value: []byte("v")})
	waitAsked("offset 10 asked again of the lagging replica", count(10))
	lg.visible.Store(-1)
	waitAsked("past record 10 once caught up", func(asked []int64) bool { return slices.Contains(asked, 11) })
	for _, a := range lg.offsets() {
		if a < 10 {
			t.Fatalf("the tail went back to offset %d (asked %v): the node's subscribers get the log again", a, lg.offsets())
		}
	}

	// Retention removes up to 15: the tail goes on from there.
	lg.start.Store(15)
	for range 10 {
		lg.append(eddy.Record{Value: []byte("v")})
	}
	waitAsked("from the new log start", func(asked []int64) bool { return slices.Contains(asked, 15) })
	for _, a := range lg.offsets() {
		if a > 11 && a < 15 {
			t.Fatalf("the tail asked %d, removed by retention (asked %v)", a, lg.offsets())
		}
	}
}
