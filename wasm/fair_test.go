package wasm

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eddy-broker/eddy"
)

// TestShareBudget: a tenant's batches are refused, with how long to wait,
// once they held slots for its CPU budget, and admitted again as it refills.
func TestShareBudget(t *testing.T) {
	s := newShare(1)
	now := time.Unix(100, 0)
	if err := s.admit("acme", 200, now); err != nil {
		t.Fatal(err)
	}
	s.charge(200, 350*time.Millisecond, now) // 200 - 350 = -150 ms
	err := s.admit("acme", 200, now)
	if e := eddy.AsError(err); e.Code != eddy.CodeQuotaExceeded || e.RetryAfterMs < 700 || e.RetryAfterMs > 800 {
		t.Fatalf("over budget: %+v", e)
	}
	if err := s.admit("acme", 200, now.Add(800*time.Millisecond)); err != nil {
		t.Fatalf("refilled: %v", err)
	}
	if err := s.admit("acme", 0, now); err != nil {
		t.Fatalf("no quota: %v", err)
	}
}

// TestNoisyNeighbour: tenant noisy runs a module taking 100 ms a batch
// from four goroutines on a pipeline of two slots. Tenant quiet's batches
// still find a slot at once (noisy holds at most one), and noisy's budget
// of 200 ms a second refuses its surplus with quota_exceeded.
func TestNoisyNeighbour(t *testing.T) {
	if testing.Short() {
		t.Skip("wazero is too slow under -race -short")
	}
	p := newPipeline(t, PipelineConfig{MaxRunning: 2, Limits: Limits{Deadline: time.Second}})
	noisy := binding("slow", "a", PolicyReject, "100")
	noisy.Tenant, noisy.CPUMillisPerSec = "noisy", 200
	quiet := binding("keep", "b", PolicyReject, "")
	quiet.Tenant = "quiet"
	for _, b := range []*Binding{quiet, noisy} { // compiled, warm
		if _, err := p.Apply(context.Background(), b, records(1)); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(time.Second) // noisy's bucket full again
	stop := make(chan struct{})
	var ran, refused atomic.Int64
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				_, err := p.Apply(context.Background(), noisy, records(1))
				switch eddy.ErrorCode(err) {
				case "":
					ran.Add(1)
				case eddy.CodeQuotaExceeded:
					refused.Add(1)
					time.Sleep(10 * time.Millisecond)
				default:
					t.Error(err)
					return
				}
			}
		})
	}
	time.Sleep(300 * time.Millisecond) // noisy is busy
	var slowest time.Duration
	for i := 0; i < 20; i++ {
		start := time.Now()
		if _, err := p.Apply(context.Background(), quiet, records(1)); err != nil {
			t.Fatal(err)
		}
		slowest = max(slowest, time.Since(start))
	}
	time.Sleep(1500 * time.Millisecond)
	close(stop)
	wg.Wait()
	// Waiting for noisy to free a slot would take up to 100 ms a batch.
	if slowest >= 90*time.Millisecond {
		t.Errorf("quiet's slowest batch took %v: it waited for noisy's slots", slowest)
	}
	// About 2 s at 200 ms/s, plus the first second's bucket: at most ~7
	// batches of 100 ms, where four goroutines alone would run about 20.
	// (Batches over the budget wait for it, or are refused.)
	if n := ran.Load(); n > 8 {
		t.Errorf("noisy ran %d batches of 100 ms in about 2 s (budget 200 ms/s), %d refused", n, refused.Load())
	}
}

// TestCompiledModulesBounded: an upload's check compiles a module for the
// moment only; only modules a topic runs stay compiled, within the node's
// MaxCompiledBytes; a topic moving to another module frees the old one.
func TestCompiledModulesBounded(t *testing.T) {
	keep, enrich, flood := len(guests["keep"]), len(guests["enrich"]), len(guests["slow"])
	bound := int64(keep+max(enrich, flood)) + 1
	p := newPipeline(t, PipelineConfig{MaxCompiledBytes: bound, MaxCompiledBytesPerTenant: bound})
	for i := 0; i < 5; i++ {
		b := binding("keep", "x", PolicyReject, "")
		if _, err := p.Validate(context.Background(), "acme", "keep", 0, b.SHA256, guests["keep"]); err != nil {
			t.Fatal(err)
		}
		if n := p.compiled.Load(); n != 0 {
			t.Fatalf("after an upload's check, %d bytes stay compiled", n)
		}
	}
	apply := func(guest, topic, config string) error {
		_, err := p.Apply(context.Background(), binding(guest, topic, PolicyReject, config), records(1))
		return err
	}
	if err := apply("keep", "a", ""); err != nil {
		t.Fatal(err)
	}
	if err := apply("enrich", "b", `{"site":"s"}`); err != nil {
		t.Fatal(err)
	}
	if err := apply("slow", "c", "0"); eddy.ErrorCode(err) != eddy.CodeTransformMemory {
		t.Fatalf("a third module over MaxCompiledBytes: %v", err)
	}
	if err := apply("keep", "b", ""); err != nil { // b moves to keep: enrich is freed
		t.Fatal(err)
	}
	if n := p.compiled.Load(); n != int64(keep) {
		t.Fatalf("%d bytes compiled, want keep's %d", n, keep)
	}
	if err := apply("slow", "c", "0"); err != nil {
		t.Fatalf("after enrich was freed: %v", err)
	}
}

// TestCompiledModulesShared: one tenant's compiled modules take at most
// its share of the node's MaxCompiledBytes, so another tenant's module
// still compiles while the first runs all it may.
func TestCompiledModulesShared(t *testing.T) {
	keep, enrich := len(guests["keep"]), len(guests["enrich"])
	p := newPipeline(t, PipelineConfig{MaxCompiledBytes: 2 * int64(keep+enrich)})
	apply := func(tenant, guest, topic, config string) error {
		b := binding(guest, topic, PolicyReject, config)
		b.Tenant = tenant
		_, err := p.Apply(context.Background(), b, records(1))
		return err
	}
	if err := apply("acme", "keep", "a", ""); err != nil {
		t.Fatal(err)
	}
	if err := apply("acme", "enrich", "b", `{"site":"s"}`); err != nil {
		t.Fatal(err)
	}
	if err := apply("acme", "slow", "c", "0"); eddy.ErrorCode(err) != eddy.CodeTransformMemory || !strings.Contains(err.Error(), "share") {
		t.Fatalf("acme's third module, over its share: %v", err)
	}
	if err := apply("globex", "enrich", "x", `{"site":"s"}`); err != nil {
		t.Fatalf("globex's module while acme holds its share: %v", err)
	}
}
