package multiraft

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eddy-broker/eddy"
	"github.com/eddy-broker/eddy/batch"
	"github.com/eddy-broker/eddy/internal/testutil"
	"github.com/eddy-broker/eddy/multiraft/catalog"
	"github.com/eddy-broker/eddy/multiraft/segment"
	"github.com/lni/dragonboat/v4"
)

func mustStartHost(tb testing.TB, dir, raftAddr string) *Host {
	tb.Helper()
	return mustStartHostWith(tb, Config{Dir: dir, RaftAddr: raftAddr, RetentionInterval: time.Hour})
}

func mustStartHostWith(tb testing.TB, cfg Config) *Host {
	tb.Helper()
	h, err := New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := h.Start(ctx); err != nil {
		tb.Fatal(err)
	}
	return h
}

// oneTopic creates a topic of one partition, one replica, in the default
// tenant, and waits until it can be written.
func oneTopic(tb testing.TB, h *Host, name eddy.TopicName) (eddy.TopicRef, *catalog.TopicMeta) {
	tb.Helper()
	ref := eddy.TopicRef{Tenant: eddy.DefaultTenant, Name: name}
	meta, err := h.CreateTopic(context.Background(), ref.Tenant, catalog.TopicSpec{Name: ref.Name, Partitions: 1, ReplicationFactor: 1})
	if err != nil {
		tb.Fatal(err)
	}
	waitReady(tb, h)
	return ref, meta
}

func waitReady(tb testing.TB, h *Host) {
	tb.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for h.Ready() != nil {
		if time.Now().After(deadline) {
			tb.Fatalf("not ready: %v", h.Ready())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestHostProduceFetchRestart(t *testing.T) {
	dir, addr := t.TempDir(), testutil.FreeAddr(t)
	h := mustStartHost(t, dir, addr)
	ctx := context.Background()
	ref := eddy.TopicRef{Tenant: eddy.DefaultTenant, Name: "events"}
	if _, err := h.CreateTopic(ctx, ref.Tenant, catalog.TopicSpec{Name: ref.Name, Partitions: 3, ReplicationFactor: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.CreateTopic(ctx, ref.Tenant, catalog.TopicSpec{Name: ref.Name, Partitions: 1, ReplicationFactor: 1}); eddy.ErrorCode(err) != eddy.CodeTopicExists {
		t.Fatalf("second create: %v", err)
	}
	if _, err := h.CreateTopic(ctx, ref.Tenant, catalog.TopicSpec{Name: "x", Partitions: 1, ReplicationFactor: 3}); eddy.ErrorCode(err) != eddy.CodeInvalid {
		t.Fatalf("rf 3 on one node: %v", err)
	}
	waitReady(t, h)

	// 8 writers, 50 requests each of 5 keyed records: every record must be
	// acknowledged once, and each key's records must be in order.
	const writers, requests, per = 8, 50, 5
	var wg sync.WaitGroup
	var mu sync.Mutex
	acked := map[string]ProduceResult{}
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := 0; r < requests; r++ {
				recs := make([]eddy.Record, per)
				for i := range recs {
					recs[i] = eddy.Record{Key: []byte(fmt.Sprintf("w%d", w)), Value: []byte(fmt.Sprintf("w%d-r%d-i%d", w, r, i)), Timestamp: time.Now().UnixMilli()}
				}
				res, err := h.Produce(ctx, ref, recs, nil)
				if err != nil {
					t.Errorf("produce: %v", err)
					return
				}
				mu.Lock()
				for i := range recs {
					acked[string(recs[i].Value)] = res[i]
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(acked) != writers*requests*per {
		t.Fatalf("%d acked", len(acked))
	}
	check := func(h *Host) {
		t.Helper()
		seen := map[string]bool{}
		for p := eddy.Partition(0); p < 3; p++ {
			off := eddy.Offset(0)
			lastByKey := map[string]string{}
			for {
				res, err := h.Fetch(ctx, ref, p, off, 500, 1<<20, 0)
				if err != nil {
					t.Fatal(err)
				}
				if len(res.Records) == 0 {
					break
				}
				for _, r := range res.Records {
					v := string(r.Value)
					if seen[v] {
						t.Fatalf("%s read twice", v)
					}
					seen[v] = true
					a, ok := acked[v]
					if !ok || a.Partition != p || a.BaseOffset != r.Offset {
						t.Fatalf("%s at %d/%d, acked at %+v", v, p, r.Offset, a)
					}
					if prev := lastByKey[string(r.Key)]; prev > v && len(prev) == len(v) {
						t.Fatalf("key %s out of order: %s after %s", r.Key, v, prev)
					}
					lastByKey[string(r.Key)] = v
				}
				off = res.NextOffset
			}
		}
		if len(seen) != len(acked) {
			t.Fatalf("read %d of %d acked records", len(seen), len(acked))
		}
	}
	check(h)

	// A long poll is woken by the append, not by its timeout.
	po, _ := h.Offsets(ref, 0)
	got := make(chan time.Duration, 1)
	go func() {
		start := time.Now()
		res, err := h.Fetch(ctx, ref, 0, po.HighWatermark, 10, 1<<20, 20*time.Second)
		if err != nil || len(res.Records) != 1 {
			t.Errorf("long poll: %v %v", err, res)
		}
		got <- time.Since(start)
	}()
	time.Sleep(100 * time.Millisecond)
	if _, err := h.Produce(ctx, ref, []eddy.Record{{Value: []byte("wake")}}, []eddy.Partition{0}); err != nil {
		t.Fatal(err)
	}
	if d := <-got; d > 10*time.Second {
		t.Fatalf("long poll returned after %v", d)
	}
	acked["wake"] = ProduceResult{Partition: 0, BaseOffset: po.HighWatermark}

	h.Close()
	h2 := mustStartHost(t, dir, addr)
	defer h2.Close()
	waitReady(t, h2)
	check(h2)

	// Delete removes the topic and its data.
	if err := h2.DeleteTopic(ctx, ref); err != nil {
		t.Fatal(err)
	}
	if _, err := h2.Fetch(ctx, ref, 0, 0, 1, 1, 0); eddy.ErrorCode(err) != eddy.CodeNotFound {
		t.Fatalf("fetch after delete: %v", err)
	}
}

func TestProduceValidation(t *testing.T) {
	h := mustStartHost(t, t.TempDir(), testutil.FreeAddr(t))
	defer h.Close()
	ctx := context.Background()
	ref := eddy.TopicRef{Tenant: eddy.DefaultTenant, Name: "small"}
	if _, err := h.CreateTopic(ctx, ref.Tenant, catalog.TopicSpec{Name: ref.Name, Partitions: 2, ReplicationFactor: 1,
		Config: map[string]string{catalog.ConfMaxMessageBytes: "100"}}); err != nil {
		t.Fatal(err)
	}
	waitReady(t, h)
	_, err := h.Produce(ctx, ref, []eddy.Record{{Value: []byte("ok")}, {Value: make([]byte, 101)}}, nil)
	if eddy.ErrorCode(err) != eddy.CodeRecordTooLarge {
		t.Fatalf("oversized: %v", err)
	}
	_, err = h.Produce(ctx, ref, []eddy.Record{{Value: []byte("ok")}}, []eddy.Partition{5})
	if eddy.ErrorCode(err) != eddy.CodeNotFound {
		t.Fatalf("bad partition: %v", err)
	}
	// Nothing of the refused requests was appended.
	for p := eddy.Partition(0); p < 2; p++ {
		po, _ := h.Offsets(ref, p)
		if po.HighWatermark != 0 {
			t.Fatalf("partition %d has %d records after refusals", p, po.HighWatermark)
		}
	}
	if _, err := h.Fetch(ctx, ref, 0, 5, 1, 1, 0); eddy.ErrorCode(err) != eddy.CodeOffsetOutOfRange {
		t.Fatalf("fetch past end: %v", err)
	}
	_, err = h.CreateTopic(ctx, ref.Tenant, catalog.TopicSpec{Name: "bad", Partitions: 1, ReplicationFactor: 1, Config: map[string]string{"retention.mss": "1"}})
	if eddy.ErrorCode(err) != eddy.CodeInvalid {
		t.Fatalf("unknown config: %v", err)
	}
}

// The sync policy bounds what a restart re-applies: after enough bytes, the
// partition's checkpoint is written without waiting for dragonboat's
// 10,000-entry snapshot.
func TestSyncPolicy(t *testing.T) {
	h := mustStartHostWith(t, Config{Dir: t.TempDir(), RaftAddr: testutil.FreeAddr(t), SyncBytes: 64 << 10, SyncInterval: time.Hour, RetentionInterval: time.Hour})
	defer h.Close()
	ctx := context.Background()
	ref, meta := oneTopic(t, h, "s")
	val := make([]byte, 1000)
	for i := 0; i < 100; i++ { // 100 KB, in 100 entries
		if _, err := h.Produce(ctx, ref, []eddy.Record{{Value: val}}, nil); err != nil {
			t.Fatal(err)
		}
	}
	h.mu.RLock()
	lp := h.parts[meta.Shards[0]]
	h.mu.RUnlock()
	deadline := time.Now().Add(10 * time.Second)
	for lp.sm.unsynced.Load() >= 64<<10 {
		if time.Now().After(deadline) {
			t.Fatalf("%d bytes still unsynced", lp.sm.unsynced.Load())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := os.Stat(filepath.Join(h.partitionDir(meta.Shards[0]), "checkpoint")); err != nil {
		t.Fatalf("no checkpoint written: %v", err)
	}
	// A single replica keeps only rf1Overhead entries of Raft log behind
	// its sync: the rest is what was applied since (and the odd entry of
	// no records).
	var kept dragonboat.LogRange
	deadline = time.Now().Add(10 * time.Second)
	for kept.FirstIndex <= 1 {
		if time.Now().After(deadline) {
			t.Fatalf("the Raft log was not compacted: %+v", kept)
		}
		if rs, err := h.nh.QueryRaftLog(meta.Shards[0], 1, math.MaxUint64, 1<<20); err == nil {
			r := <-rs.ResultC()
			_, kept = r.RaftLogs()
			rs.Release()
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n, since := kept.LastIndex-kept.FirstIndex, lp.sm.unsyncedEntries.Load(); n > uint64(since)+rf1Overhead+2 {
		t.Fatalf("the Raft log holds %d entries (%d to %d) where %d were applied since the sync", n, kept.FirstIndex, kept.LastIndex, since)
	}
}

// Retention runs through Raft: the leader proposes DeleteBefore from the
// topic's retention.bytes and the log start moves on the replica.
func TestRetentionBytes(t *testing.T) {
	h := mustStartHostWith(t, Config{Dir: t.TempDir(), RaftAddr: testutil.FreeAddr(t), RetentionInterval: 100 * time.Millisecond})
	defer h.Close()
	ctx := context.Background()
	ref := eddy.TopicRef{Tenant: eddy.DefaultTenant, Name: "ret"}
	if _, err := h.CreateTopic(ctx, ref.Tenant, catalog.TopicSpec{Name: ref.Name, Partitions: 1, ReplicationFactor: 1,
		Config: map[string]string{catalog.ConfSegmentBytes: "4096", catalog.ConfRetentionBytes: "16384"}}); err != nil {
		t.Fatal(err)
	}
	waitReady(t, h)
	for i := 0; i < 100; i++ {
		if _, err := h.Produce(ctx, ref, []eddy.Record{{Value: make([]byte, 500)}}, nil); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		po, err := h.Offsets(ref, 0)
		if err != nil {
			t.Fatal(err)
		}
		if po.LogStart > 0 && po.Bytes <= 16384+4096 {
			if _, err := h.Fetch(ctx, ref, 0, po.LogStart-1, 1, 1, 0); eddy.ErrorCode(err) != eddy.CodeOffsetOutOfRange {
				t.Fatalf("read below the log start: %v", err)
			}
			if res, err := h.Fetch(ctx, ref, 0, po.LogStart, 1000, 1<<20, 0); err != nil || len(res.Records) == 0 {
				t.Fatalf("read at the log start: %v", err)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("retention did not run: %+v", po)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestRetentionPoint(t *testing.T) {
	segs := []segment.SegmentInfo{
		{Base: 0, End: 10, Size: 100, MaxTimestamp: 1000},
		{Base: 10, End: 20, Size: 100, MaxTimestamp: 2000},
		{Base: 20, End: 25, Size: 50, MaxTimestamp: 3000}, // active
	}
	tests := []struct {
		name                string
		now, ms, bytes, cut int64
	}{
		{"nothing expired", 2500, 10_000, -1, 0},
		{"first expired by time", 2500, 1000, -1, 10},
		{"all sealed expired, active kept", 9000, 1000, -1, 20},
		{"over size by one segment", 0, -1, 160, 10},
		{"over size by two", 0, -1, 50, 20},
		{"no limits", 9000, -1, -1, 0},
	}
	for _, tc := range tests {
		if got := RetentionPoint(segs, tc.now, tc.ms, tc.bytes); got != tc.cut {
			t.Errorf("%s: cut %d, want %d", tc.name, got, tc.cut)
		}
	}
}

// TestReplicaRestartedInProcessKeepsSequences: a partition replica stopped
// and started again in the same process (moved away and back, or restarted
// as a voter) gets a new proposer under the same producer id. Its writes
// must be appended, not taken for retries of the earlier proposer's batches
// and acknowledged with their offsets (an acknowledged write lost: found by
// the add/remove-node e2e test).
func TestReplicaRestartedInProcessKeepsSequences(t *testing.T) {
	h := mustStartHost(t, t.TempDir(), testutil.FreeAddr(t))
	defer h.Close()
	ctx := context.Background()
	ref, meta := oneTopic(t, h, "seq")
	produce := func(v string) int64 {
		t.Helper()
		res, err := h.Produce(ctx, ref, []eddy.Record{{Value: []byte(v)}}, []eddy.Partition{0})
		if err != nil {
			t.Fatal(err)
		}
		return int64(res[0].BaseOffset)
	}
	for i := 0; i < 5; i++ {
		produce(fmt.Sprintf("before-%d", i))
	}
	shard := meta.Shards[0]
	h.mu.RLock()
	lp := h.parts[shard]
	h.mu.RUnlock()
	h.stopPartition(lp)
	time.Sleep(200 * time.Millisecond) // dragonboat closes the stopped shard
	if err := h.startPartition(shard, desiredShard{meta: meta, p: 0, replicaID: lp.replicaID,
		members: map[uint64]dragonboat.Target{h.cfg.NodeID: h.cfg.RaftAddr}}); err != nil {
		t.Fatal(err)
	}
	waitReady(t, h)
	for i := 0; i < 5; i++ {
		if off := produce(fmt.Sprintf("after-%d", i)); off != int64(5+i) {
			t.Fatalf("write %d after the restart acknowledged at offset %d, want %d", i, off, 5+i)
		}
	}
	res, err := h.Fetch(ctx, ref, 0, 0, 100, 1<<20, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Records) != 10 || string(res.Records[9].Value) != "after-4" {
		t.Fatalf("%d records, last %q", len(res.Records), res.Records[len(res.Records)-1].Value)
	}
}

// TestBatchWithoutProducerAppendedOnce: a Kafka batch of no producer id has
// no dedup to make a second proposal of it harmless, so a leader event
// that changes neither the leader nor the term (dragonboat reports every
// one) must not make the host propose it again (found by CI: a fresh
// partition's first batch acknowledged at offset 1, a copy at 0).
func TestBatchWithoutProducerAppendedOnce(t *testing.T) {
	h := mustStartHost(t, t.TempDir(), testutil.FreeAddr(t))
	defer h.Close()
	ctx := context.Background()
	ref, meta := oneTopic(t, h, "once")
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // leader events that change nothing, as fast as they come
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
				h.leaders.changed(meta.Shards[0])
				runtime.Gosched()
			}
		}
	}()
	const n = 50
	for i := 0; i < n; i++ {
		b := batch.Append(nil, []eddy.Record{{Value: []byte(fmt.Sprint(i))}}, batch.Options{ProducerID: -1})
		off, err := h.AppendBatch(ctx, meta, 0, b)
		if err != nil || off != eddy.Offset(i) {
			close(stop)
			wg.Wait()
			t.Fatalf("batch %d: offset %d, %v", i, off, err)
		}
	}
	close(stop)
	wg.Wait()
	res, err := h.Fetch(ctx, ref, 0, 0, 2*n, 1<<20, 0)
	if err != nil || len(res.Records) != n {
		t.Fatalf("%d records, want %d: %v", len(res.Records), n, err)
	}
}

// A data directory keeps the Raft log store it was made with, whatever
// the configuration says at a later start, and serves what it stored.
func TestRaftLogStoreKept(t *testing.T) {
	for _, c := range []struct{ made, then string }{{"tan", "pebble"}, {"pebble", "eddy"}, {"eddy", "tan"}} {
		t.Run(c.made+"-then-"+c.then, func(t *testing.T) {
			dir, addr := t.TempDir(), testutil.FreeAddr(t)
			var syncs atomic.Int64 // each store's writing saves are timed
			cfg := Config{Dir: dir, RaftAddr: addr, RetentionInterval: time.Hour, RaftLogStore: c.made,
				Hooks: Hooks{OnLogSync: func(d time.Duration) { syncs.Add(1) }}}
			h := mustStartHostWith(t, cfg)
			if h.logStore != c.made {
				t.Fatalf("made with %s: the store is %s", c.made, h.logStore)
			}
			ref, _ := oneTopic(t, h, "kept")
			ctx := context.Background()
			produce := func(h *Host, v string) {
				t.Helper()
				before := syncs.Load()
				if _, err := h.Produce(ctx, ref, []eddy.Record{{Value: []byte(v)}}, nil); err != nil {
					t.Fatal(err)
				}
				if syncs.Load() == before {
					t.Fatalf("an acknowledged record took no timed log sync")
				}
			}
			produce(h, "before")
			h.Close()
			cfg.RaftLogStore = c.then
			h = mustStartHostWith(t, cfg)
			defer h.Close()
			if h.logStore != c.made {
				t.Fatalf("made with %s, started with %s: the store is %s", c.made, c.then, h.logStore)
			}
			waitReady(t, h)
			produce(h, "after")
			res, err := h.Fetch(ctx, ref, 0, 0, 10, 1<<20, 0)
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Records) != 2 || string(res.Records[0].Value) != "before" || string(res.Records[1].Value) != "after" {
				t.Fatalf("records after the restart: %+v", res.Records)
			}
		})
	}
}

// producedOnes makes a topic of one partition, produces n one-record
// requests to it, and returns its replica.
func producedOnes(t *testing.T, h *Host, name eddy.TopicName, n int) *localPartition {
	t.Helper()
	ref, meta := oneTopic(t, h, name)
	for i := 0; i < n; i++ {
		if _, err := h.Produce(context.Background(), ref, []eddy.Record{{Value: []byte("x")}}, nil); err != nil {
			t.Fatal(err)
		}
	}
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.parts[meta.Shards[0]]
}

// TestIdleSync: a partition that takes no records for idleAfter syncs
// what it has without waiting for SyncInterval, and a replicated one then
// drops the Raft log it keeps for lagging followers when every node is
// alive (Eddy's log store would carry it forward again and again).
func TestIdleSync(t *testing.T) {
	h := mustStartHostWith(t, Config{Dir: t.TempDir(), RaftAddr: testutil.FreeAddr(t), SyncBytes: 64 << 20, SyncInterval: time.Hour, RetentionInterval: time.Hour,
		MaxUnappliedBytes: 16 << 20})
	defer h.Close()
	lp := producedOnes(t, h, "idle", 10)
	deadline := time.Now().Add(idleAfter + 10*time.Second)
	for lp.sm.unsynced.Load() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d bytes still unsynced %v after the last record", lp.sm.unsynced.Load(), idleAfter+10*time.Second)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if got := h.shardConfig(1001, 1, 3).MaxInMemLogSize; got != 16<<20 {
		t.Fatalf("a partition's in-memory log limit is %d; want MaxUnappliedBytes, 16 MiB", got)
	}
	rf3 := &localPartition{replicas: 3, sm: &partitionSM{}}
	rf3.sm.unsyncedEntries.Store(100)
	if got, want := h.compactionOverhead(rf3, 100<<10, false), uint64(h.cfg.RaftLogRetainBytes>>10); got != want {
		t.Fatalf("a busy RF 3 partition of 1 KiB entries keeps %d entries; want RaftLogRetainBytes of them, %d", got, want)
	}
	if got := h.compactionOverhead(rf3, 100<<10, true); got != rf1Overhead {
		t.Fatalf("an idle RF 3 partition keeps %d entries; want %d", got, rf1Overhead)
	}
}

// TestIdleNudge: a partition whose last sync kept Raft log for lagging
// followers, with nothing unsynced, has no progress for dragonboat to
// snapshot; once idle it is nudged with a no-op and its log compacts to
// rf1Overhead entries.
func TestIdleNudge(t *testing.T) {
	h := mustStartHostWith(t, Config{Dir: t.TempDir(), RaftAddr: testutil.FreeAddr(t), SyncBytes: 64 << 20, SyncInterval: time.Hour, RetentionInterval: time.Hour})
	defer h.Close()
	lp := producedOnes(t, h, "nudge", 100)
	// A sync that keeps 64 entries, as a busy replicated partition's does.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	opt := dragonboat.SnapshotOption{OverrideCompactionOverhead: true, CompactionOverhead: 64}
	if _, err := h.nh.SyncRequestSnapshot(ctx, lp.shardID, opt); err != nil {
		t.Fatal(err)
	}
	lp.kept.Store(64)
	span := func() uint64 {
		lr, err := h.nh.GetLogReader(lp.shardID)
		if err != nil {
			t.Fatal(err)
		}
		first, last := lr.GetRange()
		return last + 1 - first
	}
	if n := span(); n < 64 {
		t.Fatalf("the log keeps %d entries after a sync that kept 64", n)
	}
	deadline := time.Now().Add(2*idleAfter + 10*time.Second)
	for span() > rf1Overhead+1 {
		if time.Now().After(deadline) {
			t.Fatalf("the idle partition's log still keeps %d entries %v later (kept %d)", span(), 2*idleAfter+10*time.Second, lp.kept.Load())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestPinnedReplicaSyncedNotCarried: a single replica that took a few
// entries (large, or small enough to be carried whole) and went quiet
// keeps the Raft log's oldest file while
// another partition writes on; the log store asks the host, which nudges
// and syncs it, so its entries leave the log instead of being carried
// forward (before: carried again each time the log turned over, 97-129
// MiB for 300 MiB of Kafka records after an 8-partition topic), and its
// records read back, after a restart too.
func TestPinnedReplicaSyncedNotCarried(t *testing.T) {
	cfg := Config{Dir: t.TempDir(), RaftAddr: testutil.FreeAddr(t), SyncInterval: time.Hour, RetentionInterval: time.Hour}
	h := mustStartHostWith(t, cfg)
	defer func() { h.Close() }()
	ctx := context.Background()
	quiet, _ := oneTopic(t, h, "quiet")
	small, _ := oneTopic(t, h, "small")
	busy, _ := oneTopic(t, h, "busy")
	big := func(n int, b byte) []eddy.Record {
		return []eddy.Record{{Value: bytes.Repeat([]byte{b}, n)}, {Value: bytes.Repeat([]byte{b}, n)}}
	}
	for i := range 3 { // three entries of 800 KB: more than a log file's eighth
		if _, err := h.Produce(ctx, quiet, big(400<<10, byte('a'+i)), nil); err != nil {
			t.Fatal(err)
		}
		// and three of 100 KB, which would be carried whole
		if _, err := h.Produce(ctx, small, big(50<<10, byte('a'+i)), nil); err != nil {
			t.Fatal(err)
		}
	}
	for range 100 { // 100 MB through 8 MiB log files
		if _, err := h.Produce(ctx, busy, big(500<<10, 'z'), nil); err != nil {
			t.Fatal(err)
		}
	}
	if c := h.raftLog.Load().CarriedBytes(); c >= 100<<10 {
		t.Fatalf("the log store carried %d bytes; want the quiet replicas synced, not their 2.4 MB and 300 KB carried", c)
	}
	check := func(h *Host) {
		t.Helper()
		for _, c := range []struct {
			ref  eddy.TopicRef
			size int
		}{{quiet, 400 << 10}, {small, 50 << 10}} {
			res, err := h.Fetch(ctx, c.ref, 0, 0, 10, 4<<20, 0)
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Records) != 6 || res.Records[5].Value[0] != 'c' || len(res.Records[5].Value) != c.size {
				t.Fatalf("%s reads back %d records", c.ref, len(res.Records))
			}
		}
	}
	check(h)
	h.Close()
	h = mustStartHostWith(t, cfg)
	waitReady(t, h)
	check(h)
}

// TestProduceResultsPerRecord: a request whose records go to several
// partitions (keys interleaved, then explicit partitions, then a request
// to one) answers each record with the partition and offset that hold it.
func TestProduceResultsPerRecord(t *testing.T) {
	h := mustStartHost(t, t.TempDir(), testutil.FreeAddr(t))
	defer h.Close()
	ctx := context.Background()
	ref := eddy.TopicRef{Tenant: eddy.DefaultTenant, Name: "mixed"}
	if _, err := h.CreateTopic(ctx, ref.Tenant, catalog.TopicSpec{Name: ref.Name, Partitions: 3, ReplicationFactor: 1}); err != nil {
		t.Fatal(err)
	}
	waitReady(t, h)
	var recs []eddy.Record
	var parts []eddy.Partition
	for i := range 30 {
		recs = append(recs, eddy.Record{Key: []byte(fmt.Sprint("k", i%7)), Value: []byte(fmt.Sprint("keyed-", i))})
	}
	for i := range 12 {
		parts = append(parts, eddy.Partition([]int{2, 2, 0, 1}[i%4]))
	}
	for n, req := range []struct {
		recs  []eddy.Record
		parts []eddy.Partition
	}{
		{recs, nil},
		{recs[:12], parts},
		{recs[:5], []eddy.Partition{1, 1, 1, 1, 1}},
	} {
		res, err := h.Produce(ctx, ref, req.recs, req.parts)
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range res {
			if req.parts != nil && r.Partition != req.parts[i] {
				t.Fatalf("request %d, record %d: partition %d, want %d", n, i, r.Partition, req.parts[i])
			}
			got, err := h.Fetch(ctx, ref, r.Partition, r.BaseOffset, 1, 1<<20, 0)
			if err != nil {
				t.Fatal(err)
			}
			if len(got.Records) == 0 || string(got.Records[0].Value) != string(req.recs[i].Value) {
				t.Fatalf("request %d, record %d (%s): partition %d offset %d holds %v", n, i, req.recs[i].Value, r.Partition, r.BaseOffset, got.Records)
			}
		}
	}
}
