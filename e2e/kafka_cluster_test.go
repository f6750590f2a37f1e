package e2e

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
)

// kgoClient is a franz-go client of the cluster's Kafka listeners, as the
// default tenant.
func kgoClient(t *testing.T, procs []*proc, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	var seeds []string
	for _, p := range procs {
		seeds = append(seeds, p.kafkaAddr)
	}
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(seeds...),
		kgo.SASL(plain.Auth{User: "default", Pass: procs[0].token}.AsMechanism())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// TestKafkaIdempotentLeaderKill: franz-go produces 100,000 records,
// idempotent with acks=all, across 6 partitions of an RF 3 topic on three
// nodes, and the node leading partition 0 is killed -9 midway. Every
// acknowledged record is read back exactly once, and each partition's
// records are in the order they were produced.
func TestKafkaIdempotentLeaderKill(t *testing.T) {
	procs := newCluster(t, 3)
	if code, err := procs[0].do("POST", "/v1/topics", "application/json", []byte(`{"name":"idem","partitions":6,"replication_factor":3}`), nil); err != nil || code != 201 {
		t.Fatalf("create: %d %v", code, err)
	}
	const total = 100_000
	cl := kgoClient(t, procs, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordDeliveryTimeout(90*time.Second))
	var acked sync.Map // value -> true
	var nAcked, nFailed atomic.Int64
	var failures sync.Map
	victim := leaderOf(t, procs, "idem", 0)
	var killed atomic.Bool
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	for i := range total {
		p := int32(i % 6)
		v := fmt.Sprintf("%d-%06d", p, i/6)
		cl.Produce(ctx, &kgo.Record{Topic: "idem", Partition: p, Value: []byte(v)}, func(r *kgo.Record, err error) {
			if err != nil {
				nFailed.Add(1)
				failures.Store(err.Error(), true)
				return
			}
			acked.Store(v, true)
			if nAcked.Add(1) == total/3 && killed.CompareAndSwap(false, true) {
				procs[victim-1].kill()
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatalf("flush: %v", err)
	}
	if !killed.Load() {
		t.Fatal("the leader was never killed")
	}
	failures.Range(func(k, _ any) bool { t.Logf("produce failure: %s", k); return true })
	t.Logf("%d acknowledged, %d failed; node %d killed after %d", nAcked.Load(), nFailed.Load(), victim, total/3)
	if nAcked.Load() < total*9/10 {
		t.Fatalf("only %d of %d acknowledged", nAcked.Load(), total)
	}

	var live []*proc
	for _, p := range procs {
		if p.alive() {
			live = append(live, p)
		}
	}
	rd := kgoClient(t, live, kgo.ConsumeTopics("idem"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	seen := map[string]bool{}
	last := map[int32]int{}
	read := 0
	deadline := time.Now().Add(60 * time.Second)
	for read < int(nAcked.Load()+nFailed.Load()) && time.Now().Before(deadline) {
		pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
		fs := rd.PollFetches(pctx)
		pcancel()
		fs.EachRecord(func(r *kgo.Record) {
			v := string(r.Value)
			if seen[v] {
				t.Fatalf("%s read twice (partition %d, offset %d)", v, r.Partition, r.Offset)
			}
			seen[v] = true
			read++
			head, seq, _ := strings.Cut(v, "-")
			n, _ := strconv.Atoi(seq)
			if head != strconv.Itoa(int(r.Partition)) {
				t.Fatalf("%s in partition %d", v, r.Partition)
			}
			if prev, ok := last[r.Partition]; ok && n <= prev {
				t.Fatalf("partition %d: %s after sequence %d", r.Partition, v, prev)
			}
			last[r.Partition] = n
		})
		if fs.Empty() && read >= int(nAcked.Load()) {
			break
		}
	}
	missing := 0
	acked.Range(func(k, _ any) bool {
		if !seen[k.(string)] {
			missing++
		}
		return true
	})
	if missing > 0 {
		t.Fatalf("%d acknowledged records not read back (read %d)", missing, read)
	}
	t.Logf("read back %d records, every acknowledged one once, in order", read)
}
