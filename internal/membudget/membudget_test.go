package membudget

import (
	"context"
	"errors"
	"testing"
	"time"
)

func acquireWithin(b *Budget, tenant string, n int64, d time.Duration) (Hold, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return b.Acquire(ctx, tenant, n)
}

// TestTenantShare: a tenant holds at most half the budget; another
// tenant still finds room; a request waits for room and gets it when
// bytes come back; one that gives up takes nothing.
func TestTenantShare(t *testing.T) {
	b := New(100)
	a1, err := acquireWithin(b, "a", 30, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	a2, err := acquireWithin(b, "a", 20, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := acquireWithin(b, "a", 1, 50*time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a tenant past half the budget: %v, want a wait that times out", err)
	}
	if _, ok := b.TryAcquire("a", 1); ok {
		t.Fatal("TryAcquire past the tenant's half went through")
	}
	b1, err := acquireWithin(b, "b", 50, time.Second)
	if err != nil {
		t.Fatalf("another tenant while the first holds its half: %v", err)
	}
	if got := b.Used(); got != 100 {
		t.Fatalf("used %d, want 100 (a refused request takes nothing)", got)
	}
	type result struct {
		h   Hold
		err error
	}
	got := make(chan result, 1)
	go func() {
		h, err := acquireWithin(b, "c", 40, 5*time.Second)
		got <- result{h, err}
	}()
	select {
	case r := <-got:
		t.Fatalf("a request with the budget full went through: %v", r.err)
	case <-time.After(50 * time.Millisecond):
	}
	b1.Release()
	r := <-got
	if r.err != nil {
		t.Fatalf("a waiting request after bytes came back: %v", r.err)
	}
	a1.Release()
	a2.Release()
	r.h.Release()
	Hold{}.Release() // holds nothing
	if got := b.Used(); got != 0 {
		t.Fatalf("used %d after everything was given back", got)
	}
	if len(b.byTenant) != 0 {
		t.Fatalf("tenants still counted: %v", b.byTenant)
	}
}

// TestManyWaiters: requests of many tenants, more than fit, all get
// through as others give back, and the budget is never over.
func TestManyWaiters(t *testing.T) {
	b := New(64)
	done := make(chan error)
	for i := range 40 {
		tenant := string(rune('a' + i%8))
		go func() {
			h, err := acquireWithin(b, tenant, 16, 10*time.Second)
			if err != nil {
				done <- err
				return
			}
			if u := b.Used(); u > 64 {
				done <- errors.New("over the budget")
				return
			}
			time.Sleep(time.Millisecond)
			h.Release()
			done <- nil
		}()
	}
	for range 40 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if got := b.Used(); got != 0 {
		t.Fatalf("used %d after everything was given back", got)
	}
}

// TestShrink: a hold shrunk to what was read gives the rest back at once,
// a waiter included; shrunk to nothing it holds nothing.
func TestShrink(t *testing.T) {
	b := New(100)
	h, err := acquireWithin(b, "a", 80, time.Second) // over its half: it held nothing
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	go func() {
		h2, err := acquireWithin(b, "b", 50, time.Second) // fits once a gives back
		if err == nil {
			h2.Release()
		}
		got <- err
	}()
	time.Sleep(20 * time.Millisecond)
	if h = h.Shrink(90); b.Used() != 80 {
		t.Fatalf("shrunk to more than it holds: %d used, want 80", b.Used())
	}
	if h = h.Shrink(60); b.Used() != 60 {
		t.Fatalf("shrunk to 60 with a waiter that does not fit yet: %d used", b.Used())
	}
	h = h.Shrink(10)
	if err := <-got; err != nil {
		t.Fatalf("a waiter for the room given back: %v", err)
	}
	if b.Used() != 10 {
		t.Fatalf("%d used after shrinking to 10", b.Used())
	}
	h = h.Shrink(0)
	h.Release() // a hold of nothing: releases nothing
	if b.Used() != 0 {
		t.Fatalf("%d used after shrinking to nothing and releasing", b.Used())
	}
}
