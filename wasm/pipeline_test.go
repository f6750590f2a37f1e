package wasm

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eddy-broker/eddy"
)

func binding(guest, topic, policy, config string) *Binding {
	sum := sha256.Sum256(guests[guest])
	return &Binding{Tenant: "acme", Topic: topic, Module: guest, Version: 1, SHA256: hex.EncodeToString(sum[:]),
		Load: func() ([]byte, error) { return guests[guest], nil }, Config: []byte(config), OnError: policy}
}

func newPipeline(t *testing.T, cfg PipelineConfig) *Pipeline {
	t.Helper()
	if cfg.CacheDir == "" {
		cfg.CacheDir = cacheDir
	}
	p := NewPipeline(cfg)
	t.Cleanup(p.Close)
	return p
}

func TestPipelineRunsAndKeepsSources(t *testing.T) {
	p := newPipeline(t, PipelineConfig{})
	out, err := p.Apply(context.Background(), binding("enrich", "sensors", PolicyReject, `{"site":"edge-7"}`), records(10))
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Records) != 10 || len(out.Src) != 10 || out.Policy != "" {
		t.Fatalf("got %d records, %d sources, policy %q", len(out.Records), len(out.Src), out.Policy)
	}
	for i, r := range out.Records {
		if out.Src[i] != i || !strings.HasSuffix(string(r.Value), `"site":"edge-7"}`) {
			t.Fatalf("record %d: src %d value %s", i, out.Src[i], r.Value)
		}
	}
	st := p.Status("acme", "sensors")
	if st == nil || st.RecordsIn != 10 || st.RecordsOut != 10 || st.InstancesLive != 1 || st.Breaker != breakerClosed {
		t.Fatalf("status %+v", st)
	}
}

func TestPipelinePolicies(t *testing.T) {
	if testing.Short() {
		t.Skip("single-goroutine; runs in make unit (wazero is too slow under -race -short)")
	}
	p := newPipeline(t, PipelineConfig{Limits: Limits{Deadline: 300 * time.Millisecond}})
	recs := records(3)
	recs[1].Headers = []eddy.Header{{Key: "h", Value: []byte("v")}}

	_, err := p.Apply(context.Background(), binding("panic", "a", PolicyReject, ""), recs)
	if eddy.ErrorCode(err) != eddy.CodeTransformTrap || !strings.Contains(err.Error(), "nothing was appended") {
		t.Fatalf("reject: %v", err)
	}
	start := time.Now()
	_, err = p.Apply(context.Background(), binding("loop", "b", PolicyReject, ""), recs)
	if eddy.ErrorCode(err) != eddy.CodeTransformTimeout || time.Since(start) > 2*time.Second {
		t.Fatalf("loop: %v after %s", err, time.Since(start))
	}
	out, err := p.Apply(context.Background(), binding("panic", "c", PolicyPass, ""), recs)
	if err != nil || len(out.Records) != 3 || out.Policy != PolicyPass || out.Failure == nil {
		t.Fatalf("pass: %+v %v", out, err)
	}
	out, err = p.Apply(context.Background(), binding("panic", "d", PolicyDeadLetter, ""), recs)
	if err != nil || len(out.Records) != 0 || len(out.DeadLetter) != 3 {
		t.Fatalf("dead-letter: %+v %v", out, err)
	}
	h := out.DeadLetter[1].Headers
	if len(h) != 5 || h[0].Key != "h" || h[1].Key != HeaderDLQReason || string(h[2].Value) != "trap" || string(h[3].Value) != "d" || string(h[4].Value) != "panic@1" {
		t.Fatalf("dead-letter headers %+v", h)
	}
	if len(recs[1].Headers) != 1 {
		t.Fatal("dead-lettering changed the producer's records")
	}
	// The rest meet a long deadline: on a busy machine the bomb took up to
	// 1.5 s to reach its memory limit (the guest's runtime collects as it
	// grows), and a short one stopped it first.
	p = newPipeline(t, PipelineConfig{Limits: Limits{Deadline: 20 * time.Second}})
	for _, tc := range []struct {
		guest string
		code  eddy.Code
	}{{"bomb", eddy.CodeTransformMemory}, {"badptr", eddy.CodeTransformBadOutput}, {"flood", eddy.CodeTransformBadOutput}} {
		if _, err := p.Apply(context.Background(), binding(tc.guest, tc.guest, PolicyReject, ""), recs); eddy.ErrorCode(err) != tc.code {
			t.Errorf("%s: want %s, got %v", tc.guest, tc.code, err)
		}
	}
}

func TestPipelineCircuitBreaker(t *testing.T) {
	p := newPipeline(t, PipelineConfig{BreakerThreshold: 3, BreakerCooldown: 300 * time.Millisecond})
	b := binding("panic", "s", PolicyReject, "")
	for i := 0; i < 3; i++ {
		if _, err := p.Apply(context.Background(), b, records(1)); eddy.ErrorCode(err) != eddy.CodeTransformTrap {
			t.Fatalf("batch %d: %v", i, err)
		}
	}
	_, err := p.Apply(context.Background(), b, records(1))
	var e *eddy.Error
	if !errors.As(err, &e) || e.Code != eddy.CodeTransformCircuitOpen || e.RetryAfterMs <= 0 {
		t.Fatalf("open breaker: %v", err)
	}
	if st := p.Status("acme", "s"); st.Breaker != breakerOpen || st.OpenedTimes != 1 || st.Errors["trap"] != 3 {
		t.Fatalf("status %+v", st)
	}
	// While open, dead-letter still takes the records, without running the module.
	dl := *b
	dl.OnError = PolicyDeadLetter
	out, err := p.Apply(context.Background(), &dl, records(2))
	if err != nil || len(out.DeadLetter) != 2 || string(out.DeadLetter[0].Headers[1].Value) != "circuit_open" {
		t.Fatalf("dead-letter while open: %+v %v", out, err)
	}
	time.Sleep(350 * time.Millisecond)
	// Half-open: the probe fails and the breaker opens again.
	if _, err := p.Apply(context.Background(), b, records(1)); eddy.ErrorCode(err) != eddy.CodeTransformTrap {
		t.Fatalf("probe: %v", err)
	}
	if st := p.Status("acme", "s"); st.Breaker != breakerOpen || st.OpenedTimes != 2 {
		t.Fatalf("after probe %+v", st)
	}
	// A fixed module (a new binding) starts closed.
	if _, err := p.Apply(context.Background(), binding("keep", "s", PolicyReject, ""), records(1)); err != nil {
		t.Fatal(err)
	}
}

// A tenant's memory quota bounds its instances: with room for one, two
// topics take turns, and concurrent batches wait for the instance.
func TestPipelineTenantMemoryBound(t *testing.T) {
	// A long deadline: this is about the bound, and -race is slow.
	p := newPipeline(t, PipelineConfig{Limits: Limits{Deadline: 10 * time.Second}})
	small := binding("keep", "x", PolicyReject, "")
	small.MemoryBytes = 1 << 20 // 16 pages: below what a Go guest declares
	if _, err := p.Validate(context.Background(), "acme", "keep", small.MemoryBytes, small.SHA256, guests["keep"]); !errors.Is(err, ErrInvalidModule) {
		t.Fatalf("a module over the tenant's memory: %v", err)
	}
	one := []*Binding{binding("keep", "x", PolicyReject, ""), binding("enrich", "y", PolicyReject, `{"site":"s"}`)}
	for _, b := range one {
		b.MemoryBytes = 32 << 20 // 512 pages: one instance
		// Compile first: under -race compiling takes longer than a batch may wait.
		if _, err := p.Validate(context.Background(), b.Tenant, b.Module, b.MemoryBytes, b.SHA256, guests[b.Module]); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := 0; i < 40; i++ {
		wg.Add(1)
		go func(b *Binding) {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			if _, err := p.Apply(ctx, b, records(8)); err != nil {
				errs <- err
			}
		}(one[i%2])
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	x, y := p.Status("acme", "x"), p.Status("acme", "y")
	if x.InstancesLive+y.InstancesLive > 1 || x.RecordsIn != 160 || y.RecordsIn != 160 {
		t.Fatalf("x %+v y %+v", x, y)
	}
}

func TestPipelineDryRun(t *testing.T) {
	if testing.Short() {
		t.Skip("single-goroutine; runs in make unit (wazero is too slow under -race -short)")
	}
	p := newPipeline(t, PipelineConfig{})
	res, err := p.Test(context.Background(), binding("panic", "t", PolicyReject, ""), records(1))
	if err != nil || !errors.Is(res.Err, ErrTrap) || !strings.Contains(res.Stderr, "assignment to entry in nil map") {
		t.Fatalf("%+v %v", res, err)
	}
	if p.Status("acme", "t") != nil {
		t.Fatal("a dry run created a runner")
	}
}

// Idle instances are closed after IdleTimeout; the next batch starts one.
func TestPipelineReapsIdleInstances(t *testing.T) {
	p := newPipeline(t, PipelineConfig{IdleTimeout: 200 * time.Millisecond})
	b := binding("keep", "idle", PolicyReject, "")
	if _, err := p.Apply(context.Background(), b, records(2)); err != nil {
		t.Fatal(err)
	}
	if st := p.Status("acme", "idle"); st.InstancesLive != 1 {
		t.Fatalf("live %d", st.InstancesLive)
	}
	deadline := time.Now().Add(5 * time.Second)
	for p.Status("acme", "idle").InstancesLive != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the idle instance was not closed")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := p.Apply(context.Background(), b, records(2)); err != nil {
		t.Fatal(err)
	}
	if st := p.Status("acme", "idle"); st.InstancesLive != 1 || st.RecordsIn != 4 {
		t.Fatalf("after the reap: %+v", st)
	}
}
