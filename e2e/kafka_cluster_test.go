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

	"github.com/eddy-broker/eddy"
	"github.com/eddy-broker/eddy/batch"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
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

// TestKafkaGroupFailover: three franz-go members with the
// cooperative-sticky balancer share a 6-partition topic on three nodes.
// One member is stopped without leaving: its partitions go to the others
// once its session ends. Then the node coordinating the group (the
// controller's leader) is killed -9: the members find the new coordinator,
// which serves the recorded generation on (no session ends, no follower's
// rejoin rebalances; only a leader that rejoins does, as in Kafka), and
// go on from the committed offsets. Every record is consumed (at least
// once, as Kafka's groups deliver), and the members' commits bring the
// group's lag, as the HTTP API reports it, to 0.
func TestKafkaGroupFailover(t *testing.T) {
	procs := newCluster(t, 3)
	if code, err := procs[0].do("POST", "/v1/topics", "application/json", []byte(`{"name":"cg","partitions":6,"replication_factor":3}`), nil); err != nil || code != 201 {
		t.Fatalf("create: %d %v", code, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	prod := kgoClient(t, procs, kgo.RequiredAcks(kgo.AllISRAcks()), kgo.DefaultProduceTopic("cg"))
	produce := func(from, n int) {
		for i := from; i < from+n; i++ {
			prod.Produce(ctx, &kgo.Record{Key: []byte(strconv.Itoa(i)), Value: []byte(strconv.Itoa(i))}, func(_ *kgo.Record, err error) {
				if err != nil {
					t.Errorf("produce %d: %v", i, err)
				}
			})
		}
		if err := prod.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	produce(0, 3000)

	var mu sync.Mutex
	seen := map[string]int{}
	members := make([]*kgo.Client, 3)
	stops := make([]context.CancelFunc, 3)
	var wg sync.WaitGroup
	for i := range members {
		opts := []kgo.Opt{kgo.ConsumerGroup("cg-group"), kgo.ConsumeTopics("cg"),
			kgo.Balancers(kgo.CooperativeStickyBalancer()), kgo.SessionTimeout(6 * time.Second),
			kgo.HeartbeatInterval(500 * time.Millisecond), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
			kgo.AutoCommitInterval(200 * time.Millisecond)}
		if i == 2 {
			// A static member's client does not leave the group when it
			// closes: the coordinator sees it go only when its session ends.
			opts = append(opts, kgo.InstanceID("dies"))
		}
		members[i] = kgoClient(t, procs, opts...)
		mctx, stop := context.WithCancel(ctx)
		stops[i] = stop
		wg.Add(1)
		go func(cl *kgo.Client) {
			defer wg.Done()
			for mctx.Err() == nil {
				fs := cl.PollFetches(mctx)
				fs.EachRecord(func(r *kgo.Record) {
					mu.Lock()
					seen[string(r.Value)]++
					mu.Unlock()
				})
			}
		}(members[i])
	}
	waitSeen := func(n int, why string) {
		t.Helper()
		deadline := time.Now().Add(90 * time.Second)
		for {
			mu.Lock()
			got := len(seen)
			mu.Unlock()
			if got >= n {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d of %d records consumed", why, got, n)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	waitSeen(3000, "three members")

	// A member stops without leaving: the others take its partitions.
	stops[2]()
	members[2].Close()
	produce(3000, 3000)
	waitSeen(6000, "after a member died")

	// The coordinator dies.
	coord := 0
	var c struct {
		Nodes []struct {
			ID         int  `json:"id"`
			Controller bool `json:"controller_leader"`
		} `json:"nodes"`
	}
	if code, err := procs[0].do("GET", "/v1/cluster", "", nil, &c); err != nil || code != 200 {
		t.Fatalf("cluster: %d %v", code, err)
	}
	for _, n := range c.Nodes {
		if n.Controller {
			coord = n.ID
		}
	}
	if coord == 0 {
		t.Fatalf("no controller leader in %+v", c)
	}
	var before struct{ Generation int64 }
	if code, err := procs[coord%3].do("GET", "/v1/groups/cg-group", "", nil, &before); err != nil || code != 200 {
		t.Fatalf("group: %d %v", code, err)
	}
	procs[coord-1].kill()
	produce(6000, 3000)
	waitSeen(9000, "after the coordinator died")
	var live *proc
	for _, p := range procs {
		if p.alive() {
			live = p
		}
	}
	var g struct {
		Generation int64 `json:"generation"`
		Lag        int64 `json:"lag"`
		Partitions []struct {
			Partition int    `json:"partition"`
			Committed *int64 `json:"committed_offset"`
			End       int64  `json:"high_watermark"`
		} `json:"partitions"`
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		if code, err := live.do("GET", "/v1/groups/cg-group", "", nil, &g); err == nil && code == 200 && g.Lag == 0 {
			break
		}
		if time.Now().After(deadline) {
			for _, p := range g.Partitions {
				t.Logf("partition %d: committed %v, end %d", p.Partition, p.Committed, p.End)
			}
			t.Fatalf("the group's lag stayed %d", g.Lag)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// The new coordinator serves the recorded generation on: the takeover
	// itself rebalances nothing (no session ends, no follower's rejoin
	// does). A leader whose heartbeats failed for its whole session joins
	// again, which rebalances once, as in Kafka.
	var after []string
	taken := false
	for _, p := range procs {
		for _, line := range strings.Split(p.log.String(), "\n") {
			if strings.Contains(line, "kafka group taken over") {
				taken = true
			}
			if taken && strings.Contains(line, "kafka group") {
				after = append(after, line)
			}
		}
		taken = false
	}
	rebalances := 0
	for _, line := range after {
		t.Logf("after the takeover: %s", line)
		switch {
		case strings.Contains(line, "kafka group rebalancing") && strings.Contains(line, "the leader joined again"):
			rebalances++
		case strings.Contains(line, "kafka group rebalancing"), strings.Contains(line, "members expired"):
			t.Errorf("the takeover rebalanced: %s", line)
		}
	}
	if g.Generation != before.Generation+int64(rebalances) {
		t.Errorf("generation %d before the coordinator died, %d after, %d rebalances by a leader's rejoin", before.Generation, g.Generation, rebalances)
	}
	stops[0]()
	stops[1]()
	wg.Wait()
	mu.Lock()
	dups := 0
	for _, n := range seen {
		dups += n - 1
	}
	mu.Unlock()
	t.Logf("9000 records consumed, %d redelivered after the rebalances; node %d coordinated; lag 0", dups, coord)
}

// TestKafkaAdmin: franz-go's admin client (kadm) creates a topic with a
// config, describes and alters its configs, adds partitions, lists it
// with its end offsets, and deletes it, as kafka-configs or rpk would.
func TestKafkaAdmin(t *testing.T) {
	p := newProc(t)
	p.start()
	adm := kadm.NewClient(kgoClient(t, []*proc{p}))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ms := "3600000"
	if r, err := adm.CreateTopic(ctx, 2, 1, map[string]*string{"retention.ms": &ms}, "adm"); err != nil || r.Err != nil {
		t.Fatalf("create: %v %v", err, r.Err)
	}
	rc, err := adm.DescribeTopicConfigs(ctx, "adm")
	if err != nil || rc[0].Err != nil {
		t.Fatalf("describe configs: %v", err)
	}
	got := map[string]string{}
	for _, c := range rc[0].Configs {
		got[c.Key] = c.MaybeValue()
	}
	if got["retention.ms"] != ms || got["segment.bytes"] == "" {
		t.Fatalf("configs: %v", got)
	}
	one := "1048576"
	if r, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: "retention.bytes", Value: &one}}, "adm"); err != nil || r[0].Err != nil {
		t.Fatalf("alter configs: %v %v", err, r)
	}
	var topic struct {
		Config map[string]string `json:"config"`
	}
	if code, err := p.do("GET", "/v1/topics/adm", "", nil, &topic); err != nil || code != 200 || topic.Config["retention.bytes"] != one {
		t.Fatalf("the altered config over HTTP: %d %v %v", code, err, topic.Config)
	}
	if r, err := adm.CreatePartitions(ctx, 2, "adm"); err != nil || r["adm"].Err != nil {
		t.Fatalf("create partitions: %v %v", err, r)
	}
	td, err := adm.ListTopics(ctx, "adm")
	if err != nil || len(td["adm"].Partitions) != 4 {
		t.Fatalf("list topics: %v %+v", err, td)
	}
	ends, err := adm.ListEndOffsets(ctx, "adm")
	if err != nil || ends.Error() != nil {
		t.Fatalf("end offsets: %v %v", err, ends.Error())
	}
	if r, err := adm.DeleteTopics(ctx, "adm"); err != nil || r["adm"].Err != nil {
		t.Fatalf("delete: %v %v", err, r)
	}
}

// TestKafkaAnyNodeServesAnyPartition: on three nodes, a partition held by
// one node alone (RF 1) is produced to and fetched from through another
// node, as a client with stale metadata would: the batch travels as it
// came, so an idempotent retry through either node is answered with its
// first offset and stored once. With a transform bound, the batch is
// transformed by the node holding the partition, and a retry is as well
// known.
func TestKafkaAnyNodeServesAnyPartition(t *testing.T) {
	procs := newCluster(t, 3)
	if code, err := procs[0].do("POST", "/v1/topics", "application/json", []byte(`{"name":"spread","partitions":3,"replication_factor":1}`), nil); err != nil || code != 201 {
		t.Fatalf("create: %d %v", code, err)
	}
	var info topicInfo
	if code, err := procs[0].do("GET", "/v1/topics/spread", "", nil, &info); err != nil || code != 200 {
		t.Fatalf("describe: %d %v", code, err)
	}
	part, holder := -1, 0
	for _, pi := range info.PartitionInfo {
		if len(pi.Replicas) == 1 && pi.Replicas[0] != 1 {
			part, holder = pi.Partition, pi.Replicas[0]
			break
		}
	}
	if part < 0 {
		t.Fatalf("no partition away from node 1: %+v", info)
	}
	cl := kgoClient(t, procs)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	via := cl.Broker(1) // not the holder
	pid := initProducerID(ctx, t, via)
	raw := batch.Append(nil, []eddy.Record{{Value: []byte("through node 1"), Timestamp: time.Now().UnixMilli()}},
		batch.Options{ProducerID: pid, ProducerEpoch: 0, BaseSequence: 0})
	produce := func(b kgoBroker) int64 {
		req := kmsg.NewPtrProduceRequest()
		req.Acks, req.TimeoutMillis = -1, 10_000
		req.Topics = []kmsg.ProduceRequestTopic{{Topic: "spread", Partitions: []kmsg.ProduceRequestTopicPartition{{Partition: int32(part), Records: append([]byte(nil), raw...)}}}}
		resp, err := b.Request(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		p := resp.(*kmsg.ProduceResponse).Topics[0].Partitions[0]
		if p.ErrorCode != 0 {
			t.Fatalf("produce through a node: error %d", p.ErrorCode)
		}
		return p.BaseOffset
	}
	first := produce(via)
	if again := produce(via); again != first {
		t.Fatalf("the retry through node 1 got offset %d, the first %d", again, first)
	}
	if direct := produce(cl.Broker(holder)); direct != first {
		t.Fatalf("the retry at the holder got offset %d, the first %d", direct, first)
	}
	fr := kmsg.NewPtrFetchRequest()
	fr.MaxWaitMillis, fr.MaxBytes = 100, 1<<20
	fr.Topics = []kmsg.FetchRequestTopic{{Topic: "spread", Partitions: []kmsg.FetchRequestTopicPartition{{Partition: int32(part), PartitionMaxBytes: 1 << 20}}}}
	resp, err := via.Request(ctx, fr)
	if err != nil {
		t.Fatal(err)
	}
	fp := resp.(*kmsg.FetchResponse).Topics[0].Partitions[0]
	if fp.ErrorCode != 0 || fp.HighWatermark != first+1 || len(fp.RecordBatches) == 0 {
		t.Fatalf("fetch through node 1: error %d, high watermark %d (want %d), %d bytes", fp.ErrorCode, fp.HighWatermark, first+1, len(fp.RecordBatches))
	}

	// With a transform bound, node 1 hands the batch to the holder, which
	// transforms it and remembers it: a retry through either node is
	// answered with the first offset, and the output is stored once.
	procs[0].mustDeploy("enrich", buildWasm(t, "examples/transforms/enrich"))
	procs[0].mustBind("spread", `{"module":"enrich","config":{"fields":{"via":"holder"}}}`)
	waitBound(t, procs, "spread")
	raw = batch.Append(nil, []eddy.Record{{Value: []byte(`{"n":1}`), Timestamp: time.Now().UnixMilli()}},
		batch.Options{ProducerID: pid, ProducerEpoch: 0, BaseSequence: 1})
	second := produce(via)
	if second != first+1 {
		t.Fatalf("the transformed batch through node 1 got offset %d, want %d", second, first+1)
	}
	if again, direct := produce(via), produce(cl.Broker(holder)); again != second || direct != second {
		t.Fatalf("retries of the transformed batch got offsets %d (node 1) and %d (the holder), the first %d", again, direct, second)
	}
	got := procs[holder-1].records("", "spread", part)
	if len(got) != 2 || string(got[1].Value) != `{"n":1,"via":"holder"}` {
		t.Fatalf("the partition holds %d records, want 2, the last transformed once: %+v", len(got), got)
	}
}

// initProducerID asks a broker for an idempotent producer id.
func initProducerID(ctx context.Context, t *testing.T, b kgoBroker) int64 {
	t.Helper()
	ip := kmsg.NewPtrInitProducerIDRequest()
	ip.ProducerID, ip.ProducerEpoch = -1, -1
	r, err := b.Request(ctx, ip)
	if err != nil || r.(*kmsg.InitProducerIDResponse).ErrorCode != 0 {
		t.Fatalf("init producer id: %v %+v", err, r)
	}
	return r.(*kmsg.InitProducerIDResponse).ProducerID
}

// kgoBroker is one broker of a franz-go client.
type kgoBroker interface {
	Request(context.Context, kmsg.Request) (kmsg.Response, error)
}

// TestKafkaIdempotentThroughTransform: a Kafka producer's batch to a topic
// with a transform is stored as the transform's output, yet a retry of the
// same batch is answered with its first offset and stored once, and the
// producer's next batch goes on in sequence. A batch the transform refuses
// is INVALID_RECORD with each of its records listed (KIP-467). A batch it
// dead-letters is remembered: its retry is not dead-lettered again, nor
// stored once the binding passes failures instead.
func TestKafkaIdempotentThroughTransform(t *testing.T) {
	p := newProc(t)
	p.start()
	p.mustCreateTopic("enr", 1)
	p.mustDeploy("enrich", buildWasm(t, "examples/transforms/enrich"))
	p.mustBind("enr", `{"module":"enrich","config":{"fields":{"site":"edge-01"}}}`)
	cl := kgoClient(t, []*proc{p})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	via := cl.Broker(1)
	pid := initProducerID(ctx, t, via)
	mk := func(seq int32, n int) []byte {
		recs := make([]eddy.Record, n)
		for i := range recs {
			recs[i] = eddy.Record{Value: []byte(fmt.Sprintf(`{"n":%d}`, int(seq)+i)), Timestamp: time.Now().UnixMilli()}
		}
		return batch.Append(nil, recs, batch.Options{ProducerID: pid, BaseSequence: seq})
	}
	produce := func(b []byte) kmsg.ProduceResponseTopicPartition {
		req := kmsg.NewPtrProduceRequest()
		req.Acks, req.TimeoutMillis = -1, 10_000
		req.Topics = []kmsg.ProduceRequestTopic{{Topic: "enr", Partitions: []kmsg.ProduceRequestTopicPartition{{Partition: 0, Records: append([]byte(nil), b...)}}}}
		resp, err := via.Request(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		return resp.(*kmsg.ProduceResponse).Topics[0].Partitions[0]
	}
	first := mk(0, 3)
	a, b := produce(first), produce(first)
	if a.ErrorCode != 0 || b.ErrorCode != 0 || a.BaseOffset != b.BaseOffset {
		t.Fatalf("a batch and its retry: %+v then %+v", a, b)
	}
	if c := produce(mk(3, 2)); c.ErrorCode != 0 || c.BaseOffset != a.BaseOffset+3 {
		t.Fatalf("the next batch: %+v", c)
	}
	got := p.records("", "enr", 0)
	if len(got) != 5 || string(got[0].Value) != `{"n":0,"site":"edge-01"}` {
		t.Fatalf("stored %d records, first %s", len(got), got[0].Value)
	}
	// The transform refuses a batch: INVALID_RECORD, every record listed.
	bad := batch.Append(nil, []eddy.Record{{Value: []byte(`{"ok":1}`)}, {Value: []byte("plain text")}}, batch.Options{ProducerID: -1})
	if r := produce(bad); r.ErrorCode != 87 || len(r.ErrorRecords) != 2 || r.ErrorMessage == nil || !strings.Contains(*r.ErrorMessage, "not a JSON object") {
		t.Fatalf("a refused batch: %+v", r)
	}
	if n := len(p.records("", "enr", 0)); n != 5 {
		t.Fatalf("a refused batch appended %d records", n-5)
	}

	// A batch the transform consumes whole (here: dead-letters) appends
	// nothing, and its retry is answered so without running the transform
	// again, even when the transform would now decide otherwise.
	p.mustCreateTopic("enr-dlq", 1)
	p.mustBind("enr", `{"module":"enrich","config":{"fields":{"site":"edge-01"}},"on_error":"dead-letter","dead_letter_topic":"enr-dlq"}`)
	text := func(seq int32) []byte {
		recs := []eddy.Record{{Value: []byte("text one"), Timestamp: time.Now().UnixMilli()}, {Value: []byte("text two"), Timestamp: time.Now().UnixMilli()}}
		return batch.Append(nil, recs, batch.Options{ProducerID: pid, BaseSequence: seq})
	}
	consumed := text(5)
	for i := 0; i < 2; i++ {
		if r := produce(consumed); r.ErrorCode != 0 || r.BaseOffset != -1 {
			t.Fatalf("a dead-lettered batch (attempt %d): %+v", i+1, r)
		}
	}
	if n := len(p.records("", "enr-dlq", 0)); n != 2 {
		t.Fatalf("the dead-letter topic holds %d records, want the batch's 2 once", n)
	}
	p.mustBind("enr", `{"module":"enrich","config":{"fields":{"site":"edge-01"}},"on_error":"pass"}`)
	if r := produce(consumed); r.ErrorCode != 0 || r.BaseOffset != -1 {
		t.Fatalf("the retry once the transform passes failures: %+v", r)
	}
	if n, d := len(p.records("", "enr", 0)), len(p.records("", "enr-dlq", 0)); n != 5 || d != 2 {
		t.Fatalf("after the retry: %d records stored (want 5), %d dead-lettered (want 2)", n, d)
	}
	next := text(7)
	a, b = produce(next), produce(next)
	if a.ErrorCode != 0 || a.BaseOffset != 5 || b.ErrorCode != 0 || b.BaseOffset != 5 {
		t.Fatalf("the next batch, passed, and its retry: %+v then %+v", a, b)
	}
	if got := p.records("", "enr", 0); len(got) != 7 || jsonString(got[6].Value) != "text two" {
		t.Fatalf("stored %d records, want 7 (the last %q)", len(got), got[len(got)-1].Value)
	}
}
