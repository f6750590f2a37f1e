// Package readslots bounds the reads one tenant runs at once on a node:
// reading stored batches and encoding them into an answer is CPU, and
// nothing else shared it out. One tenant's 32 connections fetching JSON
// took a 2-core node's CPU, and another tenant's producers fell from
// 200k-234k to 3.5k records/s (scripts/bench-noisy-reads.sh). With a
// tenant's reads at most a share of the node's CPUs at a time, the rest
// wait their turn, first come first served, and other tenants keep the
// other CPUs (the read-side analogue of membudget's half per tenant).
package readslots

import (
	"context"
	"sync"
)

// Slots are every tenant's read slots. The zero value is not usable; New
// makes one. A nil *Slots bounds nothing.
type Slots struct {
	per    int
	onWait func()

	mu      sync.Mutex
	tenants map[string]*tenant
}

type tenant struct {
	held    int
	waiters []chan struct{} // first come, first served; closed when handed a slot
}

// New makes slots of per reads at once for each tenant (at least 1);
// onWait, if not nil, is called each time a read has to wait.
func New(per int, onWait func()) *Slots {
	if onWait == nil {
		onWait = func() {}
	}
	return &Slots{per: max(per, 1), onWait: onWait, tenants: map[string]*tenant{}}
}

// Per is how many reads a tenant runs at once.
func (s *Slots) Per() int {
	if s == nil {
		return 0
	}
	return s.per
}

// Acquire takes one of the tenant's slots, waiting for one until ctx is
// done (then ctx's error). release gives it back, once.
func (s *Slots) Acquire(ctx context.Context, name string) (release func(), err error) {
	if s == nil {
		return func() {}, nil
	}
	s.mu.Lock()
	t := s.tenants[name]
	if t == nil {
		t = &tenant{}
		s.tenants[name] = t
	}
	if t.held < s.per {
		t.held++
		s.mu.Unlock()
		return s.releaser(name, t), nil
	}
	handed := make(chan struct{})
	t.waiters = append(t.waiters, handed)
	s.mu.Unlock()
	s.onWait()
	select {
	case <-handed:
		return s.releaser(name, t), nil
	case <-ctx.Done():
	}
	s.mu.Lock()
	for i, w := range t.waiters {
		if w == handed {
			t.waiters = append(t.waiters[:i], t.waiters[i+1:]...)
			s.mu.Unlock()
			return nil, ctx.Err()
		}
	}
	s.mu.Unlock()
	// Handed a slot as ctx ended: pass it on.
	s.releaser(name, t)()
	return nil, ctx.Err()
}

// Waiting is the reads waiting for a slot now, across tenants.
func (s *Slots) Waiting() int {
	if s == nil {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, t := range s.tenants {
		n += len(t.waiters)
	}
	return n
}

func (s *Slots) releaser(name string, t *tenant) func() {
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			if len(t.waiters) > 0 {
				close(t.waiters[0]) // the slot goes on, held as it was
				t.waiters = t.waiters[1:]
				return
			}
			if t.held--; t.held == 0 {
				delete(s.tenants, name)
			}
		})
	}
}
