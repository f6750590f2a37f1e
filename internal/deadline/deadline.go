// Package deadline hands out contexts that end a set time from now,
// shared by the callers that ask within the same tick. A hot path that
// bounds each wait (a publish waiting for its commit) so pays for one
// context and one runtime timer a tick, not one of each a call: at tens
// of thousands of waits a second, context.WithTimeout and its cancel were
// 4% of an MQTT listener's CPU.
package deadline

import (
	"context"
	"sync/atomic"
	"time"
)

// Shared gives contexts that end after at least D and at most D plus a
// tick (a hundredth of D, from 1 ms to 100 ms). A context is never
// cancelled before its deadline, so its user must not need an early
// cancel: it is for bounding waits, not for stopping work. The zero value
// is not usable; make one with New.
type Shared struct {
	d, tick time.Duration
	cur     atomic.Pointer[issue]
}

// issue is the context handed out until until.
type issue struct {
	ctx    context.Context
	cancel context.CancelFunc // called by the context's own timer; kept for vet
	until  time.Time
}

// New returns contexts ending d from when they are asked for.
func New(d time.Duration) *Shared {
	return &Shared{d: d, tick: min(max(d/100, time.Millisecond), 100*time.Millisecond)}
}

// Context returns a context whose deadline is between D and D plus a
// tick from now. Safe for concurrent use.
func (s *Shared) Context() context.Context {
	now := time.Now()
	if c := s.cur.Load(); c != nil && now.Before(c.until) {
		return c.ctx
	}
	ctx, cancel := context.WithDeadline(context.Background(), now.Add(s.d+s.tick))
	s.cur.Store(&issue{ctx: ctx, cancel: cancel, until: now.Add(s.tick)}) // racing callers: the last one stays
	return ctx
}
