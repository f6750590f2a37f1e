package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	httpapi "github.com/eddy-broker/eddy/bridges/http"
)

// linkView is what GET /v1/links/{name} shows.
type linkView = httpapi.LinkView

func (p *proc) createLink(spec map[string]any) {
	p.tb.Helper()
	body, _ := json.Marshal(spec)
	var out map[string]any
	if code, err := p.do("POST", "/v1/links", "application/json", body, &out); err != nil || code != 201 {
		p.tb.Fatalf("create link: %d %v %v", code, err, out)
	}
}

func (p *proc) link(name string) linkView {
	p.tb.Helper()
	var v linkView
	if code, err := p.do("GET", "/v1/links/"+name, "", nil, &v); err != nil || code != 200 {
		p.tb.Fatalf("describe link: %d %v", code, err)
	}
	return v
}

// forwarded sums what the link has forwarded.
func forwarded(v linkView) (n int64) {
	for _, p := range v.Partitions {
		n += p.Forwarded
	}
	return n
}

// drained: every partition forwarded to its end.
func drained(v linkView, partitions int) bool {
	if len(v.Partitions) != partitions {
		return false
	}
	for _, p := range v.Partitions {
		if p.Forwarded != p.End || p.InFlight != p.End {
			return false
		}
	}
	return true
}

// linkToCloud is the spec of a link from an edge node to cloud's Kafka
// listener, as its default tenant.
func linkToCloud(cloud []*proc, extra map[string]any) map[string]any {
	var to []string
	for _, c := range cloud {
		to = append(to, c.kafkaAddr)
	}
	spec := map[string]any{"name": "cloud", "to": to, "topics": []string{"sensors"}, "sasl": "plain",
		"username": "default", "password": cloud[0].token, "compression": "zstd"}
	for k, v := range extra {
		spec[k] = v
	}
	return spec
}

// edgeProducers write values "p<partition>-<seq>" to each partition of
// topic in order, 20 per request, until total per partition are
// acknowledged. A request that fails (its node was killed) is not retried:
// its values may or may not be stored. Acknowledged values are returned.
type edgeProducers struct {
	mu    sync.Mutex
	acked map[string]bool
	done  sync.WaitGroup
	n     atomic.Int64
}

func produceInOrder(edge *proc, topic string, partitions, total int) *edgeProducers {
	ep := &edgeProducers{acked: map[string]bool{}}
	for part := range partitions {
		ep.done.Add(1)
		go func() {
			defer ep.done.Done()
			deadline := time.Now().Add(3 * time.Minute)
			for seq, got := 0, 0; got < total && time.Now().Before(deadline); {
				var b strings.Builder
				var vals []string
				b.WriteString(`{"records":[`)
				for i := range 20 {
					v := fmt.Sprintf("p%d-%06d", part, seq)
					seq++
					vals = append(vals, v)
					if i > 0 {
						b.WriteByte(',')
					}
					fmt.Fprintf(&b, `{"key":"dev-%d","value":%q,"partition":%d}`, part, v, part)
				}
				b.WriteString(`]}`)
				code, err := edge.do("POST", "/v1/topics/"+topic+"/records", "application/json", []byte(b.String()), nil)
				if err != nil || code != 200 {
					time.Sleep(100 * time.Millisecond)
					continue
				}
				got += len(vals)
				ep.n.Add(int64(len(vals)))
				ep.mu.Lock()
				for _, v := range vals {
					ep.acked[v] = true
				}
				ep.mu.Unlock()
			}
		}()
	}
	return ep
}

// sameLogs checks that the cloud's copy of each partition (in cloudTopic)
// holds exactly the edge's records, in the same order (so nothing lost,
// nothing twice), and every value acknowledged at the edge; id names a
// record by its value.
func sameLogs(t *testing.T, edge, cloud *proc, topic, cloudTopic string, partitions int, acked map[string]bool, id func(json.RawMessage) string) int {
	t.Helper()
	total := 0
	in := map[string]bool{}
	for part := range partitions {
		e, c := edge.readPartition(topic, part), cloud.readPartition(cloudTopic, part)
		if len(e) != len(c) {
			t.Errorf("partition %d: the edge holds %d records, the cloud %d", part, len(e), len(c))
		}
		for i := range min(len(e), len(c)) {
			if ev, cv := id(e[i].Value), id(c[i].Value); ev != cv {
				t.Fatalf("partition %d, record %d: edge %s, cloud %s", part, i, ev, cv)
			}
		}
		for _, r := range c {
			v := id(r.Value)
			if in[v] {
				t.Fatalf("%s is in the cloud twice", v)
			}
			in[v] = true
		}
		total += len(c)
	}
	missing := 0
	for v := range acked {
		if !in[v] {
			missing++
		}
	}
	if missing > 0 {
		t.Fatalf("%d records acknowledged at the edge are not in the cloud", missing)
	}
	return total
}

// TestLinkExactlyOnce: an edge node forwards a 3-partition topic to a
// cloud Eddy over its Kafka listener while records are produced. The
// cloud goes down for 5 s (the link backs off, the backlog grows) and
// comes back; mid catch-up the edge is killed -9 and restarted, then the
// cloud again. At the end the cloud holds each partition exactly as the
// edge does (same records, same order, none twice), and the link's
// figures match.
func TestLinkExactlyOnce(t *testing.T) {
	cloud := newProc(t)
	cloud.start()
	edge := newProc(t)
	edge.start()
	const parts, perPart = 3, 15000
	edge.mustCreateTopic("sensors", parts)
	edge.createLink(linkToCloud([]*proc{cloud}, map[string]any{"linger_ms": 5, "max_batch_bytes": 8192}))
	ep := produceInOrder(edge, "sensors", parts, perPart)

	waitFor(t, "the link forwards", 60*time.Second, func() bool { return forwarded(edge.link("cloud")) >= 1000 })
	cloud.kill()
	time.Sleep(5 * time.Second)
	v := edge.link("cloud")
	t.Logf("cloud down 5 s: link %s, backlog %d records, %.1f s", v.State, v.Totals.BacklogRecords, v.Totals.BacklogSeconds)
	if v.State != "backing_off" || v.Totals.BacklogRecords == 0 {
		t.Fatalf("with the cloud down the link is %s with a backlog of %d", v.State, v.Totals.BacklogRecords)
	}
	cloud.launch()
	cloud.waitReady()
	waitFor(t, "the catch-up starts", 60*time.Second, func() bool { return forwarded(edge.link("cloud")) > forwarded(v) })
	v = edge.link("cloud")
	t.Logf("edge killed -9 mid catch-up: %d forwarded, backlog %d", forwarded(v), v.Totals.BacklogRecords)
	edge.kill()
	edge.launch()
	edge.waitReady()
	waitFor(t, "the link goes on after the edge's restart", 60*time.Second, func() bool { return forwarded(edge.link("cloud")) > forwarded(v) })
	v = edge.link("cloud")
	t.Logf("cloud killed -9: %d forwarded, backlog %d", forwarded(v), v.Totals.BacklogRecords)
	cloud.kill()
	cloud.launch()
	cloud.waitReady()
	ep.done.Wait()
	if ep.n.Load() != parts*perPart {
		t.Fatalf("only %d of %d records acknowledged at the edge", ep.n.Load(), parts*perPart)
	}
	waitFor(t, "the link catches up", 90*time.Second, func() bool { return drained(edge.link("cloud"), parts) })
	n := sameLogs(t, edge, cloud, "sensors", "sensors", parts, ep.acked, jsonString)
	v = edge.link("cloud")
	if forwarded(v) != int64(n) || v.Totals.Dropped != 0 || v.Totals.BacklogRecords != 0 || v.Totals.BytesSent == 0 || v.State != "connected" {
		t.Fatalf("link figures: forwarded %d of %d, dropped %d, backlog %d, %d bytes, %s", forwarded(v), n, v.Totals.Dropped, v.Totals.BacklogRecords, v.Totals.BytesSent, v.State)
	}
	t.Logf("%d records in the cloud, each once, in the edge's order; %d bytes sent, %d producer resets", n, v.Totals.BytesSent, v.Totals.Resets)
}

// TestLinkMovesWithLeadership: a 3-node edge cluster (RF 3) links its
// topic to a cloud node; the edge node leading partition 0 is killed -9
// while records are produced, so the partition's new leader takes the
// link over from the controller's progress. The cloud ends with each
// partition exactly as the edge holds it.
func TestLinkMovesWithLeadership(t *testing.T) {
	cloud := newProc(t)
	cloud.start()
	edges := newCluster(t, 3)
	if code, err := edges[0].do("POST", "/v1/topics", "application/json", []byte(`{"name":"sensors","partitions":2,"replication_factor":3}`), nil); err != nil || code != 201 {
		t.Fatalf("create: %d %v", code, err)
	}
	victim := leaderOf(t, edges, "sensors", 0)
	var writer *proc // produce and watch through a node that survives
	for _, e := range edges {
		if e.nodeID != victim {
			writer = e
		}
	}
	writer.createLink(linkToCloud([]*proc{cloud}, map[string]any{"linger_ms": 5, "max_batch_bytes": 8192}))
	const parts, perPart = 2, 15000
	ep := produceInOrder(writer, "sensors", parts, perPart)
	waitFor(t, "the link forwards", 60*time.Second, func() bool { return forwarded(writer.link("cloud")) >= 2000 })
	v := writer.link("cloud")
	t.Logf("edge node %d (leading partition 0) killed -9: %d forwarded", victim, forwarded(v))
	edges[victim-1].kill()
	ep.done.Wait()
	waitFor(t, "the link catches up from the new leaders", 90*time.Second, func() bool { return drained(writer.link("cloud"), parts) })
	v = writer.link("cloud")
	for _, p := range v.Partitions {
		if p.Partition == 0 && p.Node == uint64(victim) {
			t.Fatalf("partition 0 is still run by the killed node %d", victim)
		}
	}
	n := sameLogs(t, writer, cloud, "sensors", "sensors", parts, ep.acked, jsonString)
	t.Logf("%d records in the cloud, each once, in the edge's order; %d producer resets", n, v.Totals.Resets)
}
