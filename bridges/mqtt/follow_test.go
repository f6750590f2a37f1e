package mqtt

import (
	"context"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/eddy-broker/eddy"
)

// The handover between the tail and a receiver's own reader, under the
// race detector: a receiver with a small window that drains at a random
// pace gets every record of a partition exactly once and in order, while
// records are appended and the tail offers them live. (The real path,
// with mochi and a node, is e2e/mqtt_delivery_test.go.)
func TestFollowerHandsOverWithoutLossOrDuplicates(t *testing.T) {
	const n = 20_000
	log := newMemLog()
	l := New(Config{Addr: "127.0.0.1:0", Log: log}, &recorder{recs: map[eddy.TopicRef]int{}, gate: make(chan struct{})})
	r := &slowReceiver{window: make(chan struct{}, 4)}
	f := newFollower(l, "t", r)
	f.beforeHandback = func() { // widen the window in which the tail may offer a record the reader did not read
		if rand.IntN(4) == 0 {
			time.Sleep(200 * time.Microsecond)
		}
	}
	ref := eddy.TopicRef{Tenant: "t", Name: "a"}
	key := partKey(ref.Name, 0)
	f.place(ref, 0, 0, 0)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { // the producer
		defer wg.Done()
		for i := 0; i < n; i++ { // in bursts, so the receiver falls behind and catches up again
			log.append(eddy.Record{Value: []byte("v")})
			if i%200 == 0 {
				time.Sleep(2 * time.Millisecond)
			}
		}
	}()
	go func() { // the tail, as fanout.tail
		defer wg.Done()
		off := int64(0)
		for off < n && ctx.Err() == nil {
			recs, next, _ := log.Read(ctx, ref, 0, off, tailReadBytes, 50*time.Millisecond)
			for i := range recs {
				if rand.IntN(200) == 0 { // at times the tail lags the receiver's reader
					time.Sleep(time.Duration(rand.IntN(2000)) * time.Microsecond)
				}
				f.offer(ref, 0, key, &recs[i], 1)
			}
			f.passed(key, next)
			off = next
		}
	}()
	go func() { // the device, acknowledging at its own pace
		defer wg.Done()
		for r.count() < n && ctx.Err() == nil {
			select {
			case <-r.window:
				if rand.IntN(400) == 0 { // a hiccup now and then
					time.Sleep(time.Millisecond)
				}
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()
	deadline := time.Now().Add(30 * time.Second)
	for r.count() < n && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	f.stop()
	wg.Wait()
	got := r.offsets()
	if len(got) != n {
		t.Fatalf("delivered %d of %d", len(got), n)
	}
	for i, off := range got {
		if off != int64(i) {
			t.Fatalf("delivery %d is offset %d: lost, duplicated or out of order", i, off)
		}
	}
	if r.handbacks < 5 {
		t.Fatalf("%d handbacks from a reader to the tail (%d waits, %d refusals): the handover was not exercised", r.handbacks, r.waited, r.refused)
	}
	t.Logf("%d handbacks, %d waits, %d refusals", r.handbacks, r.waited, r.refused)
}

// slowReceiver takes a record if its window has room.
type slowReceiver struct {
	window  chan struct{}
	mu      sync.Mutex
	got     []int64
	waited  int
	refused int
	// handbacks counts live deliveries (the tail's, wait false) that
	// follow one by a reader (wait true).
	handbacks int
	lastWait  bool
}

func (r *slowReceiver) qos(string) int { return 1 }

func (r *slowReceiver) send(ctx context.Context, _ eddy.TopicRef, _ string, rec *eddy.FetchedRecord, _ int, wait bool) bool {
	select {
	case r.window <- struct{}{}:
	default:
		if !wait {
			r.mu.Lock()
			r.refused++
			r.mu.Unlock()
			return false
		}
		r.mu.Lock()
		r.waited++
		r.mu.Unlock()
		select {
		case r.window <- struct{}{}:
		case <-ctx.Done():
			return false
		}
	}
	r.mu.Lock()
	r.got = append(r.got, int64(rec.Offset))
	if r.lastWait && !wait {
		r.handbacks++
	}
	r.lastWait = wait
	r.mu.Unlock()
	return true
}

func (r *slowReceiver) passed(string, int64) {}

func (r *slowReceiver) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.got)
}

func (r *slowReceiver) offsets() []int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]int64(nil), r.got...)
}

// memLog is one partition in memory, with Read's long poll.
type memLog struct {
	mu   sync.Mutex
	recs []eddy.FetchedRecord
	more chan struct{} // closed at an append
}

func newMemLog() *memLog { return &memLog{more: make(chan struct{})} }

func (m *memLog) append(r eddy.Record) {
	m.mu.Lock()
	m.recs = append(m.recs, eddy.FetchedRecord{Offset: eddy.Offset(len(m.recs)), Record: r})
	close(m.more)
	m.more = make(chan struct{})
	m.mu.Unlock()
}

func (m *memLog) Topics(eddy.TenantID) map[eddy.TopicName]int32 {
	return map[eddy.TopicName]int32{"a": 1}
}

func (m *memLog) PartitionIncarnation(eddy.TopicRef, eddy.Partition) (uint64, error) { return 1, nil }

func (m *memLog) Bounds(eddy.TopicRef, eddy.Partition) (int64, int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return 0, int64(len(m.recs)), nil
}

// BatchBytesAt: each record is a batch of its own here, and small.
func (m *memLog) BatchBytesAt(eddy.TopicRef, eddy.Partition, int64) int { return 0 }

func (m *memLog) Read(ctx context.Context, _ eddy.TopicRef, _ eddy.Partition, offset int64, _ int, wait time.Duration) ([]eddy.FetchedRecord, int64, error) {
	m.mu.Lock()
	if offset >= int64(len(m.recs)) && wait > 0 {
		more := m.more
		m.mu.Unlock()
		select {
		case <-more:
		case <-time.After(wait):
		case <-ctx.Done():
		}
		m.mu.Lock()
	}
	defer m.mu.Unlock()
	end := min(int64(len(m.recs)), offset+100)
	if offset >= end {
		return nil, offset, nil
	}
	return append([]eddy.FetchedRecord(nil), m.recs[offset:end]...), end, nil
}
