package e2e

import (
	"testing"
	"time"
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
