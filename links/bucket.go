package links

import (
	"context"
	"sync"
	"time"
)

// bucket caps a link's bytes per second on this node: a token bucket
// holding at most one second of tokens, taken before a batch is sent
// (resends too). A batch larger than what the bucket holds takes it to
// debt, so the average holds over any window longer than a batch. Waiters
// go by priority: while one of a better rank waits, a worse one does not
// take (alerts before bulk metrics when the uplink is short).
type bucket struct {
	rate float64 // bytes per second; 0: no cap

	mu      sync.Mutex
	tokens  float64
	last    time.Time
	waiting map[int]int // waiters by rank
}

func newBucket(rate int64) *bucket {
	return &bucket{rate: float64(rate), tokens: float64(rate), last: time.Now(), waiting: map[int]int{}}
}

// take waits until n bytes may go, or ctx ends.
func (b *bucket) take(ctx context.Context, n int, rank int) error {
	if b.rate <= 0 {
		return nil
	}
	b.mu.Lock()
	b.waiting[rank]++
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		if b.waiting[rank]--; b.waiting[rank] == 0 {
			delete(b.waiting, rank)
		}
		b.mu.Unlock()
	}()
	for {
		b.mu.Lock()
		now := time.Now()
		b.tokens = min(b.rate, b.tokens+now.Sub(b.last).Seconds()*b.rate)
		b.last = now
		first := true
		for r := range b.waiting {
			if r < rank {
				first = false
			}
		}
		var wait time.Duration
		if first && b.tokens > 0 {
			b.tokens -= float64(n)
			b.mu.Unlock()
			return nil
		}
		if b.tokens <= 0 {
			wait = time.Duration((1 - b.tokens) / b.rate * float64(time.Second))
		}
		b.mu.Unlock()
		wait = max(min(wait, 100*time.Millisecond), 5*time.Millisecond)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
}
