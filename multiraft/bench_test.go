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
	"github.com/eddy-broker/eddy/batch"
	"github.com/eddy-broker/eddy/internal/testutil"
	"github.com/eddy-broker/eddy/multiraft/catalog"
	"github.com/eddy-broker/eddy/tenants"
)

// BenchmarkLoneRecord is one producer writing one 1 KiB record at a time
// to a partition of one replica, with each Raft log store: ns/op is the
// latency of one durable record through the partition's proposer
// ("proposer"), and of the same entry proposed to dragonboat directly
// ("raft": one Raft round, one sync of the log store and the apply, the
// floor the proposer adds to).
func BenchmarkLoneRecord(b *testing.B) {
	eachStore(b, func(b *testing.B, h *Host, meta *catalog.TopicMeta) {
		recs := []eddy.Record{{Value: make([]byte, 1024)}}
		ctx := context.Background()
		b.Run("proposer", func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if _, err := h.ProduceTo(ctx, meta, recs, []eddy.Partition{0}); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("raft", func(b *testing.B) {
			lp, err := h.local(meta, 0)
			if err != nil {
				b.Fatal(err)
			}
			sess := h.nh.GetNoOPSession(lp.shardID)
			cmd := batch.Append(encodeAppend(nil, false), recs, batch.Options{ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1})
			for i := 0; i < b.N; i++ {
				ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				if _, err := h.nh.SyncPropose(ctx, sess, cmd); err != nil {
					b.Fatal(err)
				}
				cancel()
			}
		})
	})
}

// BenchmarkBatches is 8 producers each writing 100 records of 1 KiB at a
// time to one partition of one replica, in process (no HTTP), with each
// Raft log store: the proposer's and the store's share of `eddy bench
// produce --batch 100 --concurrency 8`. It reports records/s.
func BenchmarkBatches(b *testing.B) {
	eachStore(b, func(b *testing.B, h *Host, meta *catalog.TopicMeta) {
		recs := make([]eddy.Record, 100)
		parts := make([]eddy.Partition, len(recs))
		for i := range recs {
			recs[i].Value = make([]byte, 1024)
		}
		ctx := context.Background()
		b.SetParallelism(4) // 8 producers on 2 cores
		start := time.Now()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := h.ProduceTo(ctx, meta, recs, parts); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N*len(recs))/time.Since(start).Seconds(), "records/s")
	})
}

// eachStore runs bench, as a sub-benchmark named after each Raft log
// store, against a host of one node using that store, with a topic of
// one partition of one replica.
func eachStore(b *testing.B, bench func(b *testing.B, h *Host, meta *catalog.TopicMeta)) {
	for _, store := range []string{"eddy", "pebble", "tan"} {
		b.Run(store, func(b *testing.B) {
			h := mustStartHostWith(b, Config{Dir: b.TempDir(), RaftAddr: testutil.FreeAddr(b), RetentionInterval: time.Hour, RaftLogStore: store})
			defer h.Close()
			_, meta := oneTopic(b, h, "bench")
			bench(b, h, meta)
		})
	}
}

// BenchmarkDevices is 10 producers each writing one 256-byte record at a
// time to one partition of one replica, in process, with Eddy's Raft log
// store: the proposer's share of 10 MQTT devices publishing QoS 1 with
// one message in flight each. It reports records/s and the p50 of a
// record's wait.
func BenchmarkDevices(b *testing.B) {
	h := mustStartHostWith(b, Config{Dir: b.TempDir(), RaftAddr: testutil.FreeAddr(b), RetentionInterval: time.Hour})
	defer h.Close()
	_, meta := oneTopic(b, h, "bench")
	const devices = 10
	ctx := context.Background()
	lat := make([][]time.Duration, devices)
	var next atomic.Int64
	start := time.Now()
	var wg sync.WaitGroup
	for d := range devices {
		wg.Add(1)
		go func() {
			defer wg.Done()
			recs := []eddy.Record{{Value: make([]byte, 256)}}
			for next.Add(1) <= int64(b.N) {
				t0 := time.Now()
				if _, err := h.ProduceTo(ctx, meta, recs, []eddy.Partition{0}); err != nil {
					b.Error(err)
					return
				}
				lat[d] = append(lat[d], time.Since(t0))
			}
		}()
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "records/s")
	all := slices.Concat(lat...)
	slices.Sort(all)
	if len(all) > 0 {
		b.ReportMetric(float64(all[len(all)/2].Microseconds()), "p50-us")
	}
}

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
