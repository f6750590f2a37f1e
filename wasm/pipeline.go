package wasm

import (
	"context"
	"fmt"
	"github.com/eddy-broker/eddy/internal/promtext"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/eddy-broker/eddy"
)

// The pipeline is the one entry point every ingress path (HTTP now, MQTT
// and Kafka later) calls to run a topic's transform on a batch before it
// is partitioned and proposed. It owns one Engine (wazero Runtime) per
// tenant, the tenant's compiled modules by content hash, and per topic a
// pool of instances and a circuit breaker.

// Failure policies (the binding's on_error).
const (
	PolicyReject     = "reject"
	PolicyDeadLetter = "dead-letter"
	PolicyPass       = "pass"
)

// Headers added to a dead-lettered record (after its own headers).
const (
	HeaderDLQReason    = "eddy.dlq.reason"
	HeaderDLQKind      = "eddy.dlq.kind"
	HeaderDLQTopic     = "eddy.dlq.topic"
	HeaderDLQTransform = "eddy.dlq.transform"
)

// Binding is what the pipeline needs to run a topic's transform.
type Binding struct {
	Tenant  string
	Topic   string // within the tenant
	Module  string
	Version int
	SHA256  string
	// Load reads the module's binary; it is called only to compile it.
	Load    func() ([]byte, error)
	Config  []byte
	OnError string
	// MemoryBytes is the tenant's transform memory quota; 0: the default.
	MemoryBytes int64
	// CPUMillisPerSec is the tenant's transform CPU quota (see share).
	CPUMillisPerSec int64
}

// PipelineConfig configures a Pipeline. Zero values mean the defaults.
type PipelineConfig struct {
	// CacheDir holds compiled modules across restarts; empty: memory only.
	CacheDir string
	// Limits: the deadline per batch, the module size limit, and the
	// memory limit of one instance when the tenant has no quota.
	Limits Limits
	// BreakerThreshold consecutive failed batches open a topic's breaker.
	// Default 5.
	BreakerThreshold int
	// BreakerCooldown is how long the breaker stays open before one batch
	// probes the module again. Default 10s.
	BreakerCooldown time.Duration
	// MaxInstances bounds a tenant's live instances on this node when it
	// has no transform memory quota. Default 4 x GOMAXPROCS.
	MaxInstances int
	// IdleTimeout: an instance unused this long is closed (its memory
	// freed); the next batch starts a new one. Default 2m.
	IdleTimeout time.Duration
	// MaxRunning bounds the batches running in transforms at once, over
	// all tenants. Default GOMAXPROCS: more would only time-slice the
	// CPUs, and a batch's deadline is wall-clock, so batches wait for a
	// slot before their deadline starts rather than share a CPU under it.
	MaxRunning int
	// MaxRunningPerTenant bounds one tenant's share of them. Default
	// MaxRunning/2, at least 1.
	MaxRunningPerTenant int
	// MaxCompiledBytes bounds the binaries of the modules compiled on this
	// node at once, over all tenants (compiled code takes about three
	// times as much memory). Only modules a topic runs stay compiled; one
	// that would go over is refused (transform_out_of_memory). Default
	// 64 MiB.
	MaxCompiledBytes int64
	// MaxCompiledBytesPerTenant bounds one tenant's share of them, so
	// that a tenant running large modules on many topics leaves room for
	// the others' (it used to take all of it, and every other tenant's
	// transform was refused). Default MaxCompiledBytes/2.
	MaxCompiledBytesPerTenant int64
	Metrics                   *metrics.Set
	Logger                    *slog.Logger
}

// Pipeline runs transforms. It is safe for concurrent use.
type Pipeline struct {
	cfg      PipelineConfig
	compiled atomic.Int64  // bytes of the modules compiled now
	running  chan struct{} // a slot per batch running
	stop     chan struct{} // closed by Close: ends the reaper
	mu       sync.Mutex
	tenants  map[string]*tenantRT
	closed   bool
}

// NewPipeline creates a pipeline; it starts no runtime until a transform
// runs.
func NewPipeline(cfg PipelineConfig) *Pipeline {
	cfg.Limits.setDefaults()
	if cfg.BreakerThreshold <= 0 {
		cfg.BreakerThreshold = 5
	}
	if cfg.BreakerCooldown <= 0 {
		cfg.BreakerCooldown = 10 * time.Second
	}
	if cfg.MaxInstances <= 0 {
		cfg.MaxInstances = 4 * runtime.GOMAXPROCS(0)
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 2 * time.Minute
	}
	if cfg.MaxRunning <= 0 {
		cfg.MaxRunning = runtime.GOMAXPROCS(0)
	}
	if cfg.MaxCompiledBytes <= 0 {
		cfg.MaxCompiledBytes = 64 << 20
	}
	if cfg.MaxCompiledBytesPerTenant <= 0 {
		cfg.MaxCompiledBytesPerTenant = cfg.MaxCompiledBytes / 2
	}
	if cfg.MaxRunningPerTenant <= 0 {
		cfg.MaxRunningPerTenant = max(1, cfg.MaxRunning/2)
	}
	if cfg.Metrics == nil {
		cfg.Metrics = metrics.NewSet()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	p := &Pipeline{cfg: cfg, tenants: map[string]*tenantRT{}, running: make(chan struct{}, cfg.MaxRunning), stop: make(chan struct{})}
	go p.reapLoop()
	return p
}

// Close releases every runtime. Calls after Close fail.
func (p *Pipeline) Close() {
	p.mu.Lock()
	ts := p.tenants
	if !p.closed {
		close(p.stop)
	}
	p.tenants, p.closed = map[string]*tenantRT{}, true
	p.mu.Unlock()
	for _, t := range ts {
		t.retire()
	}
}

// Outcome is what to append after a transform ran.
type Outcome struct {
	// Records go to the topic; Src[i] is the input index Records[i] came
	// from (to keep an explicit partition the producer chose).
	Records []eddy.Record
	Src     []int
	// DeadLetter holds the originals, with the reason in headers, for the
	// binding's dead-letter topic.
	DeadLetter []eddy.Record
	// Failure is the transform's error when the policy absorbed it.
	Failure error
	// Policy is the policy that was applied, "" when the module succeeded.
	Policy string
}

// Apply runs the binding's module on recs and applies its failure policy.
// It returns an *eddy.Error (code naming the failure) under reject.
func (p *Pipeline) Apply(ctx context.Context, b *Binding, recs []eddy.Record) (*Outcome, error) {
	t, err := p.tenant(ctx, b.Tenant, b.MemoryBytes)
	if err != nil {
		return nil, err
	}
	defer t.done()
	r, err := t.runner(ctx, b)
	if err != nil {
		return p.fail(nil, b, recs, err)
	}
	if wait, ok := r.breaker.allow(time.Now()); !ok {
		if b.OnError == PolicyReject {
			r.policyRecords(b.OnError, len(recs))
			return nil, &eddy.Error{Code: eddy.CodeTransformCircuitOpen, RetryAfterMs: max(wait.Milliseconds(), 1),
				Message: fmt.Sprintf("transform %s on topic %s failed %d batches in a row; its circuit breaker is open for %s more (last error: %s)",
					b.Module, b.Topic, p.cfg.BreakerThreshold, wait.Round(time.Millisecond), r.breaker.lastError())}
		}
		return p.fail(r, b, recs, errCircuitOpen)
	}
	start := time.Now()
	out, src, err := r.run(ctx, recs, b.CPUMillisPerSec)
	r.batchSecs.UpdateDuration(start)
	if e, ok := err.(*eddy.Error); ok && e.Code == eddy.CodeQuotaExceeded {
		// The tenant's own CPU budget: not the module's failure.
		r.set.GetOrCreateCounter(r.labels("eddy_transform_cpu_budget_refusals_total")).Inc()
		return nil, err
	}
	if err != nil {
		if ctx.Err() == nil { // the producer giving up is not the module's fault
			r.breaker.failure(time.Now(), err, p.cfg.BreakerThreshold, p.cfg.BreakerCooldown)
		} else {
			r.breaker.abort()
		}
		r.errors(err).Inc()
		return p.fail(r, b, recs, err)
	}
	r.breaker.success()
	r.in.Add(len(recs))
	r.out.Add(len(out))
	r.dropped.Add(dropped(len(recs), src))
	return &Outcome{Records: out, Src: src}, nil
}

// Validate compiles a module for the tenant (filling the compilation
// cache) and instantiates it once, so an upload is refused with the reason
// when the module is not usable. It returns the compile time.
func (p *Pipeline) Validate(ctx context.Context, tenant, name string, memoryBytes int64, sha string, bin []byte) (time.Duration, error) {
	t, err := p.tenant(ctx, tenant, memoryBytes)
	if err != nil {
		return 0, err
	}
	defer t.done()
	m, err := t.module(ctx, sha, func() ([]byte, error) { return bin, nil }, name)
	if err != nil {
		return 0, err
	}
	defer t.release(m)
	in, err := m.Instantiate(ctx, nil)
	if err != nil {
		return m.CompileTime, err
	}
	in.Close()
	return m.CompileTime, nil
}

// TestResult is a dry run's outcome.
type TestResult struct {
	Version  int
	Records  []eddy.Record
	Src      []int
	Err      error
	Stderr   string
	Duration time.Duration
}

// Test runs recs through a fresh instance of the module (never a pooled
// one) and appends nothing. A module failure is in the result, not the
// error.
func (p *Pipeline) Test(ctx context.Context, b *Binding, recs []eddy.Record) (*TestResult, error) {
	t, err := p.tenant(ctx, b.Tenant, b.MemoryBytes)
	if err != nil {
		return nil, err
	}
	defer t.done()
	m, err := t.module(ctx, b.SHA256, b.Load, b.Module)
	if err != nil {
		return &TestResult{Err: err}, nil
	}
	defer t.release(m)
	start := time.Now()
	in, err := m.Instantiate(ctx, b.Config)
	if err != nil {
		return &TestResult{Err: err, Duration: time.Since(start)}, nil
	}
	defer in.Close()
	out, src, err := in.ProcessIndexed(ctx, recs, true)
	return &TestResult{Records: out, Src: src, Err: err, Stderr: in.Stderr(), Duration: time.Since(start)}, nil
}

// Status reports a topic's transform on this node; nil when it has not run
// here since the binding last changed.
func (p *Pipeline) Status(tenant, topic string) *eddy.TransformStatus {
	p.mu.Lock()
	t := p.tenants[tenant]
	p.mu.Unlock()
	if t == nil {
		return nil
	}
	t.mu.Lock()
	r := t.runners[topic]
	t.mu.Unlock()
	if r == nil {
		return nil
	}
	st := &eddy.TransformStatus{Version: r.version, InstancesLive: r.live.Load(),
		RecordsIn: r.in.Get(), RecordsOut: r.out.Get(), RecordsDropped: r.dropped.Get(), Errors: map[string]int{}}
	st.Breaker, st.ConsecutiveFailures, st.OpenedTimes, st.LastError = r.breaker.status(time.Now())
	for _, k := range errorKinds {
		if n := p.cfg.Metrics.GetOrCreateCounter(r.labels("eddy_transform_errors_total", "kind", k)).Get(); n > 0 {
			st.Errors[k] = int(n)
		}
	}
	return st
}

var errorKinds = []string{"timeout", "trap", "memory", "bad_output", "error", "invalid_module"}

// tenant returns the tenant's runtime, creating it (or replacing it when
// its memory quota changed). The caller calls done when finished with it.
func (p *Pipeline) tenant(ctx context.Context, name string, memoryBytes int64) (*tenantRT, error) {
	pages, maxLive := p.cfg.Limits.MemoryPages, p.cfg.MaxInstances
	if memoryBytes > 0 {
		pages = uint32(min(int64(pages), memoryBytes/65536))
		if pages == 0 {
			return nil, eddy.Errorf(eddy.CodeLimitExceeded, "tenant %s's transform memory quota (%d bytes) is below one 64 KiB page", name, memoryBytes)
		}
		maxLive = int(max(1, memoryBytes/(int64(pages)*65536)))
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, eddy.Errorf(eddy.CodeUnavailable, "the node is shutting down")
	}
	t := p.tenants[name]
	if t != nil && (t.pages != pages || t.maxLive != maxLive) {
		delete(p.tenants, name)
		go t.retire()
		t = nil
	}
	if t == nil {
		limits := p.cfg.Limits
		limits.MemoryPages = pages
		e, err := NewEngine(ctx, p.cfg.CacheDir, limits)
		if err != nil {
			return nil, err
		}
		t = &tenantRT{p: p, name: name, engine: e, pages: pages, maxLive: maxLive, share: newShare(p.cfg.MaxRunningPerTenant),
			modules: map[string]*Module{}, runners: map[string]*runner{}}
		p.tenants[name] = t
	}
	t.users.Add(1)
	return t, nil
}

// tenantRT is one tenant's runtime on this node.
type tenantRT struct {
	p        *Pipeline
	name     string
	engine   *Engine
	pages    uint32
	maxLive  int
	share    *share
	live     atomic.Int64 // instances, all runners
	compiled atomic.Int64 // bytes of its modules compiled now (of the Pipeline's compiled)
	users    sync.WaitGroup
	retired  atomic.Bool

	compileMu sync.Mutex // one compile at a time per tenant
	mu        sync.Mutex
	modules   map[string]*Module // by SHA-256
	runners   map[string]*runner // by topic
}

func (t *tenantRT) done() { t.users.Done() }

// retire closes the runtime once nobody uses it.
func (t *tenantRT) retire() {
	t.retired.Store(true)
	t.users.Wait()
	t.mu.Lock()
	for _, r := range t.runners {
		r.retire()
	}
	for _, m := range t.modules {
		t.uncount(m.size)
	}
	t.mu.Unlock()
	t.engine.Close(context.Background())
}

// runner finds or (re)creates the topic's runner for the binding.
func (t *tenantRT) runner(ctx context.Context, b *Binding) (*runner, error) {
	key := b.SHA256 + "\x00" + string(b.Config)
	t.mu.Lock()
	r := t.runners[b.Topic]
	t.mu.Unlock()
	if r != nil && r.key == key {
		return r, nil
	}
	m, err := t.module(ctx, b.SHA256, b.Load, b.Module)
	if err != nil {
		return nil, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if r = t.runners[b.Topic]; r != nil && r.key == key {
		t.releaseLocked(m)
		return r, nil
	}
	nr := &runner{t: t, key: key, mod: m, config: append([]byte(nil), b.Config...), version: b.Version,
		tenant: t.name, topic: b.Topic, module: b.Module, idle: make(chan *Instance, t.maxLive)}
	nr.init(t.p.cfg.Metrics)
	if r != nil {
		r.retire()
		t.releaseLocked(r.mod)
	}
	t.runners[b.Topic] = nr
	return nr, nil
}

// evictIdle closes one idle instance of another runner, to make room.
func (t *tenantRT) evictIdle(except *runner) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, r := range t.runners {
		if r == except {
			continue
		}
		select {
		case in := <-r.idle:
			r.discard(in)
			return true
		default:
		}
	}
	return false
}

// runner runs one topic's binding: its instance pool, breaker and stats.
type runner struct {
	t       *tenantRT
	key     string
	mod     *Module
	config  []byte
	version int
	tenant  string
	topic   string
	module  string
	idle    chan *Instance
	live    atomic.Int64
	retired atomic.Bool
	breaker breaker

	in, out, dropped *metrics.Counter
	batchSecs        *metrics.PrometheusHistogram
	set              *metrics.Set
}

func (r *runner) labels(name string, kv ...string) string {
	s := fmt.Sprintf(`%s{topic="%s/%s",transform=%q`, name, r.tenant, r.topic, r.module)
	for i := 0; i+1 < len(kv); i += 2 {
		s += fmt.Sprintf(",%s=%q", kv[i], kv[i+1])
	}
	return s + "}"
}

func (r *runner) init(m *metrics.Set) {
	r.set = m
	r.in = m.GetOrCreateCounter(r.labels("eddy_transform_records_in_total"))
	r.out = m.GetOrCreateCounter(r.labels("eddy_transform_records_out_total"))
	r.dropped = m.GetOrCreateCounter(r.labels("eddy_transform_records_dropped_total"))
	r.batchSecs = m.GetOrCreatePrometheusHistogramExt(r.labels("eddy_transform_batch_duration_seconds"), promtext.DurationBuckets)
	// Gauges read whichever runner is current for the topic.
	t, topic := r.t, r.topic
	cur := func() *runner {
		p := t.p
		p.mu.Lock()
		tt := p.tenants[t.name]
		p.mu.Unlock()
		if tt == nil {
			return nil
		}
		tt.mu.Lock()
		defer tt.mu.Unlock()
		return tt.runners[topic]
	}
	m.GetOrCreateGauge(r.labels("eddy_transform_instances"), func() float64 {
		if c := cur(); c != nil {
			return float64(c.live.Load())
		}
		return 0
	})
	m.GetOrCreateGauge(r.labels("eddy_transform_breaker_open"), func() float64 {
		if c := cur(); c != nil {
			if s, _, _, _ := c.breaker.status(time.Now()); s != breakerClosed {
				return 1
			}
		}
		return 0
	})
}

func (r *runner) errors(err error) *metrics.Counter {
	kind, _ := Kind(err)
	return r.set.GetOrCreateCounter(r.labels("eddy_transform_errors_total", "kind", kind))
}

func (r *runner) policyRecords(policy string, n int) {
	r.set.GetOrCreateCounter(r.labels("eddy_transform_policy_records_total", "policy", policy)).Add(n)
}

// run processes one batch on a pooled instance, in one of the tenant's
// slots, and charges the time it held it to the tenant's CPU budget.
func (r *runner) run(ctx context.Context, recs []eddy.Record, cpuRate int64) ([]eddy.Record, []int, error) {
	sh := r.t.share
	if err := sh.acquire(ctx, r.t.p.running, r.t.name, cpuRate); err != nil {
		return nil, nil, err
	}
	start := time.Now()
	defer func() {
		sh.release(r.t.p.running)
		sh.charge(cpuRate, time.Since(start), time.Now())
	}()
	in, err := r.get(ctx)
	if err != nil {
		return nil, nil, err
	}
	out, src, err := in.ProcessIndexed(ctx, recs, true)
	r.put(in)
	return out, src, err
}

// get takes an idle instance or starts one within the tenant's bound,
// making room by closing another topic's idle instance if it must.
func (r *runner) get(ctx context.Context) (*Instance, error) {
	t := r.t
	for {
		select {
		case in := <-r.idle:
			return in, nil
		default:
		}
		if n := t.live.Add(1); n <= int64(t.maxLive) {
			in, err := r.mod.Instantiate(ctx, r.config)
			if err != nil {
				t.live.Add(-1)
				return nil, err
			}
			r.live.Add(1)
			return in, nil
		}
		t.live.Add(-1)
		if t.evictIdle(r) {
			continue
		}
		timer := time.NewTimer(5 * time.Millisecond)
		select {
		case in := <-r.idle:
			timer.Stop()
			return in, nil
		case <-ctx.Done():
			timer.Stop()
			return nil, fmt.Errorf("%w: waiting for a free instance (tenant %s runs its limit of %d): %v", ErrTimeout, t.name, t.maxLive, ctx.Err())
		case <-timer.C:
		}
	}
}

// put returns an instance to the pool, or discards it when it failed or
// the runner was replaced.
func (r *runner) put(in *Instance) {
	if in.Broken() || r.retired.Load() {
		r.discard(in)
		return
	}
	in.idleSince = time.Now()
	select {
	case r.idle <- in:
	default:
		r.discard(in)
	}
	if r.retired.Load() { // retired while we put: drain what is left
		r.drain()
	}
}

func (r *runner) discard(in *Instance) {
	in.Close()
	r.live.Add(-1)
	r.t.live.Add(-1)
}

func (r *runner) drain() {
	for {
		select {
		case in := <-r.idle:
			r.discard(in)
		default:
			return
		}
	}
}

func (r *runner) retire() {
	r.retired.Store(true)
	r.drain()
}

// breaker is a topic's circuit breaker: threshold consecutive failures
// open it for a cooldown; then one batch probes (half-open), and its
// result closes it or opens it again.
type breaker struct {
	mu        sync.Mutex
	failures  int
	openUntil time.Time
	state     string
	probing   bool
	opened    int64
	lastErr   string
}

const (
	breakerClosed   = "closed"
	breakerOpen     = "open"
	breakerHalfOpen = "half-open"
)

// allow reports whether a batch may run, else how long the breaker stays
// open.
func (b *breaker) allow(now time.Time) (time.Duration, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch b.state {
	case breakerOpen:
		if now.Before(b.openUntil) {
			return b.openUntil.Sub(now), false
		}
		b.state, b.probing = breakerHalfOpen, true
		return 0, true
	case breakerHalfOpen:
		if b.probing {
			return time.Second, false
		}
		b.probing = true
	}
	return 0, true
}

func (b *breaker) success() {
	b.mu.Lock()
	b.failures, b.state, b.probing = 0, breakerClosed, false
	b.mu.Unlock()
}

func (b *breaker) failure(now time.Time, err error, threshold int, cooldown time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.failures++
	b.lastErr = truncate(err.Error(), 512)
	if b.state == breakerHalfOpen || b.failures >= threshold {
		if b.state != breakerOpen {
			b.opened++
		}
		b.state, b.openUntil, b.probing = breakerOpen, now.Add(cooldown), false
	}
}

// abort ends a probe that proved nothing (the producer went away).
func (b *breaker) abort() {
	b.mu.Lock()
	b.probing = false
	b.mu.Unlock()
}

func (b *breaker) lastError() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.lastErr
}

func (b *breaker) status(now time.Time) (state string, failures int, opened int64, lastErr string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	state = b.state
	if state == "" {
		state = breakerClosed
	}
	if state == breakerOpen && !now.Before(b.openUntil) {
		state = breakerHalfOpen // the next batch probes
	}
	return state, b.failures, b.opened, b.lastErr
}

// reapLoop closes instances idle longer than IdleTimeout, so a quiet
// node's transform memory shrinks back.
func (p *Pipeline) reapLoop() {
	t := time.NewTicker(max(p.cfg.IdleTimeout/4, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
			p.reap(time.Now())
		}
	}
}

func (p *Pipeline) reap(now time.Time) {
	p.mu.Lock()
	ts := make([]*tenantRT, 0, len(p.tenants))
	for _, t := range p.tenants {
		ts = append(ts, t)
	}
	p.mu.Unlock()
	for _, t := range ts {
		t.mu.Lock()
		for _, r := range t.runners {
			// Take what is idle now; close the stale ones, put the rest back.
			for n := len(r.idle); n > 0; n-- {
				select {
				case in := <-r.idle:
					if now.Sub(in.idleSince) >= p.cfg.IdleTimeout {
						r.discard(in)
						continue
					}
					select {
					case r.idle <- in:
					default:
						r.discard(in)
					}
				default:
				}
			}
		}
		t.mu.Unlock()
	}
}
