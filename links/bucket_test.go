package links

import (
	"context"
	"sync"
	"testing"
	"time"
)

// TestBucketPriority: while a better-ranked sender waits, a worse one does
// not take, even if it began waiting first (alerts before bulk metrics).
func TestBucketPriority(t *testing.T) {
	b := newBucket(4096)
	ctx := context.Background()
	if err := b.take(ctx, 8192, 0); err != nil { // the full second and a second of debt
		t.Fatal(err)
	}
	var mu sync.Mutex
	var order []int
	var wg sync.WaitGroup
	for _, rank := range []int{1, 1, 1, 1, 1, 1, 1, 0} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := b.take(ctx, 100, rank); err != nil {
				t.Error(err)
			}
			mu.Lock()
			order = append(order, rank)
			mu.Unlock()
		}()
		time.Sleep(20 * time.Millisecond) // the rank 1 senders wait first
	}
	wg.Wait()
	if len(order) != 8 || order[0] != 0 {
		t.Fatalf("took in order %v, want rank 0 first", order)
	}
}

// TestBucketStops: a waiter leaves when its context ends; no cap never
// waits.
func TestBucketStops(t *testing.T) {
	b := newBucket(1024)
	b.take(context.Background(), 1<<20, 0)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := b.take(ctx, 1, 0); err == nil {
		t.Fatal("took with a cancelled context from an empty bucket")
	}
	if err := newBucket(0).take(ctx, 1<<30, 0); err != nil {
		t.Fatalf("no cap: %v", err)
	}
}

// TestBackoffShared: failures while a wait runs share it; the delay
// doubles to its limit and resets on success, which ends the waits.
func TestBackoffShared(t *testing.T) {
	var b backoff
	first, wake := b.fail(time.Second)
	if again, _ := b.fail(time.Second); !again.Equal(first) {
		t.Fatalf("a second failure during the wait moved it: %v then %v", first, again)
	}
	for range 10 {
		b.until = time.Time{} // the wait is over
		b.fail(time.Second)
	}
	if b.delay != time.Second {
		t.Fatalf("delay %v after 11 failures, want the 1 s limit", b.delay)
	}
	b.reset()
	if b.delay != 0 || !b.until.IsZero() {
		t.Fatal("reset kept the delay")
	}
	select {
	case <-wake:
	default:
		t.Fatal("a success did not end the waits")
	}
}
