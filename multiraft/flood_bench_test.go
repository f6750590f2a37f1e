package multiraft

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eddy-broker/eddy"
	"github.com/eddy-broker/eddy/internal/testutil"
	"github.com/eddy-broker/eddy/tenants"
)

// BenchmarkControllerFlood is one tenant committing a Kafka group's
// offsets one at a time (its p50 and p99 per commit), alone ("alone") and
// while another tenant's 64 clients commit as fast as the controller takes
// them ("flooded", which also reports the flood's commits/s): the
// controller is one Raft group shared by every tenant, and a tenant's
// share of it is bounded by tenant_controller_inflight.
func BenchmarkControllerFlood(b *testing.B) {
	h := mustStartHostWith(b, Config{Dir: b.TempDir(), RaftAddr: testutil.FreeAddr(b), RetentionInterval: time.Hour})
	defer h.Close()
	ctx := context.Background()
	for _, t := range []eddy.TenantID{"victim", "flood"} {
		if _, err := h.CreateTenant(ctx, t, tenants.Quotas{}); err != nil {
			b.Fatal(err)
		}
	}
	commit := func(tenant eddy.TenantID, group string, i int) error {
		return h.KafkaCommit(ctx, tenant, group, map[string]int64{"t/0": int64(i)}, nil)
	}
	victim := func(b *testing.B) {
		lat := make([]time.Duration, 0, b.N)
		for i := 0; i < b.N; i++ {
			t0 := time.Now()
			if err := commit("victim", "g", i); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(t0))
		}
		slices.Sort(lat)
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-us")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-us")
	}
	b.Run("alone", victim)
	b.Run("flooded", func(b *testing.B) {
		var stop atomic.Bool
		var done atomic.Int64
		var wg sync.WaitGroup
		for c := range 64 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; !stop.Load(); i++ {
					if err := commit("flood", fmt.Sprintf("g%d", c), i); err != nil {
						b.Error(err)
						return
					}
					done.Add(1)
				}
			}()
		}
		time.Sleep(200 * time.Millisecond) // the flood at full rate
		start, before := time.Now(), done.Load()
		b.ResetTimer()
		victim(b)
		b.ReportMetric(float64(done.Load()-before)/time.Since(start).Seconds(), "flood-commits/s")
		stop.Store(true)
		wg.Wait()
	})
}
