// Package e2e runs the real eddy binary as a separate process and talks to
// it over HTTP, as a user would.
package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/eddy-broker/eddy/internal/testutil"
)

var eddyBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "eddy-e2e-bin")
	if err != nil {
		panic(err)
	}
	eddyBin = filepath.Join(dir, "eddy")
	args := []string{"build", "-o", eddyBin}
	if os.Getenv("EDDY_E2E_RACE") != "" {
		// The nodes under the race detector; the first race stops the node
		// (GORACE from the environment, halt_on_error=1), so a test fails.
		args = append(args, "-race")
	}
	build := exec.Command("go", append(args, "../cmd/eddy")...)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build eddy:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// toolPath finds a program a test runs. Where it is missing the test fails
// in CI, whose .ci/run installs it, and is skipped elsewhere.
func toolPath(t testing.TB, name, install string) string {
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not installed: .ci/run installs it (%s)", name, install)
		}
		t.Skipf("%s is not installed (%s); CI fails here instead", name, install)
	}
	return p
}

// proc is one eddy serve process.
type proc struct {
	tb        testing.TB
	dataDir   string
	confDir   string // EDDY_CONFIG_DIR: where serve writes the CLI profile
	token     string // the bootstrap admin token
	httpAddr  string
	raftAddr  string
	mqttAddr  string
	kafkaAddr string
	args      []string // extra serve arguments
	cmd       *exec.Cmd
	log       *bytes.Buffer
	exited    chan error
	nodeID    int
	peers     string       // for a cluster: 1=host:port,2=...
	env       []string     // extra environment, e.g. EDDY_SYNC_BYTES=...
	cluster   []*proc      // the nodes of its cluster, for diagnostics
	launches  int          // how often it was launched
	join      bool         // joins a running cluster (--join) instead of --peers
	netns     string       // runs in this network namespace (ip netns exec)
	wrap      []string     // a command that execs eddy, e.g. prlimit --nofile=512
	bin       string       // the eddy binary to run; eddyBin unless set
	mountNS   int          // a process whose mount namespace eddy runs in (see smallVolume): read its files through /proc
	https     *http.Client // the client of a node serving HTTPS (http_tls_cert); nil: plain HTTP
}

// client is the HTTP client that talks to the node.
func (p *proc) client() *http.Client {
	if p.https != nil {
		return p.https
	}
	return http.DefaultClient
}

// base is the node's HTTP API URL.
func (p *proc) base() string {
	if p.https != nil {
		return "https://" + p.httpAddr
	}
	return "http://" + p.httpAddr
}

// path is name inside the data directory as the node sees it.
func (p *proc) path(name string) string {
	if p.mountNS != 0 {
		return fmt.Sprintf("/proc/%d/root%s", p.mountNS, filepath.Join(p.dataDir, name))
	}
	return filepath.Join(p.dataDir, name)
}

// diag describes what every node of the cluster says about readiness and
// the topics' leaders, for a failure message.
func (p *proc) diag() string {
	var b strings.Builder
	for _, n := range p.cluster {
		if !n.alive() {
			fmt.Fprintf(&b, "node %d: down\n", n.nodeID)
			continue
		}
		resp, err := http.Get(n.url("/readyz"))
		if err != nil {
			fmt.Fprintf(&b, "node %d: %v\n", n.nodeID, err)
			continue
		}
		r, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var topics struct{ Topics []struct{ Name string } }
		n.do("GET", "/v1/topics", "", nil, &topics)
		fmt.Fprintf(&b, "node %d: readyz %s", n.nodeID, r)
		for _, t := range topics.Topics {
			var ti map[string]any
			n.do("GET", "/v1/topics/"+t.Name, "", nil, &ti)
			fmt.Fprintf(&b, "  %s: %v\n", t.Name, ti["partition_info"])
		}
	}
	return b.String()
}

func newProc(tb testing.TB) *proc {
	return &proc{tb: tb, dataDir: tb.TempDir(), confDir: tb.TempDir(), httpAddr: testutil.FreeAddr(tb), raftAddr: testutil.FreeAddr(tb),
		mqttAddr: testutil.FreeAddr(tb), kafkaAddr: testutil.FreeAddr(tb)}
}

func (p *proc) start() {
	p.tb.Helper()
	for attempt := 0; ; attempt++ {
		p.launch()
		// Only a lone node can move to new ports: a cluster's peers know its.
		if !p.awaitReady(attempt < 3 && p.peers == "" && !p.join) {
			return
		}
		// Another process took a port between FreeAddr and the bind:
		// start over as a new node on new ports, run the same way (its
		// arguments, environment, binary and wrapper: dropped, a test
		// would go on against a node without its limits or TLS).
		p.tb.Logf("port taken before eddy bound it; retrying on new ports")
		args, env, bin, wrap, https := p.args, p.env, p.bin, p.wrap, p.https
		*p = *newProc(p.tb)
		p.args, p.env, p.bin, p.wrap, p.https = args, env, bin, wrap, https
	}
}

// launch starts the process without waiting for it to be ready (a cluster
// node is ready only once a quorum of its peers runs).
func (p *proc) launch() {
	p.tb.Helper()
	p.launches++
	if p.log == nil {
		p.log = &bytes.Buffer{}
	} else {
		fmt.Fprintf(p.log, "--- launch %d ---\n", p.launches)
	}
	args := []string{"serve", "--data-dir", p.dataDir, "--http-addr", p.httpAddr, "--raft-addr", p.raftAddr}
	if p.mqttAddr != "" {
		args = append(args, "--mqtt-addr", p.mqttAddr)
	}
	if p.kafkaAddr != "" {
		args = append(args, "--kafka-addr", p.kafkaAddr)
	}
	args = append(args, p.args...)
	if p.join {
		args = append(args, "--node-id", fmt.Sprint(p.nodeID), "--join")
	} else if p.peers != "" {
		args = append(args, "--node-id", fmt.Sprint(p.nodeID), "--peers", p.peers)
	}
	bin := eddyBin
	if p.bin != "" {
		bin = p.bin
	}
	if p.netns != "" {
		p.cmd = exec.Command("ip", append([]string{"netns", "exec", p.netns, bin}, args...)...)
	} else if len(p.wrap) > 0 {
		p.cmd = exec.Command(p.wrap[0], append(append(p.wrap[1:], bin), args...)...)
	} else {
		p.cmd = exec.Command(bin, args...)
	}
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	p.cmd.Env = append(append(os.Environ(), "EDDY_CONFIG_DIR="+p.confDir), p.env...)
	if err := p.cmd.Start(); err != nil {
		p.tb.Fatal(err)
	}
	p.exited = make(chan error, 1)
	go func(cmd *exec.Cmd, exited chan error) { exited <- cmd.Wait() }(p.cmd, p.exited)
	launch := p.launches
	p.tb.Cleanup(func() {
		p.kill()
		if p.tb.Failed() && launch == 1 && p.log != nil {
			// The node's own account, once, for a failed test, every
			// launch of it (the first launch's cleanup runs last). It
			// checked p.launches, which a restart had moved past 1: a
			// node restarted by its test never told its account.
			out := p.log.String()
			p.tb.Logf("node %s log (last 6 KB):\n%s", p.httpAddr, out[max(0, len(out)-6<<10):])
		}
	})
}

func (p *proc) waitReady() {
	p.tb.Helper()
	p.awaitReady(false)
}

// awaitReady waits until the node is ready. If mayRetry and the node's first
// launch failed because one of its ports was taken, it reports true instead
// of failing the test.
func (p *proc) awaitReady(mayRetry bool) (portTaken bool) {
	p.tb.Helper()
	deadline := time.Now().Add(60 * time.Second)
	last := ""
	for {
		resp, err := p.client().Get(p.url("/readyz"))
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			last = string(b)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				tok, err := os.ReadFile(p.path("admin.token"))
				if err == nil {
					p.token = strings.TrimSpace(string(tok))
					return false
				}
			}
		}
		select {
		case err := <-p.exited:
			if mayRetry && p.launches == 1 && (strings.Contains(p.log.String(), "address already in use") || strings.Contains(p.log.String(), "in use by another process")) {
				return true
			}
			p.tb.Fatalf("eddy exited during start: %v\n%s", err, p.log)
		default:
		}
		if time.Now().After(deadline) {
			p.tb.Fatalf("eddy node %d not ready after 60s (readyz: %s)\ncluster:\n%s\nits log:\n%s", p.nodeID, last, p.diag(), p.log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// alive reports whether the process is running.
func (p *proc) alive() bool { return p.cmd != nil && p.cmd.ProcessState == nil }

func (p *proc) kill() {
	if p.alive() {
		p.cmd.Process.Signal(syscall.SIGKILL)
		<-p.exited
	}
}

// newCluster starts n nodes that form one cluster, each with env.
func newCluster(tb testing.TB, n int, env ...string) []*proc {
	tb.Helper()
	return newClusterWith(tb, n, func(p *proc) { p.env = env })
}

// newClusterWith starts n nodes that form one cluster, each set up by
// setup before it starts.
func newClusterWith(tb testing.TB, n int, setup func(p *proc)) []*proc {
	tb.Helper()
	for attempt := 0; ; attempt++ {
		if procs := launchCluster(tb, n, attempt < 3, setup); procs != nil {
			return procs
		}
		tb.Logf("a port was taken before eddy bound it; starting the cluster again on new ports")
	}
}

// launchCluster starts a cluster; it returns nil if mayRetry and a node
// could not bind a port another process took.
func launchCluster(tb testing.TB, n int, mayRetry bool, setup func(p *proc)) []*proc {
	tb.Helper()
	procs := make([]*proc, n)
	var peers []string
	for i := range procs {
		procs[i] = newProc(tb)
		setup(procs[i])
		procs[i].nodeID = i + 1
		peers = append(peers, fmt.Sprintf("%d=%s", i+1, procs[i].raftAddr))
	}
	for _, p := range procs {
		p.peers = strings.Join(peers, ",")
		p.cluster = procs
		p.launch()
	}
	for _, p := range procs {
		if p.awaitReady(mayRetry) {
			for _, q := range procs {
				q.kill()
			}
			return nil
		}
	}
	// Every node registers itself; wait until all are known.
	deadline := time.Now().Add(30 * time.Second)
	for {
		var c struct{ Nodes []struct{ ID int } }
		if code, err := procs[0].do("GET", "/v1/cluster", "", nil, &c); err == nil && code == 200 && len(c.Nodes) == n {
			return procs
		}
		if time.Now().After(deadline) {
			tb.Fatalf("cluster did not form")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (p *proc) url(path string) string { return p.base() + path }

func (p *proc) do(method, path, ctype string, body []byte, out any) (int, error) {
	req, _ := http.NewRequest(method, p.url(path), bytes.NewReader(body))
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	req.Header.Set("Authorization", "Bearer "+p.token)
	resp, err := p.client().Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return resp.StatusCode, fmt.Errorf("decode %q: %w", b, err)
		}
	}
	return resp.StatusCode, nil
}

func (p *proc) mustCreateTopic(name string, partitions int) {
	p.tb.Helper()
	body := fmt.Sprintf(`{"name":%q,"partitions":%d}`, name, partitions)
	var out map[string]any
	if code, err := p.do("POST", "/v1/topics", "application/json", []byte(body), &out); err != nil || code != 201 {
		p.tb.Fatalf("create topic: %d %v %v", code, err, out)
	}
}

type fetchedRecord struct {
	Offset int64           `json:"offset"`
	Key    json.RawMessage `json:"key"`
	Value  json.RawMessage `json:"value"`
}

// readPartition returns every record of a partition, in offset order.
func (p *proc) readPartition(topic string, part int) []fetchedRecord {
	p.tb.Helper()
	var all []fetchedRecord
	off := int64(0)
	for {
		var fr struct {
			Records       []fetchedRecord `json:"records"`
			NextOffset    int64           `json:"next_offset"`
			HighWatermark int64           `json:"high_watermark"`
		}
		code, err := p.do("GET", fmt.Sprintf("/v1/topics/%s/partitions/%d/records?offset=%d&max=1000", topic, part, off), "", nil, &fr)
		if err != nil || code != 200 {
			p.tb.Fatalf("fetch: %d %v", code, err)
		}
		all = append(all, fr.Records...)
		if fr.NextOffset >= fr.HighWatermark || len(fr.Records) == 0 {
			return all
		}
		off = fr.NextOffset
	}
}

func jsonString(raw json.RawMessage) string {
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return strings.TrimSpace(string(raw))
	}
	return s
}
