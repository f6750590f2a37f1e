package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// netLab is a set of network namespaces, one per node, wired to the root
// namespace with two veth pairs each: one carries Raft (and the node's
// default route, so node-to-node traffic is routed through the root
// namespace), the other the HTTP API. Cutting a node's Raft link isolates
// it from its peers while the test can still send it requests.
type netLab struct {
	t      *testing.T
	tag    string
	net    int // second octet of 10.N.x.x
	nodes  int
	fwdWas string
}

func run(t *testing.T, args ...string) {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func newNetLab(t *testing.T, nodes int) *netLab {
	if os.Getuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("the partition test needs root for ip netns (CI runs as root)")
		}
		t.Skip("needs root for ip netns; CI runs it as root")
	}
	l := &netLab{t: t, tag: fmt.Sprintf("%04x", rand.IntN(1<<16)), net: 200 + rand.IntN(50), nodes: nodes}
	b, _ := os.ReadFile("/proc/sys/net/ipv4/ip_forward")
	l.fwdWas = strings.TrimSpace(string(b))
	t.Cleanup(l.teardown)
	run(t, "sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward")
	for i := 1; i <= nodes; i++ {
		ns := l.ns(i)
		run(t, "ip", "netns", "add", ns)
		run(t, "ip", "-n", ns, "link", "set", "lo", "up")
		for _, link := range []struct {
			name   string
			subnet int
		}{{l.raftLink(i), 2 * i}, {l.httpLink(i), 2*i + 1}} {
			peer := link.name + "n"
			run(t, "ip", "link", "add", link.name, "type", "veth", "peer", "name", peer)
			run(t, "ip", "link", "set", peer, "netns", ns)
			run(t, "ip", "addr", "add", fmt.Sprintf("10.%d.%d.1/24", l.net, link.subnet), "dev", link.name)
			run(t, "ip", "link", "set", link.name, "up")
			run(t, "ip", "-n", ns, "addr", "add", fmt.Sprintf("10.%d.%d.2/24", l.net, link.subnet), "dev", peer)
			run(t, "ip", "-n", ns, "link", "set", peer, "up")
		}
		run(t, "ip", "-n", ns, "route", "add", "default", "via", fmt.Sprintf("10.%d.%d.1", l.net, 2*i))
	}
	return l
}

func (l *netLab) ns(i int) string       { return fmt.Sprintf("eddy%s-%d", l.tag, i) }
func (l *netLab) raftLink(i int) string { return fmt.Sprintf("er%s%d", l.tag, i) }
func (l *netLab) httpLink(i int) string { return fmt.Sprintf("eh%s%d", l.tag, i) }
func (l *netLab) raftAddr(i int) string { return fmt.Sprintf("10.%d.%d.2:7100", l.net, 2*i) }
func (l *netLab) httpAddr(i int) string { return fmt.Sprintf("10.%d.%d.2:8080", l.net, 2*i+1) }

// cut takes node i's Raft link down: its peers cannot reach it, nor it them.
func (l *netLab) cut(i int)  { run(l.t, "ip", "link", "set", l.raftLink(i), "down") }
func (l *netLab) heal(i int) { run(l.t, "ip", "link", "set", l.raftLink(i), "up") }

func (l *netLab) teardown() {
	for i := 1; i <= l.nodes; i++ {
		exec.Command("ip", "netns", "del", l.ns(i)).Run() // removes the veth pairs too
		exec.Command("ip", "link", "del", l.raftLink(i)).Run()
		exec.Command("ip", "link", "del", l.httpLink(i)).Run()
	}
	if l.fwdWas != "" {
		os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte(l.fwdWas+"\n"), 0o644)
	}
}

// newNetnsCluster starts n nodes, node i in namespace i of the lab.
func newNetnsCluster(t *testing.T, l *netLab) []*proc {
	procs := make([]*proc, l.nodes)
	var peers []string
	for i := range procs {
		p := &proc{tb: t, dataDir: t.TempDir(), confDir: t.TempDir(), nodeID: i + 1, netns: l.ns(i + 1),
			httpAddr: l.httpAddr(i + 1), raftAddr: l.raftAddr(i + 1)}
		procs[i] = p
		peers = append(peers, fmt.Sprintf("%d=%s", i+1, p.raftAddr))
	}
	for _, p := range procs {
		p.peers, p.cluster = strings.Join(peers, ","), procs
		p.launch()
	}
	for _, p := range procs {
		p.waitReady()
	}
	return procs
}

// TestClusterNetworkPartition: the leader of a partition (and of the
// controller, when it is the same node) is cut off from the other two by
// taking its network link down. The majority elects a new leader and keeps
// accepting writes; the cut-off node acknowledges no write (it answers a
// retriable error, not a hang); after healing, every replica converges to
// the same bytes and every acknowledged write is there exactly once.
func TestClusterNetworkPartition(t *testing.T) {
	lab := newNetLab(t, 3)
	procs := newNetnsCluster(t, lab)
	if code, err := procs[0].do("POST", "/v1/topics", "application/json", []byte(`{"name":"split","partitions":1,"replication_factor":3}`), nil); err != nil || code != 201 {
		t.Fatalf("create: %d %v", code, err)
	}
	load := startLoad(procs, "split", 3)
	time.Sleep(time.Second)
	load.halt()
	acked := load.acked
	leader := leaderOf(t, procs, "split", 0)
	isolated := procs[leader-1]
	var majority []*proc
	for _, p := range procs {
		if p != isolated {
			majority = append(majority, p)
		}
	}
	load = startLoad(majority, "split", 3)
	time.Sleep(300 * time.Millisecond)
	// Cut the node that leads split/0 by its own account, at once.
	var ti topicInfo
	if code, err := isolated.do("GET", "/v1/topics/split", "", nil, &ti); err != nil || code != 200 || ti.PartitionInfo[0].Leader != leader {
		t.Fatalf("node %d does not see itself as the leader: %d %v %+v", leader, code, err, ti)
	}
	cut := time.Now()
	lab.cut(leader)
	t.Logf("node %d (leader of split/0) cut off", leader)
	t.Cleanup(func() {
		if t.Failed() {
			l := isolated.log.String()
			t.Logf("the cut-off node's log (tail):\n%s", l[max(0, len(l)-5000):])
		}
	})

	// Writes sent to the cut-off node: none may be acknowledged and then
	// lost; each gets an answer within the request timeout.
	client := &http.Client{Timeout: 40 * time.Second}
	var minority struct {
		sync.Mutex
		acked  map[string]ack
		codes  map[string]int
		counts int
	}
	minority.acked, minority.codes = map[string]ack{}, map[string]int{}
	var wg sync.WaitGroup
	for c := 0; c < 2; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seq := 0; time.Since(cut) < 8*time.Second; seq++ {
				v := fmt.Sprintf("minority-%d-%d", c, seq)
				req, _ := http.NewRequest("POST", isolated.url("/v1/topics/split/records"), bytes.NewReader([]byte(fmt.Sprintf(`{"records":[{"value":%q}]}`, v))))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Authorization", "Bearer "+isolated.token)
				start := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					t.Errorf("the cut-off node left a write unanswered for %v: %v", time.Since(start), err)
					return
				}
				var res struct {
					Offsets []struct {
						Partition int   `json:"partition"`
						Offset    int64 `json:"offset"`
					} `json:"offsets"`
					Error struct{ Code string } `json:"error"`
				}
				json.NewDecoder(resp.Body).Decode(&res)
				resp.Body.Close()
				minority.Lock()
				minority.counts++
				if resp.StatusCode == 200 && len(res.Offsets) == 1 {
					minority.acked[v] = ack{res.Offsets[0].Partition, res.Offsets[0].Offset}
				} else {
					minority.codes[fmt.Sprintf("%d %s", resp.StatusCode, res.Error.Code)]++
				}
				minority.Unlock()
				time.Sleep(100 * time.Millisecond)
			}
		}()
	}

	deadline := time.Now().Add(30 * time.Second)
	for !load.ackedSentAfter(cut) {
		if time.Now().After(deadline) {
			t.Fatalf("the majority acknowledged no write within 30s of the cut\n%s", procs[0].diag())
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("majority acknowledged a write sent %v after the cut", time.Since(cut).Round(time.Millisecond))
	waitFor(t, "the majority reports a new leader", 20*time.Second, func() bool {
		var ti topicInfo
		code, err := majority[0].do("GET", "/v1/topics/split", "", nil, &ti)
		return err == nil && code == 200 && ti.PartitionInfo[0].Leader > 0 && ti.PartitionInfo[0].Leader != leader
	})
	wg.Wait()
	time.Sleep(time.Second)

	lab.heal(leader)
	healed := time.Now()
	time.Sleep(2 * time.Second)
	load.halt()
	t.Logf("cut-off node answered %d writes: %d acknowledged, errors %v", minority.counts, len(minority.acked), minority.codes)
	if minority.counts == 0 {
		t.Fatal("no write reached the cut-off node")
	}
	for v, a := range acked {
		load.acked[v] = a
	}
	for v, a := range minority.acked {
		load.acked[v] = a // must survive like any acknowledged write
	}
	verifyReplicas(t, procs, "split", 1, load.acked)
	t.Logf("converged %v after healing; %d writes acknowledged in all", time.Since(healed).Round(time.Millisecond), len(load.acked))
}
