package multiraft

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eddy-broker/eddy"
	"github.com/eddy-broker/eddy/internal/testutil"
	"github.com/eddy-broker/eddy/multiraft/catalog"
	"github.com/eddy-broker/eddy/tenants"
)

// TestTenantShares: a tenant's commands past its slots wait, another
// tenant's do not, a wait past its context is refused, and a tenant's
// share is forgotten once nothing of it is held or waiting.
func TestTenantShares(t *testing.T) {
	s := tenantShares{limit: 2, by: map[eddy.TenantID]*tenantShare{}}
	ctx := context.Background()
	var held []func()
	for range 2 {
		release, waited, err := s.acquire(ctx, "flood")
		if err != nil || waited {
			t.Fatalf("within its slots: waited %v, %v", waited, err)
		}
		held = append(held, release)
	}
	if release, waited, err := s.acquire(ctx, "victim"); err != nil || waited {
		t.Fatalf("another tenant: waited %v, %v", waited, err)
	} else {
		release()
	}
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, waited, err := s.acquire(short, "flood"); err == nil || !waited {
		t.Fatalf("past its slots: waited %v, %v", waited, err)
	}
	got := make(chan bool)
	go func() {
		release, waited, err := s.acquire(ctx, "flood")
		if err == nil {
			release()
		}
		got <- waited && err == nil
	}()
	select {
	case <-got:
		t.Fatal("a third command ran with two in flight")
	case <-time.After(50 * time.Millisecond):
	}
	held[0]()
	if !<-got {
		t.Fatal("the waiting command did not get the freed slot")
	}
	held[1]()
	if len(s.by) != 0 {
		t.Fatalf("shares kept after use: %v", s.by)
	}
}

// TestControllerShare: one tenant's clients committing at once, more
// than its slots, wait their turn (the hook counts them), all their
// commits land, and another tenant's commits meanwhile never wait.
func TestControllerShare(t *testing.T) {
	var waits sync.Map
	h := mustStartHostWith(t, Config{Dir: t.TempDir(), RaftAddr: testutil.FreeAddr(t), TenantControllerInFlight: 2,
		Hooks: Hooks{OnControllerWait: func(t eddy.TenantID, _ time.Duration) {
			n, _ := waits.LoadOrStore(t, new(atomic.Int64))
			n.(*atomic.Int64).Add(1)
		}}})
	defer h.Close()
	ctx := context.Background()
	for _, name := range []eddy.TenantID{"victim", "flood"} {
		if _, err := h.CreateTenant(ctx, name, tenants.Quotas{}); err != nil {
			t.Fatal(err)
		}
	}
	const clients, each = 16, 50
	var wg sync.WaitGroup
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if err := h.KafkaCommit(ctx, "flood", fmt.Sprintf("g%d", c), map[string]int64{"t/0": int64(i + 1)}, nil); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	for i := range 100 {
		if err := h.KafkaCommit(ctx, "victim", "g", map[string]int64{"t/0": int64(i + 1)}, nil); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	if n, ok := waits.Load(eddy.TenantID("flood")); !ok || n.(*atomic.Int64).Load() == 0 {
		t.Fatal("16 clients of one tenant with 2 slots never waited")
	}
	if n, ok := waits.Load(eddy.TenantID("victim")); ok {
		t.Fatalf("the other tenant's one client waited %d times", n.(*atomic.Int64).Load())
	}
	for c := range clients {
		g, err := h.Group("flood", fmt.Sprintf("g%d", c))
		if err != nil || g.Offsets["t/0"] != each {
			t.Fatalf("group g%d: %v %v", c, g, err)
		}
	}
}

// TestSessionCommitsGrouped: a tenant's MQTT sessions committing at once
// are recorded in far fewer controller entries than commits, each
// session's positions land, and a commit of a session that does not
// exist is refused alone.
func TestSessionCommitsGrouped(t *testing.T) {
	h := mustStartHostWith(t, Config{Dir: t.TempDir(), RaftAddr: testutil.FreeAddr(t)})
	defer h.Close()
	ctx := context.Background()
	_, meta := oneTopic(t, h, "t")
	const sessions = 200
	for i := range sessions {
		s := &catalog.MQTTSession{ExpirySec: 3600, Filters: []catalog.MQTTFilter{{Filter: "t/#", QoS: 1}}}
		if err := h.MQTTSession(ctx, meta.Tenant, fmt.Sprintf("mqtt-dev%d", i), s, map[string]int64{"t/0": 0}); err != nil {
			t.Fatal(err)
		}
	}
	before := h.CatalogVersion()
	errs := make(chan error, sessions+1)
	var wg sync.WaitGroup
	for i := range sessions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- h.SessionCommit(ctx, meta.Tenant, fmt.Sprintf("mqtt-dev%d", i), map[string]int64{"t/0": int64(i + 1)}, 3600)
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := h.SessionCommit(ctx, meta.Tenant, "mqtt-nobody", map[string]int64{"t/0": 1}, 3600); eddy.ErrorCode(err) != eddy.CodeNotFound {
			errs <- fmt.Errorf("a session that does not exist: %v", err)
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	entries := h.CatalogVersion() - before
	t.Logf("%d session commits in %d controller entries", sessions+1, entries)
	if entries > sessions/4 {
		t.Fatalf("%d session commits took %d controller entries", sessions+1, entries)
	}
	for i := range sessions {
		g, err := h.Group(meta.Tenant, fmt.Sprintf("mqtt-dev%d", i))
		if err != nil || g.Offsets["t/0"] != int64(i+1) {
			t.Fatalf("session %d: %v %v", i, g, err)
		}
	}
}
