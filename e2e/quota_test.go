package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestClusterStorageQuota: a tenant's storage quota counts its partitions
// wherever they live. A node that holds no replica of the full partition
// refuses the tenant's writes too (from the sizes partition leaders report
// to the controller), and deleting the topic frees the quota everywhere.
func TestClusterStorageQuota(t *testing.T) {
	procs := newCluster(t, 3, "EDDY_SIZE_REPORT_INTERVAL=200ms")
	if code, err := procs[0].do("POST", "/v1/tenants", "application/json", []byte(`{"name":"q","quotas":{"storage_bytes":30000}}`), nil); err != nil || code != 201 {
		t.Fatalf("tenant: %d %v", code, err)
	}
	if code, err := procs[0].do("POST", "/v1/tenants/q/topics", "application/json", []byte(`{"name":"s","partitions":3,"replication_factor":1}`), nil); err != nil || code != 201 {
		t.Fatalf("topic: %d %v", code, err)
	}
	// Each partition lives on one node; find a partition and a node that
	// holds no replica of it.
	var ti topicInfo
	waitFor(t, "every partition has a leader", 20*time.Second, func() bool {
		code, err := procs[0].do("GET", "/v1/tenants/q/topics/s", "", nil, &ti)
		if err != nil || code != 200 {
			return false
		}
		for _, p := range ti.PartitionInfo {
			if p.Leader == 0 {
				return false
			}
		}
		return true
	})
	full := ti.PartitionInfo[0]
	holder := procs[full.Leader-1]
	var other *proc
	for _, p := range procs {
		if p.nodeID != full.Replicas[0] {
			other = p
			break
		}
	}
	// try produces one record; produce also insists it is either taken or
	// refused for the quota.
	try := func(p *proc, partition int, i int) (int, string) {
		body := fmt.Sprintf(`{"records":[{"value":"%d-%s","partition":%d}]}`, i, strings.Repeat("x", 900), partition)
		var res struct{ Error struct{ Code string } }
		code, err := p.do("POST", "/v1/tenants/q/topics/s/records", "application/json", []byte(body), &res)
		if err != nil {
			t.Fatalf("produce via node %d: %v", p.nodeID, err)
		}
		return code, res.Error.Code
	}
	produce := func(p *proc, partition int, i int) int {
		code, ec := try(p, partition, i)
		if code != 200 && (code != 507 || ec != "storage_quota_exceeded") {
			t.Fatalf("produce via node %d: %d %s", p.nodeID, code, ec)
		}
		return code
	}
	// Fill partition 0 through the node that holds it, until it refuses.
	filled := false
	for i := 0; i < 100 && !filled; i++ {
		filled = produce(holder, full.Partition, i) == 507
	}
	if !filled {
		t.Fatal("100 records of 900 bytes never reached a 30,000-byte quota")
	}
	// The other node refuses too, for every partition, once partition 0's
	// leader has reported its size.
	for partition := range ti.PartitionInfo {
		waitFor(t, fmt.Sprintf("node %d refuses partition %d", other.nodeID, partition), 10*time.Second, func() bool {
			return produce(other, partition, 1000) == 507
		})
	}
	var tenant struct {
		Usage struct {
			StorageBytes int64 `json:"storage_bytes"`
		} `json:"usage"`
	}
	if code, err := other.do("GET", "/v1/tenants/q", "", nil, &tenant); err != nil || code != 200 || tenant.Usage.StorageBytes < 30000 {
		t.Fatalf("usage seen by node %d: %d %v %+v", other.nodeID, code, err, tenant)
	}
	// Deleting the topic frees the quota on every node.
	if code, err := other.do("DELETE", "/v1/tenants/q/topics/s", "", nil, nil); err != nil || code != 204 {
		t.Fatalf("delete: %d %v", code, err)
	}
	if code, err := other.do("POST", "/v1/tenants/q/topics", "application/json", []byte(`{"name":"s","partitions":3,"replication_factor":1}`), nil); err != nil || code != 201 {
		t.Fatalf("topic again: %d %v", code, err)
	}
	for _, p := range procs {
		waitFor(t, fmt.Sprintf("node %d accepts again", p.nodeID), 20*time.Second, func() bool {
			code, _ := try(p, 0, 2000) // the new topic's leader may still be coming up
			return code == 200
		})
	}
}
