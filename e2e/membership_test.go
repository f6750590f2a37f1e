package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

type clusterView struct {
	Nodes []struct {
		ID    int    `json:"id"`
		State string `json:"state"`
		Hosts int    `json:"partitions_hosted"`
		Voter bool   `json:"controller_voter"`
	} `json:"nodes"`
	Moves []struct {
		Topic string `json:"topic"`
		Phase string `json:"phase"`
	} `json:"moves"`
}

// waitCluster polls GET /v1/cluster on n until cond holds.
func waitCluster(t *testing.T, n *proc, what string, limit time.Duration, cond func(c clusterView) bool) clusterView {
	t.Helper()
	deadline := time.Now().Add(limit)
	var c clusterView
	for {
		c = clusterView{}
		if code, err := n.do("GET", "/v1/cluster", "", nil, &c); err == nil && code == 200 && cond(c) {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v; cluster: %+v\ncluster:\n%s", what, limit, c, n.diag())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestClusterAddAndRemoveNode: under a produce load, a fourth node is added
// (replicas move onto it: non-voting first, promoted, then the old replica
// removed) and then node 1 is removed (its replicas move away first). No
// acknowledged record is lost or duplicated, replicas end byte-identical,
// and the removed node's id cannot come back.
func TestClusterAddAndRemoveNode(t *testing.T) {
	procs := newCluster(t, 3)
	p1, p2 := procs[0], procs[1]
	if code, err := p1.do("POST", "/v1/topics", "application/json", []byte(`{"name":"grow","partitions":6,"replication_factor":3}`), nil); err != nil || code != 201 {
		t.Fatalf("create grow: %d %v", code, err)
	}
	if code, err := p1.do("POST", "/v1/topics", "application/json", []byte(`{"name":"solo","partitions":3,"replication_factor":1}`), nil); err != nil || code != 201 {
		t.Fatalf("create solo: %d %v", code, err)
	}
	// The load goes to nodes 2 and 3: node 1 is removed later.
	load := startLoad(procs[1:], "grow", 3)
	soloLoad := startLoad(procs[1:], "solo", 1)
	time.Sleep(500 * time.Millisecond)

	n4 := newProc(t)
	n4.nodeID, n4.join = 4, true
	t.Cleanup(func() {
		if t.Failed() && n4.log != nil {
			l := n4.log.String()
			t.Logf("node 4's log (tail):\n%s", l[max(0, len(l)-6000):])
		}
	})
	expectCode := func(method, path, body string, want int, code string) {
		t.Helper()
		var e struct{ Error struct{ Code string } }
		got, err := p2.do(method, path, "application/json", []byte(body), &e)
		if err != nil || got != want || e.Error.Code != code {
			t.Fatalf("%s %s %s: %d %q %v, want %d %q", method, path, body, got, e.Error.Code, err, want, code)
		}
	}
	expectCode("POST", "/v1/cluster/nodes", `{"id":0,"raft_addr":"127.0.0.1:1"}`, 400, "invalid_request")
	expectCode("POST", "/v1/cluster/nodes", `{"id":4,"raft_addr":"nonsense"}`, 400, "invalid_request")
	expectCode("POST", "/v1/cluster/nodes", `{"id":4,"raft_addr":"`+p1.raftAddr+`"}`, 409, "conflict")
	expectCode("DELETE", "/v1/cluster/nodes/9", "", 404, "not_found")
	out := p2.mustCLI("", "cluster", "add-node", "--id", "4", "--raft-addr", n4.raftAddr)
	if !strings.Contains(out, "node 4 added") {
		t.Fatalf("add-node: %s", out)
	}
	expectCode("POST", "/v1/cluster/nodes", `{"id":4,"raft_addr":"127.0.0.1:1"}`, 409, "conflict")
	added := time.Now()
	n4.start()
	n4.cluster = append(procs, n4)
	for _, p := range procs {
		p.cluster = n4.cluster
	}
	// 6x3 + 3x1 = 21 replicas over 4 nodes: balanced is 5 or 6 each.
	c := waitCluster(t, p2, "replicas moved onto node 4", 120*time.Second, func(c clusterView) bool {
		if len(c.Moves) > 0 || len(c.Nodes) != 4 {
			return false
		}
		for _, n := range c.Nodes {
			if n.Hosts < 5 || n.Hosts > 6 || !n.Voter || n.State != "active" {
				return false
			}
		}
		return true
	})
	t.Logf("node 4 added and balanced in %v: %+v", time.Since(added).Round(time.Millisecond), c.Nodes)
	// The joined node restarts as what it now is: a voter everywhere.
	n4.cmd.Process.Signal(syscall.SIGTERM)
	<-n4.exited
	n4.start()
	waitCluster(t, p2, "node 4 back after a restart", 30*time.Second, func(c clusterView) bool {
		for _, n := range c.Nodes {
			if n.ID == 4 && (!n.Voter || n.Hosts < 5) {
				return false
			}
		}
		return len(c.Nodes) == 4
	})

	removed := time.Now()
	out = p2.mustCLI("", "cluster", "remove-node", "1", "--wait", "120s")
	if !strings.Contains(out, "node 1 removed") {
		t.Fatalf("remove-node: %s", out)
	}
	c = waitCluster(t, p2, "node 1 gone", 10*time.Second, func(c clusterView) bool { return len(c.Nodes) == 3 && len(c.Moves) == 0 })
	t.Logf("node 1 drained and removed in %v: %+v", time.Since(removed).Round(time.Millisecond), c.Nodes)
	// Its replicas' data is gone from its disk.
	waitFor(t, "node 1 deletes its partition data", 20*time.Second, func() bool {
		ents, _ := os.ReadDir(filepath.Join(p1.dataDir, "partitions"))
		return len(ents) == 0
	})
	p1.kill()
	load.halt()
	soloLoad.halt()
	rest := []*proc{procs[1], procs[2], n4}
	for _, p := range rest {
		p.cluster = rest
	}
	t.Logf("%d + %d records acknowledged while the cluster changed", len(load.acked), len(soloLoad.acked))
	verifyReplicas(t, rest, "grow", 6, load.acked)
	verifyForwarded(t, p2, "solo", 3, soloLoad.acked)
	// A removed node's id never comes back.
	expectCode("POST", "/v1/cluster/nodes", `{"id":1,"raft_addr":"127.0.0.1:1"}`, 409, "conflict")
	expectCode("DELETE", "/v1/cluster/nodes/2", "", 409, "conflict") // RF 3 needs 3 nodes
}

// verifyForwarded reads every partition through one node (forwarding to
// the replica's node) and checks each acknowledged record is there once,
// at its acknowledged offset.
func verifyForwarded(t *testing.T, n *proc, topic string, partitions int, acked map[string]ack) {
	t.Helper()
	for part := 0; part < partitions; part++ {
		if problem := checkRecords(n.readPartition(topic, part), part, acked); problem != "" {
			t.Fatalf("%s/%d through node %d: %s", topic, part, n.nodeID, problem)
		}
	}
}

func waitFor(t *testing.T, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, limit)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
