package readslots

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestBoundPerTenant: 20 readers of one tenant run at most 2 at once, a
// second tenant's reader is not held behind them, and every reader runs.
func TestBoundPerTenant(t *testing.T) {
	var waits atomic.Int32
	s := New(2, func() { waits.Add(1) })
	var running, most, done atomic.Int32
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			release, err := s.Acquire(context.Background(), "mallory")
			if err != nil {
				t.Error(err)
				return
			}
			n := running.Add(1)
			for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
			}
			time.Sleep(2 * time.Millisecond)
			running.Add(-1)
			done.Add(1)
			release()
			release() // once only
		}()
	}
	time.Sleep(5 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	release, err := s.Acquire(ctx, "alpha")
	if err != nil {
		t.Fatalf("another tenant waited behind mallory's reads: %v", err)
	}
	release()
	wg.Wait()
	if most.Load() != 2 || done.Load() != 20 || waits.Load() < 10 {
		t.Fatalf("at most %d at once (want 2), %d of 20 ran, %d waited", most.Load(), done.Load(), waits.Load())
	}
	if s.Waiting() != 0 || len(s.tenants) != 0 {
		t.Fatalf("left behind: %d waiting, %d tenants", s.Waiting(), len(s.tenants))
	}
}

// TestGiveUp: a reader whose context ends while it waits gets its error,
// takes nothing, and the slot goes to the next in line.
func TestGiveUp(t *testing.T) {
	s := New(1, nil)
	first, _ := s.Acquire(context.Background(), "t")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
	defer cancel()
	if _, err := s.Acquire(ctx, "t"); err == nil {
		t.Fatal("a reader got a slot none was free for")
	}
	got := make(chan func())
	go func() {
		r, err := s.Acquire(context.Background(), "t")
		if err != nil {
			t.Error(err)
		}
		got <- r
	}()
	time.Sleep(5 * time.Millisecond)
	if s.Waiting() != 1 {
		t.Fatalf("%d waiting, want 1", s.Waiting())
	}
	first()
	(<-got)()
	if len(s.tenants) != 0 {
		t.Fatal("the tenant's slots were not given back")
	}
	var none *Slots
	r, err := none.Acquire(context.Background(), "t")
	if err != nil {
		t.Fatal(err)
	}
	r()
}
