package wasm

import (
	"context"
	"fmt"

	"github.com/eddy-broker/eddy/internal/promtext"
)

// A tenant's runtime compiles the modules its topics run, once each, and
// lends them to the topics' runners; a module nobody runs is closed.
// Their binaries are bounded node-wide (MaxCompiledBytes) and per tenant
// (MaxCompiledBytesPerTenant).

// module compiles (or finds) a module by hash and borrows it: the caller
// gives it back with release (a runner, when it is retired).
func (t *tenantRT) module(ctx context.Context, sha string, load func() ([]byte, error), name string) (*Module, error) {
	if m := t.borrow(sha); m != nil {
		return m, nil
	}
	t.compileMu.Lock() // one compile at a time: the second caller of a module finds it
	defer t.compileMu.Unlock()
	if m := t.borrow(sha); m != nil {
		return m, nil
	}
	bin, err := load()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidModule, err)
	}
	size := int64(len(bin))
	if err := t.count(size); err != nil {
		return nil, err
	}
	m, err := t.engine.Compile(ctx, bin)
	if err != nil {
		t.uncount(size)
		return nil, err
	}
	m.size, m.users = size, 1
	if name != "" {
		t.p.cfg.Metrics.GetOrCreatePrometheusHistogramExt(fmt.Sprintf(`eddy_transform_compile_seconds{tenant=%q,transform=%q}`, t.name, name), promtext.DurationBuckets).Update(m.CompileTime.Seconds())
	}
	t.mu.Lock()
	t.modules[sha] = m
	t.mu.Unlock()
	return m, nil
}

// borrow lends the compiled module of sha, nil if none is.
func (t *tenantRT) borrow(sha string) *Module {
	t.mu.Lock()
	defer t.mu.Unlock()
	m := t.modules[sha]
	if m != nil {
		m.users++
	}
	return m
}

// count takes size bytes of binaries to compile, within the tenant's
// share and the node's bound, or refuses them.
func (t *tenantRT) count(size int64) error {
	if n := t.compiled.Add(size); n > t.p.cfg.MaxCompiledBytesPerTenant {
		t.compiled.Add(-size)
		return fmt.Errorf("%w: tenant %s's compiled transforms would take %d bytes of binaries, over its share of the node's (%d of max_compiled_bytes %d)",
			ErrMemory, t.name, n, t.p.cfg.MaxCompiledBytesPerTenant, t.p.cfg.MaxCompiledBytes)
	}
	if n := t.p.compiled.Add(size); n > t.p.cfg.MaxCompiledBytes {
		t.p.compiled.Add(-size)
		t.compiled.Add(-size)
		return fmt.Errorf("%w: the node's compiled transforms would take %d bytes of binaries, over its max_compiled_bytes of %d", ErrMemory, n, t.p.cfg.MaxCompiledBytes)
	}
	return nil
}

// uncount gives back what count took.
func (t *tenantRT) uncount(size int64) {
	t.compiled.Add(-size)
	t.p.compiled.Add(-size)
}

// release gives back a module that module lent, and closes it when
// nobody uses it: only modules a topic runs stay compiled (an upload's
// check or a dry run compiles one for the moment; the compilation cache on
// disk makes the next compile of it quick).
func (t *tenantRT) release(m *Module) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.releaseLocked(m)
}

func (t *tenantRT) releaseLocked(m *Module) {
	if m.users--; m.users > 0 {
		return
	}
	for sha, cm := range t.modules {
		if cm == m {
			delete(t.modules, sha)
			t.uncount(m.size)
			m.Close(context.Background())
			return
		}
	}
}
