package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// What one node tells of every node: transform runs and replica checksums
// gathered through ?nodes=all.

// TestTransformStatusEveryNode: a transform runs where records come in,
// with a breaker and counters per node; GET /v1/topics/{t}?nodes=all
// gathers them from every node of a 3-node cluster, asked from any node;
// ?nodes=all on a partition's checksum verifies its replicas in one call.
func TestTransformStatusEveryNode(t *testing.T) {
	procs := newCluster(t, 3)
	p := procs[0]
	p.mustDeploy("keep", buildWasm(t, "wasm/testdata/guests/keep"))
	if code, err := p.do("POST", "/v1/topics", "application/json", []byte(`{"name":"st","partitions":1,"replication_factor":3}`), nil); err != nil || code != 201 {
		t.Fatalf("create: %d %v", code, err)
	}
	p.mustBind("st", `{"module":"keep"}`)
	if code, err := p.do("POST", "/v1/topics/st/records", "application/json", []byte(`{"records":[{"value":1},{"value":2}]}`), nil); err != nil || code != 200 {
		t.Fatalf("produce: %d %v", code, err)
	}
	if code, err := procs[1].do("POST", "/v1/topics/st/records", "application/json", []byte(`{"records":[{"value":3}]}`), nil); err != nil || code != 200 {
		t.Fatalf("produce at node 2: %d %v", code, err)
	}
	var topic struct {
		Transform struct {
			Nodes []struct {
				Node   int
				Status *struct {
					Breaker   string
					RecordsIn int `json:"records_in"`
				}
				Error string
			}
		}
	}
	if code, err := procs[2].do("GET", "/v1/topics/st?nodes=all", "", nil, &topic); err != nil || code != 200 {
		t.Fatalf("describe: %d %v", code, err)
	}
	if len(topic.Transform.Nodes) != 3 {
		t.Fatalf("nodes: %+v", topic.Transform.Nodes)
	}
	// Each node runs the transform on what it ingests: node 1 two
	// records, node 2 one, node 3 none (no status: it never ran it).
	want := map[int]int{1: 2, 2: 1}
	for _, n := range topic.Transform.Nodes {
		switch {
		case n.Error != "":
			t.Fatalf("node %d did not answer: %s", n.Node, n.Error)
		case want[n.Node] == 0 && n.Status != nil && n.Status.RecordsIn != 0:
			t.Fatalf("node %d: %+v", n.Node, *n.Status)
		case want[n.Node] > 0 && (n.Status == nil || n.Status.Breaker != "closed" || n.Status.RecordsIn != want[n.Node]):
			t.Fatalf("node %d: %+v, want %d records in", n.Node, n.Status, want[n.Node])
		}
	}

	// The replicas verified in one call, from any node: the same bytes up
	// to the lowest end they report.
	var sums struct {
		Upto       int64
		Consistent bool
		Replicas   []struct {
			Node     int
			Checksum *struct{ SHA256 string }
			Error    string
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if code, err := procs[2].do("GET", "/v1/topics/st/partitions/0/checksum?nodes=all", "", nil, &sums); err != nil || code != 200 {
			t.Fatalf("checksum: %d %v", code, err)
		}
		if sums.Upto == 3 || time.Now().After(deadline) {
			break // every replica applied the three records
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !sums.Consistent || sums.Upto != 3 || len(sums.Replicas) != 3 {
		t.Fatalf("replica checksums: %+v", sums)
	}
}

// TestOffsetForTimeAnyNode: the first offset at or after a time is looked
// up in the batches' max timestamps of a replica, asked of a node that has
// one by any node that has none: over HTTP (offsets?timestamp=, which
// scanned the whole partition through 8 MiB fetches there) and Kafka's
// ListOffsets (refused NOT_LEADER_OR_FOLLOWER there).
func TestOffsetForTimeAnyNode(t *testing.T) {
	procs := newCluster(t, 2)
	if code, err := procs[0].do("POST", "/v1/topics", "application/json", []byte(`{"name":"tt","partitions":4,"replication_factor":1}`), nil); err != nil || code != 201 {
		t.Fatalf("create: %d %v", code, err)
	}
	near, part := procs[0], remotePartition(t, procs, "tt", 4)
	for _, ts := range []int{1000, 2000, 3000} {
		body := fmt.Sprintf(`{"records":[{"value":"at %d","partition":%d,"timestamp":%d}]}`, ts, part, ts)
		if code, err := near.do("POST", "/v1/topics/tt/records", "application/json", []byte(body), nil); err != nil || code != 200 {
			t.Fatalf("produce: %d %v", code, err)
		}
	}
	for _, c := range []struct{ at, offset, stamp int64 }{{1500, 1, 2000}, {0, 0, 1000}, {3000, 2, 3000}, {5000, 3, -1}} {
		var out struct {
			Offset          int64 `json:"offset"`
			RecordTimestamp int64 `json:"record_timestamp"`
		}
		if code, err := near.do("GET", fmt.Sprintf("/v1/topics/tt/partitions/%d/offsets?timestamp=%d", part, c.at), "", nil, &out); err != nil || code != 200 {
			t.Fatalf("offsets at %d: %d %v", c.at, code, err)
		}
		if out.Offset != c.offset || out.RecordTimestamp != c.stamp {
			t.Errorf("HTTP, at %d: offset %d, record timestamp %d; want %d, %d", c.at, out.Offset, out.RecordTimestamp, c.offset, c.stamp)
		}
		if c.stamp < 0 {
			c.offset = -1 // Kafka: no such record
		}
		req := kmsg.NewPtrListOffsetsRequest()
		rt := kmsg.NewListOffsetsRequestTopic()
		rt.Topic = "tt"
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Partition, rp.Timestamp = int32(part), c.at
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp, err := kgoClient(t, procs[:1]).Broker(1).Request(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		got := resp.(*kmsg.ListOffsetsResponse).Topics[0].Partitions[0]
		if got.ErrorCode != 0 || got.Offset != c.offset || got.Timestamp != c.stamp {
			t.Errorf("Kafka ListOffsets to node 1, at %d: error %d, offset %d, timestamp %d; want 0, %d, %d", c.at, got.ErrorCode, got.Offset, got.Timestamp, c.offset, c.stamp)
		}
	}
}
