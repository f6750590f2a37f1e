package e2e

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestClusterQuietPartitionNotCarried: a client writes one replicated
// topic, pauses, and writes another, as a benchmark's rounds or a
// gateway's batch jobs do. The first partition, quiet with every node
// alive, drops the Raft log it kept for lagging followers when the log
// store asks, rather than having the store write that log again each
// time it is the oldest (a third of what three local nodes wrote under
// Kafka produce, before). Every node still serves all of it.
func TestClusterQuietPartitionNotCarried(t *testing.T) {
	// 4 MiB kept behind a sync, so that 60 MB through 8 MiB log files
	// makes the first topic's log the oldest more than once.
	procs := newCluster(t, 3, "EDDY_RAFT_LOG_RETAIN_BYTES=4194304")
	for _, name := range []string{"first", "second"} {
		body := fmt.Sprintf(`{"name":%q,"partitions":1,"replication_factor":3}`, name)
		if code, err := procs[0].do("POST", "/v1/topics", "application/json", []byte(body), nil); err != nil || code != 201 {
			t.Fatalf("create %s: %d %v", name, code, err)
		}
	}
	// Requests of 100 records of 1 KB: an entry of about 100 KB each.
	value := strings.Repeat("q", 1000)
	var req strings.Builder
	req.WriteString(`{"records":[`)
	for i := range 100 {
		if i > 0 {
			req.WriteByte(',')
		}
		req.WriteString(`{"value":"` + value + `"}`)
	}
	req.WriteString(`]}`)
	body := []byte(req.String())
	produce := func(topic string, requests, clients int, pause time.Duration) {
		var wg sync.WaitGroup
		for c := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range requests / clients {
					if code, err := procs[c%len(procs)].do("POST", "/v1/topics/"+topic+"/records", "application/json", body, nil); err != nil || code != 200 {
						t.Errorf("produce to %s: %d %v", topic, code, err)
						return
					}
					time.Sleep(pause)
				}
			}()
		}
		wg.Wait()
	}
	produce("first", 60, 2, 0) // 6 MB, more than the 4 MiB kept
	// Quiet past quietAfter (1 s), well short of idleAfter (5 s), after
	// which an idle partition drops its log anyway.
	time.Sleep(1500 * time.Millisecond)
	start := time.Now()
	// 60 MB over a few seconds: the store waits a second (carryGrace)
	// for a sync it asked for before it carries.
	produce("second", 600, 4, 15*time.Millisecond)
	if t.Failed() {
		t.FailNow()
	}
	t.Logf("60 MB to the second topic in %v", time.Since(start).Round(time.Millisecond))
	for _, p := range procs {
		c := p.metric("eddy_raft_log_carried_bytes_total")
		t.Logf("node %d's log store carried %.2f MB", p.nodeID, c/(1<<20))
		if c >= 1<<20 {
			t.Errorf("node %d's log store carried %.1f MB; want the quiet partition's 4 MiB dropped, not written again", p.nodeID, c/(1<<20))
		}
	}
	for _, p := range procs {
		if n := len(p.readPartition("first", 0)); n != 6000 {
			t.Errorf("node %d serves %d records of the first topic, want 6000", p.nodeID, n)
		}
	}
}
