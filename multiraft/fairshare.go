package multiraft

import (
	"context"
	"sync"
	"time"

	"github.com/eddy-broker/eddy"
	"github.com/eddy-broker/eddy/multiraft/catalog"
)

// The controller is one Raft group every tenant shares: topic changes,
// group joins, heartbeats and offset commits, MQTT sessions, links and
// transforms all go through its log, and it applies them one at a time.
// A tenant whose clients commit offsets as fast as they can would fill
// that log, and every other tenant's commands would wait behind its
// backlog. So each tenant has at most Config.TenantControllerInFlight
// commands in the controller from this node; its others wait here, in
// its own queue, and another tenant's command finds at most that many of
// each tenant's ahead of it. A tenant's own clients slow down (as Kafka's
// request quotas delay a client rather than refuse it); a command that
// waits past the propose timeout is refused as backpressure.
// The operator's commands and the nodes' own (membership, moves, size
// reports, expiries) are not counted: they are few, and must not queue
// behind a tenant.

// tenantShares bounds each tenant's controller commands in flight.
type tenantShares struct {
	limit int
	mu    sync.Mutex
	by    map[eddy.TenantID]*tenantShare
}

// tenantShare is one tenant's slots; users counts holders and waiters, so
// the share is dropped when the last leaves and the map holds only
// tenants with commands here.
type tenantShare struct {
	slots chan struct{}
	users int
}

// acquire takes one of tenant's slots, waiting until one is free or ctx
// ends; waited reports whether it had to wait. release gives it back.
func (s *tenantShares) acquire(ctx context.Context, tenant eddy.TenantID) (release func(), waited bool, err error) {
	s.mu.Lock()
	sh := s.by[tenant]
	if sh == nil {
		sh = &tenantShare{slots: make(chan struct{}, s.limit)}
		s.by[tenant] = sh
	}
	sh.users++
	s.mu.Unlock()
	leave := func() {
		s.mu.Lock()
		if sh.users--; sh.users == 0 {
			delete(s.by, tenant)
		}
		s.mu.Unlock()
	}
	select {
	case sh.slots <- struct{}{}:
	default:
		waited = true
		select {
		case sh.slots <- struct{}{}:
		case <-ctx.Done():
			leave()
			return nil, true, ctx.Err()
		}
	}
	return func() { <-sh.slots; leave() }, waited, nil
}

// tenantPropose proposes a command a tenant's client caused, within the
// tenant's share of the controller (see above), and waits for its result.
func (h *Host) tenantPropose(ctx context.Context, tenant eddy.TenantID, cmd *catalog.Cmd) (catalog.Result, error) {
	ctx, cancel := context.WithTimeout(ctx, h.cfg.ProposeTimeout)
	defer cancel()
	start := time.Now()
	release, waited, err := h.shares.acquire(ctx, tenant)
	if waited && h.cfg.Hooks.OnControllerWait != nil {
		h.cfg.Hooks.OnControllerWait(tenant, time.Since(start))
	}
	if err != nil {
		return catalog.Result{}, &eddy.Error{Code: eddy.CodeBackpressure, RetryAfterMs: 1000,
			Message: "the tenant's controller commands (group joins, heartbeats, offset commits, topic and session changes) queued past the propose timeout: its clients send them faster than the controller takes its share"}
	}
	defer release()
	return h.ctrlPropose(ctx, cmd)
}
