package deadline

import (
	"sync"
	"testing"
	"time"
)

// Every context handed out ends no sooner than D after it was asked for,
// and at most D plus a tick after.
func TestBounds(t *testing.T) {
	s := New(200 * time.Millisecond) // a tick of 2 ms
	for range 50 {
		asked := time.Now()
		ctx := s.Context()
		dl, ok := ctx.Deadline()
		if !ok {
			t.Fatal("no deadline")
		}
		if dl.Before(asked.Add(s.d)) || dl.After(time.Now().Add(s.d+s.tick)) {
			t.Fatalf("deadline %v after asking, want %v to %v", dl.Sub(asked), s.d, s.d+s.tick)
		}
		time.Sleep(300 * time.Microsecond)
	}
}

// Callers within a tick share one context, so a tick makes at most one
// per racing caller; a context ends by itself at its deadline.
func TestSharedWithinATick(t *testing.T) {
	s := New(time.Second) // a tick of 10 ms
	const callers, calls = 4, 2000
	var mu sync.Mutex
	seen := map[any]bool{}
	start := time.Now()
	var wg sync.WaitGroup
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range calls {
				ctx := s.Context()
				mu.Lock()
				seen[ctx] = true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	ticks := int(time.Since(start)/s.tick) + 1
	if len(seen) > ticks*callers {
		t.Fatalf("%d contexts for %d calls over %d ticks", len(seen), callers*calls, ticks)
	}
	time.Sleep(s.tick + time.Millisecond)
	if seen[s.Context()] {
		t.Fatal("a context outlived its tick")
	}
	short := New(20 * time.Millisecond).Context()
	select {
	case <-short.Done():
	case <-time.After(2 * time.Second):
		t.Fatal("the context did not end at its deadline")
	}
}
