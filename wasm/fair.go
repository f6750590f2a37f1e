package wasm

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/eddy-broker/eddy"
)

// share is one tenant's claim on the node's transform CPU. Two bounds keep
// one tenant's slow module from starving the others (a module taking
// 170 ms a batch, within its deadline, used to take every slot and both
// CPUs: another tenant's plain topic fell 90%):
//
//   - slots: a tenant runs at most MaxRunningPerTenant batches at once
//     (default half the node's slots, at least one), so other tenants'
//     batches always find a slot;
//   - budget: a tenant's batches may hold slots for at most its
//     transform_cpu_ms_per_sec quota each second (a token bucket holding
//     one second; 0 is unlimited); past it a batch waits for the budget to
//     refill (up to a second, within its deadline), else it is refused
//     (quota_exceeded, with how long to wait) before it runs, and neither
//     the breaker nor the failure policy counts it.
type share struct {
	slots chan struct{}

	mu     sync.Mutex
	tokens float64 // milliseconds, may go negative after a long batch
	last   time.Time
	rate   int64 // milliseconds per second; 0 unlimited
}

func newShare(slots int) *share { return &share{slots: make(chan struct{}, slots)} }

// admit refuses a batch while the tenant's CPU budget is spent.
func (s *share) admit(tenant string, rate int64, now time.Time) error {
	if rate <= 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refill(rate, now)
	if s.tokens >= 0 {
		return nil
	}
	wait := time.Duration(-s.tokens / float64(rate) * float64(time.Second))
	return &eddy.Error{Code: eddy.CodeQuotaExceeded, RetryAfterMs: wait.Milliseconds() + 1,
		Message: fmt.Sprintf("tenant %s used its transform CPU budget (%d ms per second) on this node; retry after the Retry-After delay", tenant, rate)}
}

func (s *share) refill(rate int64, now time.Time) {
	if s.last.IsZero() || s.rate != rate {
		s.tokens, s.rate = float64(rate), rate
	} else {
		s.tokens = min(float64(rate), s.tokens+now.Sub(s.last).Seconds()*float64(rate))
	}
	s.last = now
}

// deficit is how long the budget needs to refill to zero (0: it has some).
func (s *share) deficit(rate int64, now time.Time) time.Duration {
	if rate <= 0 {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refill(rate, now)
	if s.tokens >= 0 {
		return 0
	}
	return time.Duration(-s.tokens / float64(rate) * float64(time.Second))
}

// charge takes what a batch used from the budget.
func (s *share) charge(rate int64, used time.Duration, now time.Time) {
	if rate <= 0 {
		return
	}
	s.mu.Lock()
	s.refill(rate, now)
	s.tokens -= float64(used) / float64(time.Millisecond)
	s.mu.Unlock()
}

// acquire takes one of the tenant's slots, checks its CPU budget (after
// the wait, so batches queued behind a long one see what it used), then
// takes one of the node's slots.
func (s *share) acquire(ctx context.Context, node chan struct{}, tenant string, rate int64) error {
	// A spent budget refills at rate: a batch that can wait for it (up to a
	// second, within its deadline) waits rather than being refused, so a
	// client that ignores Retry-After cannot make the node spend its CPU on
	// refusals; it gets its budget's worth and no more.
	if wait := s.deficit(rate, time.Now()); wait > 0 {
		if dl, ok := ctx.Deadline(); wait <= time.Second && (!ok || time.Until(dl) > wait) {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return fmt.Errorf("%w: waiting for the tenant's transform CPU budget: %v", ErrTimeout, ctx.Err())
			}
		}
	}
	select {
	case s.slots <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("%w: waiting for one of the tenant's transform slots: %v", ErrTimeout, ctx.Err())
	}
	if err := s.admit(tenant, rate, time.Now()); err != nil {
		<-s.slots
		return err
	}
	select {
	case node <- struct{}{}:
		return nil
	case <-ctx.Done():
		<-s.slots
		return fmt.Errorf("%w: waiting for a free transform slot: %v", ErrTimeout, ctx.Err())
	}
}

func (s *share) release(node chan struct{}) {
	<-node
	<-s.slots
}
