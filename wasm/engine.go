package wasm

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/eddy-broker/eddy"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"github.com/tetratelabs/wazero/sys"
)

// Limits bound what a tenant's transforms may use. Zero values mean the
// defaults.
type Limits struct {
	// MemoryPages caps each instance's linear memory (64 KiB pages) and is
	// runtime-wide. Default 512 (32 MiB); Go guests need at least 128.
	MemoryPages uint32
	// Deadline bounds one batch. Default 200 ms.
	Deadline time.Duration
	// MaxModuleBytes bounds an uploaded module. Default 8 MiB.
	MaxModuleBytes int
	// Shape bounds a module's structure before it is compiled.
	Shape Shape
	// CompileTimeout bounds one compilation; a module that takes longer is
	// refused. Default 60s: a backstop (Shape keeps compilation to about a
	// second on a fast core), generous for a slow gateway's core or the
	// race detector, which compile a Go guest in 10-20 s. wazero cannot
	// stop a compilation: it finishes in the background, never waited for.
	CompileTimeout time.Duration
}

func (l *Limits) setDefaults() {
	if l.MemoryPages == 0 {
		l.MemoryPages = 512
	}
	if l.Deadline <= 0 {
		l.Deadline = 200 * time.Millisecond
	}
	if l.MaxModuleBytes <= 0 {
		l.MaxModuleBytes = 8 << 20
	}
	if l.CompileTimeout <= 0 {
		l.CompileTimeout = time.Minute
	}
	l.Shape.setDefaults(l.MemoryPages)
}

// allowedImports is the WASI subset a module may import. With no preopened
// directories, no arguments and no environment, these reach no file, socket
// or secret: the fd_* calls find only an empty stdin and stdout and stderr
// (captured, bounded), and the prestat calls find nothing.
var allowedImports = map[string]bool{
	"args_get": true, "args_sizes_get": true, "environ_get": true, "environ_sizes_get": true,
	"clock_res_get": true, "clock_time_get": true, "random_get": true, "sched_yield": true,
	"poll_oneoff": true, "proc_exit": true,
	"fd_read": true, "fd_write": true, "fd_close": true, "fd_fdstat_get": true, "fd_fdstat_set_flags": true,
	"fd_prestat_get": true, "fd_prestat_dir_name": true,
}

// Errors of a transform, by kind (the failure policy and metrics use them).
var (
	ErrInvalidModule = errors.New("invalid transform module")
	ErrTimeout       = errors.New("transform exceeded its deadline")
	ErrTrap          = errors.New("transform trapped")
	ErrGuest         = errors.New("transform failed")
	ErrMemory        = errors.New("transform ran out of memory")
)

// guestStatusOOM is the status a guest returns when it cannot allocate
// (docs/transform-abi.md).
const guestStatusOOM = -3

// Engine runs one tenant's transforms: one wazero Runtime, so the memory
// limit and the compilation cache are the tenant's own.
type Engine struct {
	rt     wazero.Runtime
	limits Limits
}

// NewEngine creates a tenant's engine. cacheDir (may be empty: in memory)
// keeps compiled code across restarts.
func NewEngine(ctx context.Context, cacheDir string, limits Limits) (*Engine, error) {
	limits.setDefaults()
	cfg := wazero.NewRuntimeConfig().
		WithCloseOnContextDone(true). // without it a spinning guest can never be stopped
		WithMemoryLimitPages(limits.MemoryPages)
	if cacheDir != "" {
		cache, err := wazero.NewCompilationCacheWithDir(cacheDir)
		if err != nil {
			return nil, fmt.Errorf("transform compilation cache %s: %w", cacheDir, err)
		}
		cfg = cfg.WithCompilationCache(cache)
	}
	rt := wazero.NewRuntimeWithConfig(ctx, cfg)
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, rt); err != nil {
		rt.Close(ctx)
		return nil, err
	}
	return &Engine{rt: rt, limits: limits}, nil
}

// Close releases the runtime and every instance.
func (e *Engine) Close(ctx context.Context) error { return e.rt.Close(ctx) }

// Module is a validated, compiled transform.
type Module struct {
	e           *Engine
	cm          wazero.CompiledModule
	initialize  bool
	configure   bool
	CompileTime time.Duration
	size        int64 // the binary's, counted against MaxCompiledBytes
	users       int   // runners using it (the pipeline's tenantRT.mu)
}

// Compile validates and compiles a module. Every refusal wraps
// ErrInvalidModule and says what is wrong.
func (e *Engine) Compile(ctx context.Context, bin []byte) (*Module, error) {
	if len(bin) > e.limits.MaxModuleBytes {
		return nil, fmt.Errorf("%w: %d bytes is over the %d-byte limit", ErrInvalidModule, len(bin), e.limits.MaxModuleBytes)
	}
	if _, err := Inspect(bin, e.limits.Shape); err != nil {
		return nil, err
	}
	start := time.Now()
	cm, err := e.compile(ctx, bin)
	if err != nil {
		return nil, err
	}
	m := &Module{e: e, cm: cm, CompileTime: time.Since(start)}
	if err := m.validate(); err != nil {
		cm.Close(ctx)
		return nil, err
	}
	return m, nil
}

// compile runs wazero's compiler within CompileTimeout. wazero ignores the
// context while compiling, so a compilation over the budget is left to
// finish in the background and its result dropped: the caller (an upload,
// a produce, shutdown) never waits for it.
func (e *Engine) compile(ctx context.Context, bin []byte) (wazero.CompiledModule, error) {
	type result struct {
		cm  wazero.CompiledModule
		err error
	}
	done := make(chan result, 1)
	go func() {
		cm, err := e.rt.CompileModule(context.WithoutCancel(ctx), bin)
		done <- result{cm, err}
	}()
	t := time.NewTimer(e.limits.CompileTimeout)
	defer t.Stop()
	select {
	case r := <-done:
		if r.err != nil {
			return nil, fmt.Errorf("%w: %v", ErrInvalidModule, r.err)
		}
		return r.cm, nil
	case <-t.C:
	case <-ctx.Done():
	}
	go func() {
		if r := <-done; r.err == nil {
			r.cm.Close(context.Background())
		}
	}()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return nil, fmt.Errorf("%w: compiling took over %v", ErrInvalidModule, e.limits.CompileTimeout)
}

func (m *Module) validate() error {
	var bad []string
	for _, f := range m.cm.ImportedFunctions() {
		mod, name, _ := f.Import()
		if mod != wasi_snapshot_preview1.ModuleName || !allowedImports[name] {
			bad = append(bad, mod+"."+name)
		}
	}
	if len(m.cm.ImportedMemories()) > 0 {
		bad = append(bad, "an imported memory")
	}
	if len(bad) > 0 {
		sort.Strings(bad)
		return fmt.Errorf("%w: imports not allowed: %s (allowed: WASI clocks, random, args/environ (empty), stdout/stderr, proc_exit)",
			ErrInvalidModule, strings.Join(bad, ", "))
	}
	exports := m.cm.ExportedFunctions()
	var missing []string
	for name, sig := range map[string]string{"tx_abi_version": "() -> i32", "tx_reserve": "(i32) -> i32", "tx_process": "(i32, i32) -> i64"} {
		if _, ok := exports[name]; !ok {
			missing = append(missing, name+" "+sig)
		}
	}
	if _, ok := m.cm.ExportedMemories()["memory"]; !ok {
		missing = append(missing, "memory")
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return fmt.Errorf("%w: missing exports: %s (see docs/transform-abi.md)", ErrInvalidModule, strings.Join(missing, ", "))
	}
	_, m.initialize = exports["_initialize"]
	_, m.configure = exports["tx_configure"]
	return nil
}

// Close releases the compiled code.
func (m *Module) Close(ctx context.Context) error { return m.cm.Close(ctx) }

// Instance is one instantiated module. It is used by one goroutine at a
// time and is discarded after any failure (Broken).
type Instance struct {
	m       *Module
	mod     api.Module
	process api.Function
	reserve api.Function
	bufPtr  uint32
	bufCap  uint32
	stderr  *capped
	broken  bool
	// idleSince is when the instance was last returned to its pool.
	idleSince time.Time
}

// Instantiate starts an instance and hands it the binding's config.
func (m *Module) Instantiate(ctx context.Context, config []byte) (*Instance, error) {
	ctx, cancel := context.WithTimeout(ctx, max(m.e.limits.Deadline, time.Second))
	defer cancel()
	out := &capped{max: 4 << 10}
	cfg := wazero.NewModuleConfig().WithName("").WithStdout(out).WithStderr(out).
		WithSysWalltime().WithSysNanotime().WithRandSource(rand.Reader).WithStartFunctions()
	if m.initialize {
		cfg = cfg.WithStartFunctions("_initialize")
	}
	mod, err := m.e.rt.InstantiateModule(ctx, m.cm, cfg)
	if err != nil {
		return nil, classify(err, out)
	}
	in := &Instance{m: m, mod: mod, process: mod.ExportedFunction("tx_process"), reserve: mod.ExportedFunction("tx_reserve"), stderr: out}
	fail := func(err error) (*Instance, error) {
		mod.Close(context.Background())
		return nil, err
	}
	v, err := mod.ExportedFunction("tx_abi_version").Call(ctx)
	if err != nil {
		return fail(classify(err, out))
	}
	if int32(v[0]) != ABIVersion {
		return fail(fmt.Errorf("%w: tx_abi_version returned %d, this node speaks %d", ErrInvalidModule, int32(v[0]), ABIVersion))
	}
	if m.configure && len(config) > 0 {
		if err := in.write(ctx, config); err != nil {
			return fail(err)
		}
		r, err := mod.ExportedFunction("tx_configure").Call(ctx, uint64(len(config)))
		if err != nil {
			return fail(classify(err, out))
		}
		if int32(r[0]) != 0 {
			return fail(fmt.Errorf("%w: the module refused its config (status %d): %s", ErrGuest, int32(r[0]), out.String()))
		}
	}
	return in, nil
}

// Stderr is what the guest wrote to stdout and stderr during the last
// call (the first 4 KiB).
func (in *Instance) Stderr() string { return in.stderr.String() }

// Broken reports whether the instance failed and must not be used again.
func (in *Instance) Broken() bool { return in.broken }

// Close releases the instance.
func (in *Instance) Close() { in.mod.Close(context.Background()) }

// write places b at the start of the guest's input buffer, growing it.
func (in *Instance) write(ctx context.Context, b []byte) error {
	if uint32(len(b)) > in.bufCap || in.bufCap == 0 {
		r, err := in.reserve.Call(ctx, uint64(len(b)))
		if err != nil {
			return classify(err, in.stderr)
		}
		in.bufPtr, in.bufCap = uint32(r[0]), uint32(len(b))
	}
	if !in.mod.Memory().Write(in.bufPtr, b) {
		return fmt.Errorf("%w: tx_reserve returned %d, and %d bytes from there are outside its memory", ErrInvalidModule, in.bufPtr, len(b))
	}
	return nil
}

// Process runs one batch through the instance within the deadline and
// returns the records to append. On any error the instance is broken.
func (in *Instance) Process(ctx context.Context, recs []eddy.Record) ([]eddy.Record, error) {
	out, _, err := in.ProcessIndexed(ctx, recs, false)
	return out, err
}

// ProcessIndexed is Process that, with withSrc, also returns for each
// output record the index of the input it came from.
func (in *Instance) ProcessIndexed(ctx context.Context, recs []eddy.Record, withSrc bool) ([]eddy.Record, []int, error) {
	if in.broken {
		return nil, nil, errors.New("transform instance is broken")
	}
	var src *[]int
	if withSrc {
		src = new([]int)
	}
	out, err := in.process1(ctx, recs, src)
	if err != nil {
		in.broken = true
		return nil, nil, err
	}
	if src != nil {
		return out, *src, nil
	}
	return out, nil, nil
}

func (in *Instance) process1(ctx context.Context, recs []eddy.Record, src *[]int) ([]eddy.Record, error) {
	ctx, cancel := context.WithTimeout(ctx, in.m.e.limits.Deadline)
	defer cancel()
	in.stderr.Reset()
	batch := EncodeBatch(make([]byte, 0, EncodedSize(recs)), recs)
	if err := in.write(ctx, batch); err != nil {
		return nil, err
	}
	r, err := in.process.Call(ctx, uint64(len(recs)), uint64(len(batch)))
	if err != nil {
		return nil, classify(err, in.stderr)
	}
	res := int64(r[0])
	switch {
	case res == guestStatusOOM:
		return nil, fmt.Errorf("%w: status %d: %s", ErrMemory, res, strings.TrimSpace(in.stderr.String()))
	case res < 0:
		return nil, fmt.Errorf("%w: status %d: %s", ErrGuest, res, strings.TrimSpace(in.stderr.String()))
	case res == 0:
		return nil, nil
	}
	ptr, n := uint32(res>>32), uint32(res)
	b, ok := in.mod.Memory().Read(ptr, n)
	if !ok {
		return nil, fmt.Errorf("%w: output at %d, %d bytes, is outside the module's memory", ErrBadOutput, ptr, n)
	}
	return decodeOutput(append([]byte(nil), b...), recs, len(batch), src)
}

// classify maps a wazero error to the transform error kinds.
func classify(err error, stderr *capped) error {
	var exit *sys.ExitError
	if errors.As(err, &exit) {
		switch exit.ExitCode() {
		case sys.ExitCodeDeadlineExceeded, sys.ExitCodeContextCanceled:
			return fmt.Errorf("%w: %v", ErrTimeout, err)
		}
		return fmt.Errorf("%w: the module exited with code %d: %s", ErrGuest, exit.ExitCode(), strings.TrimSpace(stderr.String()))
	}
	msg := strings.TrimSpace(stderr.String())
	if strings.Contains(msg, "out of memory") { // the Go runtime's words before it traps
		return fmt.Errorf("%w: %v: %s", ErrMemory, err, msg)
	}
	return fmt.Errorf("%w: %v: %s", ErrTrap, err, msg)
}

// capped keeps the first max bytes written to it (the guest's stdout and
// stderr), for error messages.
type capped struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (c *capped) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if room := c.max - len(c.b); room > 0 {
		c.b = append(c.b, p[:min(len(p), room)]...)
	}
	return len(p), nil
}

func (c *capped) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return string(c.b)
}

func (c *capped) Reset() {
	c.mu.Lock()
	c.b = c.b[:0]
	c.mu.Unlock()
}
