package multiraft

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eddy-broker/eddy"
	"github.com/eddy-broker/eddy/internal/testutil"
)

// TestProposerKeepsOrder: clients that pipeline their requests (the next
// one starts once the last is queued, as MQTT QoS 0 does), clients that
// wait for each commit, and clients that pause between requests (so the
// partition is idle and a request is proposed from its caller at once)
// share one partition. Every record is stored once, at the offset it was
// answered with, and each client's records are in the order it sent them.
func TestProposerKeepsOrder(t *testing.T) {
	// Records of 40 KiB fill batches (256 KiB), so full batches are
	// proposed while others are in flight; small ones leave the
	// partition idle between requests.
	for _, size := range []int{16, 40 << 10} {
		t.Run(fmt.Sprintf("%dB", size), func(t *testing.T) { keepsOrder(t, size) })
	}
}

func keepsOrder(t *testing.T, size int) {
	h := mustStartHost(t, t.TempDir(), testutil.FreeAddr(t))
	defer h.Close()
	ref, meta := oneTopic(t, h, "order")
	const clients, perClient = 9, 200
	pad := string(make([]byte, size))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	answered := make([]map[int]eddy.Offset, clients)
	var wg sync.WaitGroup
	for c := 0; c < clients; c++ {
		answered[c] = map[int]eddy.Offset{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mu sync.Mutex
			var inflight sync.WaitGroup
			slots := make(chan struct{}, 4)
			for i := 0; i < perClient; i++ {
				recs := []eddy.Record{{Value: []byte(fmt.Sprintf("%d/%d/%s", c, i, pad))}}
				produce := func(ctx context.Context) {
					res, err := h.ProduceTo(ctx, meta, recs, []eddy.Partition{0})
					if err != nil {
						t.Errorf("client %d, request %d: %v", c, i, err)
						return
					}
					mu.Lock()
					answered[c][i] = res[0].BaseOffset
					mu.Unlock()
				}
				switch c % 3 {
				case 0: // pipelined: the next starts once this one is queued
					slots <- struct{}{}
					queued := make(chan struct{})
					done := sync.OnceFunc(func() { close(queued) })
					inflight.Add(1)
					go func() {
						defer func() { done(); <-slots; inflight.Done() }()
						produce(eddy.WithQueued(ctx, done))
					}()
					<-queued
				case 1: // one at a time
					produce(ctx)
				default: // one at a time, the partition often idle
					produce(ctx)
					time.Sleep(time.Duration(i%3) * time.Millisecond)
				}
			}
			inflight.Wait()
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	next := make([]int, clients)
	for off := eddy.Offset(0); off < clients*perClient; {
		res, err := h.Fetch(ctx, ref, 0, off, 1000, 16<<20, 0)
		if err != nil || len(res.Records) == 0 {
			t.Fatalf("fetch at %d: %v", off, err)
		}
		for _, r := range res.Records {
			var c, i int
			if _, err := fmt.Sscanf(string(r.Value), "%d/%d/", &c, &i); err != nil {
				t.Fatalf("offset %d: %q", r.Offset, r.Value)
			}
			if i != next[c] {
				t.Fatalf("offset %d holds client %d's record %d, want its record %d", r.Offset, c, i, next[c])
			}
			if answered[c][i] != r.Offset {
				t.Fatalf("client %d's record %d was answered offset %d, stored at %d", c, i, answered[c][i], r.Offset)
			}
			next[c]++
		}
		off = res.NextOffset
	}
	if po, _ := h.Offsets(ref, 0); po.HighWatermark != clients*perClient {
		t.Fatalf("high watermark %d, want %d", po.HighWatermark, clients*perClient)
	}
}

// TestSlotsFreedInOrder: a proposal that takes long (retried) keeps the
// slots of the ones made after it, though they settled, so no more than
// MaxInFlight-1 later proposals are made while it is retried.
func TestSlotsFreedInOrder(t *testing.T) {
	p := &proposer{slots: make(chan struct{}, 4), freed: make(chan struct{}, 1)}
	slow := make(chan struct{})
	var later sync.WaitGroup
	for i := range 4 {
		p.slots <- struct{}{}
		if i > 0 {
			later.Add(1)
		}
		p.settleInOrder(func() {
			if i == 0 {
				<-slow
				return
			}
			later.Done()
		})
	}
	later.Wait() // the three later ones settled; their slots stay taken
	time.Sleep(20 * time.Millisecond)
	if n := len(p.slots); n != 4 {
		t.Fatalf("%d slots taken while the first proposal is unsettled, want 4", n)
	}
	close(slow)
	p.inflight.Wait()
	if n := len(p.slots); n != 0 {
		t.Fatalf("%d slots taken after every proposal settled", n)
	}
}

// TestCohortRegroups: ten devices that each send their next record once
// the last is committed come back together once answered together. They
// must keep sharing proposals (regroup), not split into two cohorts that
// take turns (proposals of 1 and 9 records, two Raft rounds and fsyncs
// for every ten records, as before), nor leave one behind each time
// (proposals of 9), nor settle into halves (proposals of 5) after being
// late once.
func TestCohortRegroups(t *testing.T) {
	var proposals, records atomic.Int64
	var sizes [12]atomic.Int64 // proposals by records, the last for more than 10
	h := mustStartHostWith(t, Config{Dir: t.TempDir(), RaftAddr: testutil.FreeAddr(t), RetentionInterval: time.Hour,
		Hooks: Hooks{OnProposal: func(n, _ int, _ time.Duration) {
			proposals.Add(1)
			records.Add(int64(n))
			sizes[min(n, 11)].Add(1)
		}}})
	defer h.Close()
	_, meta := oneTopic(t, h, "cohort")
	const devices, each = 10, 200
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for range devices {
		wg.Add(1)
		go func() {
			defer wg.Done()
			recs := []eddy.Record{{Value: make([]byte, 256)}}
			for range each {
				if _, err := h.ProduceTo(ctx, meta, recs, []eddy.Partition{0}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	per := float64(records.Load()) / float64(proposals.Load())
	var bySize []int64
	for i := range sizes {
		bySize = append(bySize, sizes[i].Load())
	}
	t.Logf("%d records in %d proposals: %.1f a proposal; proposals of 0..11 records: %v", records.Load(), proposals.Load(), per, bySize)
	if per < 8 {
		t.Fatalf("%.1f records a proposal for %d devices in step, want at least 8", per, devices)
	}
}
