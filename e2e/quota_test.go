package e2e

import (
	"fmt"
	"strings"
	"sync"
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

// TestTenantReadSlots: with tenant_read_slots 1, 24 clients of one tenant
// fetching 1 MB of JSON at once run one read at a time, the others
// waiting their turn (counted), and every fetch is answered; another
// tenant's read meanwhile takes a slot of its own and is answered too.
// (scripts/bench-noisy-reads.sh measures what it is for: another tenant's
// producers beside such readers.)
func TestTenantReadSlots(t *testing.T) {
	p := newProc(t)
	p.env = append(p.env, "EDDY_TENANT_READ_SLOTS=1")
	p.start()
	p.mustCreateTopic("r", 1)
	p.producePadded("r", 0, 1000, 1000, "r")
	alpha := p.tenantToken("alpha", "admin")
	alphaDo := func(method, path, body string) int {
		code, _, _ := tenantDo(t, p, alpha, method, path, body)
		return code
	}
	if code := alphaDo("POST", "/v1/topics", `{"name":"a","partitions":1}`); code != 201 {
		t.Fatalf("alpha's topic: %d", code)
	}
	if code := alphaDo("POST", "/v1/topics/a/records", `{"records":[{"value":"mine"}]}`); code != 200 {
		t.Fatalf("alpha's produce: %d", code)
	}
	codes := make(chan int, 24*5)
	var wg sync.WaitGroup
	for range 24 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 5 {
				code, err := p.do("GET", "/v1/topics/r/partitions/0/records?offset=0&max=1000", "", nil, nil)
				if err != nil {
					t.Error(err)
				}
				codes <- code
			}
		}()
	}
	time.Sleep(50 * time.Millisecond)
	if code := alphaDo("GET", "/v1/topics/a/partitions/0/records?offset=0", ""); code != 200 {
		t.Errorf("alpha's fetch beside the other tenant's: %d", code)
	}
	wg.Wait()
	close(codes)
	for code := range codes {
		if code != 200 {
			t.Fatalf("a fetch waiting for its tenant's slot was answered %d", code)
		}
	}
	if waits := p.metric("eddy_tenant_read_waits_total"); waits == 0 {
		t.Fatal("24 clients of one tenant with one read slot: no read waited")
	}
	if waiting := p.metric("eddy_tenant_reads_waiting"); waiting != 0 {
		t.Fatalf("%v reads still waiting", waiting)
	}
}

// TestMQTTCatchUpTakesReadSlots: eight persistent sessions catching up
// at once after an outage (2,000 records of 1 KB each, 64 KiB a read)
// read one at a time with tenant_read_slots 1, the others waiting their
// turn (counted), and each gets everything it missed, in order.
func TestMQTTCatchUpTakesReadSlots(t *testing.T) {
	p := newProc(t)
	p.env = append(p.env, "EDDY_TENANT_READ_SLOTS=1")
	p.start()
	p.mustCreateTopic("c", 1)
	opts := func(i int) []string { return []string{"-c", "-x", "86400", "-i", fmt.Sprintf("dev-%d", i)} }
	var subs []*subscriber
	for i := range 8 {
		subs = append(subs, p.subWith(opts(i), "mqttv5", "default", p.token, 1, 20, "c/#"))
	}
	p.subscribed(8)
	p.producePadded("c", 0, 1, 100, "first")
	for i, s := range subs {
		if got := s.lines(t); len(got) != 1 {
			t.Fatalf("session %d before the outage: %q", i, got)
		}
	}
	p.producePadded("c", 0, 2000, 1000, "c")
	before := p.metric("eddy_tenant_read_waits_total")
	subs = subs[:0]
	for i := range 8 {
		subs = append(subs, p.subWith(opts(i), "mqttv5", "default", p.token, 2000, 60, "c/#"))
	}
	for i, s := range subs {
		got := s.lines(t)
		if len(got) != 2000 {
			t.Fatalf("session %d after the outage: %d records of 2,000", i, len(got))
		}
		for j, l := range got {
			if want := fmt.Sprintf("c c-%06d-", j); !strings.HasPrefix(l, want) {
				t.Fatalf("session %d, record %d: %.40q, want %q...", i, j, l, want)
			}
		}
	}
	if waits := p.metric("eddy_tenant_read_waits_total") - before; waits == 0 {
		t.Fatal("eight sessions catching up at once with one read slot: no read waited")
	}
}
