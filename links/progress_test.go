package links

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eddy-broker/eddy"
	"github.com/eddy-broker/eddy/multiraft/catalog"
)

// TestCommitterCoalesces: 16 runners writing progress at once, against a
// controller that takes 2 ms an entry, share entries; every update is
// written once and answered.
func TestCommitterCoalesces(t *testing.T) {
	var mu sync.Mutex
	written := map[uint64]int{}
	var entries, updates atomic.Int64
	c := newCommitter(func(ctx context.Context, ups []catalog.LinkProgress) error {
		time.Sleep(2 * time.Millisecond)
		mu.Lock()
		defer mu.Unlock()
		for _, u := range ups {
			written[u.Shard]++
		}
		return nil
	}, func(n int) { entries.Add(1); updates.Add(int64(n)) })
	const runners, each = 16, 50
	var wg sync.WaitGroup
	for s := uint64(0); s < runners; s++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				if err := c.write(context.Background(), catalog.LinkProgress{Shard: s}); err != nil {
					t.Errorf("shard %d: %v", s, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	for s := uint64(0); s < runners; s++ {
		if written[s] != each {
			t.Fatalf("shard %d written %d times, want %d", s, written[s], each)
		}
	}
	if updates.Load() != runners*each || entries.Load() > runners*each/4 {
		t.Fatalf("%d updates in %d entries: want %d updates in at most %d", updates.Load(), entries.Load(), runners*each, runners*each/4)
	}
	t.Logf("%d updates in %d entries", updates.Load(), entries.Load())
}

// TestCommitterConflictAlone: an entry is all or none, so one runner's
// stale update must not fail the others written with it: after a
// conflict, each update is proposed alone.
func TestCommitterConflictAlone(t *testing.T) {
	stale := uint64(3)
	gate := make(chan struct{})
	c := newCommitter(func(ctx context.Context, ups []catalog.LinkProgress) error {
		<-gate
		for _, u := range ups {
			if u.Shard == stale {
				return eddy.Errorf(eddy.CodeConflict, "progress of shard %d changed underneath", u.Shard)
			}
		}
		return nil
	}, func(int) {})
	errs := make([]error, 6)
	var wg sync.WaitGroup
	for s := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[s] = c.write(context.Background(), catalog.LinkProgress{Shard: uint64(s)})
		}()
	}
	time.Sleep(50 * time.Millisecond) // all six wait behind the first entry
	close(gate)
	wg.Wait()
	for s, err := range errs {
		if want := uint64(s) == stale; (eddy.ErrorCode(err) == eddy.CodeConflict) != want {
			t.Errorf("shard %d: %v (a conflict: %v)", s, err, want)
		}
	}
}

// TestCommitterGivesUp: a writer whose context ends is answered at once,
// and an update no one waits for any more is not written.
func TestCommitterGivesUp(t *testing.T) {
	gate := make(chan struct{})
	var written atomic.Int64
	c := newCommitter(func(ctx context.Context, ups []catalog.LinkProgress) error {
		<-gate
		written.Add(int64(len(ups)))
		return nil
	}, func(int) {})
	go c.write(context.Background(), catalog.LinkProgress{Shard: 1}) // holds the committer
	time.Sleep(20 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := c.write(ctx, catalog.LinkProgress{Shard: 2}); eddy.ErrorCode(err) != eddy.CodeTimeout || time.Since(start) > 2*time.Second {
		t.Fatalf("a writer that gave up: %v after %s", err, time.Since(start))
	}
	close(gate)
	time.Sleep(50 * time.Millisecond)
	if n := written.Load(); n != 1 {
		t.Fatalf("%d updates written, want only the one still waited for", n)
	}
}
