package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// The Kafka listener against Debian's kcat (librdkafka 2.0.2), SASL/PLAIN.

// kcat runs kcat against the node as tenant with token; stdin feeds -P.
func (p *proc) kcat(tenant, token, stdin string, args ...string) (string, error) {
	p.tb.Helper()
	base := []string{"-b", p.kafkaAddr, "-X", "security.protocol=SASL_PLAINTEXT", "-X", "sasl.mechanisms=PLAIN",
		"-X", "sasl.username=" + tenant, "-X", "sasl.password=" + token}
	cmd := exec.Command("kcat", append(base, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestKafkaKcat: kcat produces (idempotent, acks=all) with every codec and
// reads it all back, in order per partition, also over HTTP; metadata
// lists the tenant's topics and the node; a wrong password, another
// tenant's token or no SASL at all are refused.
func TestKafkaKcat(t *testing.T) {
	p := newProc(t)
	p.start()
	p.mustCreateTopic("k", 3)
	want := map[string]bool{}
	for _, codec := range []string{"none", "gzip", "snappy", "lz4", "zstd"} {
		var in strings.Builder
		for i := range 200 {
			v := fmt.Sprintf("%s-%03d", codec, i)
			want[v] = true
			fmt.Fprintf(&in, "key-%d:%s\n", i%7, v)
		}
		if out, err := p.kcat("default", p.token, in.String(), "-P", "-t", "k", "-K", ":", "-z", codec,
			"-X", "acks=all", "-X", "enable.idempotence=true"); err != nil {
			t.Fatalf("produce %s: %v %s", codec, err, out)
		}
	}
	out, err := p.kcat("default", p.token, "", "-C", "-t", "k", "-o", "beginning", "-e", "-q", "-f", "%p %o %k %s\n")
	if err != nil {
		t.Fatalf("consume: %v %s", err, out)
	}
	got := map[string]bool{}
	last := map[string]int{}
	keyPart := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if len(f) != 4 {
			t.Fatalf("consumed line %q", line)
		}
		var off int
		fmt.Sscan(f[1], &off)
		if prev, ok := last[f[0]]; ok && off <= prev {
			t.Fatalf("partition %s: offset %d after %d", f[0], off, prev)
		}
		last[f[0]] = off
		if kp, ok := keyPart[f[2]]; ok && kp != f[0] {
			t.Fatalf("key %s in partitions %s and %s", f[2], kp, f[0])
		}
		keyPart[f[2]] = f[0]
		if got[f[3]] {
			t.Fatalf("%s read twice", f[3])
		}
		got[f[3]] = true
	}
	if len(got) != len(want) {
		t.Fatalf("read %d of %d records", len(got), len(want))
	}
	// The records are the HTTP API's records too.
	if n := len(p.readPartition("k", 0)) + len(p.readPartition("k", 1)) + len(p.readPartition("k", 2)); n != len(want) {
		t.Fatalf("HTTP reads %d records", n)
	}

	out, err = p.kcat("default", p.token, "", "-L")
	if err != nil || !strings.Contains(out, `topic "k" with 3 partitions`) || !strings.Contains(out, "broker 1 at "+p.kafkaAddr) {
		t.Fatalf("metadata: %v\n%s", err, out)
	}

	// Refusals: a bad token, a token of another tenant, no SASL.
	other := p.tenantToken("other", "admin")
	for name, args := range map[string][]string{
		"bad password":        {"default", "not-a-jwt"},
		"another tenant's":    {"default", other},
		"tenant that is none": {"ghost", p.token},
	} {
		out, err := p.kcat(args[0], args[1], "", "-L", "-m", "2")
		if err == nil || !strings.Contains(out, "SASL authentication error") {
			t.Errorf("%s: %v\n%s", name, err, out)
		}
	}
	plain := exec.Command("kcat", "-b", p.kafkaAddr, "-m", "2", "-L")
	if out, err := plain.CombinedOutput(); err == nil {
		t.Errorf("without SASL: %s", out)
	}
	// The other tenant sees none of default's topics, and k is unknown.
	out, err = p.kcat("other", other, "", "-L")
	if err != nil || strings.Contains(out, `topic "k"`) || !strings.Contains(out, "0 topics") {
		t.Fatalf("other tenant's metadata: %v\n%s", err, out)
	}
	out, _ = p.kcat("other", other, "x\n", "-P", "-t", "k", "-X", "message.timeout.ms=3000")
	if !strings.Contains(out, "Delivery failed") {
		t.Fatalf("other tenant producing to k: %s", out)
	}
	if n := len(p.readPartition("k", 0)) + len(p.readPartition("k", 1)) + len(p.readPartition("k", 2)); n != len(want) {
		t.Fatalf("after the other tenant's produce, k holds %d records", n)
	}
	keys := make([]string, 0, len(last))
	for k := range last {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	t.Logf("partitions %v, last offsets %v", keys, last)
}

// TestKafkaConsumerGroup: two kcat -G members split a topic's partitions
// and read every record once between them; their commits are the group's
// offsets over HTTP too (lag 0), and a later member finds nothing left.
func TestKafkaConsumerGroup(t *testing.T) {
	p := newProc(t)
	p.start()
	p.mustCreateTopic("g", 4)
	var in strings.Builder
	for i := range 1000 {
		fmt.Fprintf(&in, "k%d:v%d\n", i, i)
	}
	if out, err := p.kcat("default", p.token, in.String(), "-P", "-t", "g", "-K", ":"); err != nil {
		t.Fatalf("produce: %v %s", err, out)
	}
	type result struct {
		out string
		err error
	}
	res := make(chan result, 2)
	for i := range 2 {
		go func() {
			out, err := p.kcat("default", p.token, "", "-G", "grp", "g", "-o", "beginning", "-e", "-q", "-f", "%p %s\n")
			res <- result{out, err}
		}()
		if i == 0 {
			time.Sleep(time.Second) // the second joins a group that has a member
		}
	}
	seen := map[string]bool{}
	parts := []map[string]bool{{}, {}}
	for i := range 2 {
		r := <-res
		if r.err != nil {
			t.Fatalf("member: %v %s", r.err, r.out)
		}
		for _, line := range strings.Split(strings.TrimSpace(r.out), "\n") {
			f := strings.Fields(line)
			if len(f) != 2 {
				continue
			}
			if seen[f[1]] {
				t.Fatalf("%s read twice", f[1])
			}
			seen[f[1]] = true
			parts[i][f[0]] = true
		}
	}
	if len(seen) != 1000 {
		t.Fatalf("the members read %d of 1000 records", len(seen))
	}
	if len(parts[0]) == 0 || len(parts[1]) == 0 {
		t.Fatalf("the partitions were not split: %v", parts)
	}
	var g struct {
		Protocol   string
		Lag        int64
		Partitions []struct {
			Committed *int64 `json:"committed_offset"`
		}
	}
	if code, err := p.do("GET", "/v1/groups/grp", "", nil, &g); err != nil || code != 200 {
		t.Fatalf("group over HTTP: %d %v", code, err)
	}
	total := int64(0)
	for _, pt := range g.Partitions {
		if pt.Committed != nil {
			total += *pt.Committed
		}
	}
	if total != 1000 || g.Lag != 0 || g.Protocol != "kafka" {
		t.Fatalf("over HTTP: committed offsets add up to %d, lag %d, protocol %q; want 1000, 0, kafka", total, g.Lag, g.Protocol)
	}
	out, err := p.kcat("default", p.token, "", "-G", "grp", "g", "-e", "-q")
	if err != nil || strings.TrimSpace(out) != "" {
		t.Fatalf("a later member: %v %q", err, out)
	}
}

// TestKafkaPython: confluent-kafka for Python (librdkafka) produces,
// idempotent with lz4, and reads everything back as a consumer group
// member whose commit leaves the group's lag at 0. A transactional
// producer is refused at once, with a fatal error that says why (not a
// coordinator that never comes, which librdkafka waits out).
func TestKafkaPython(t *testing.T) {
	p := newProc(t)
	p.start()
	p.mustCreateTopic("py", 3)
	out, err := exec.Command("/usr/bin/python3", "testdata/kafka_python.py", p.kafkaAddr, p.token, "py", "500").CombinedOutput()
	if err != nil {
		t.Fatalf("python: %v\n%s", err, out)
	}
	var res struct {
		Delivered, Read int
		Failed          []string
		All             bool
		Txn             struct {
			Error, Message string
			Fatal          bool
			Seconds        float64
		}
	}
	if err := json.Unmarshal(out[bytes.LastIndexByte(bytes.TrimSpace(out), '\n')+1:], &res); err != nil {
		t.Fatalf("python said: %s", out)
	}
	if res.Delivered != 500 || res.Read != 500 || !res.All || len(res.Failed) > 0 {
		t.Fatalf("python: %+v", res)
	}
	// 20 s is init_transactions' own timeout: a refusal comes well before.
	if tx := res.Txn; tx.Error != "TRANSACTIONAL_ID_AUTHORIZATION_FAILED" || !tx.Fatal ||
		!strings.Contains(tx.Message, "transactions are not supported") || tx.Seconds >= 10 {
		t.Fatalf("a transactional producer: %+v", tx)
	}
	var g struct{ Lag int64 }
	if code, err := p.do("GET", "/v1/groups/py-group", "", nil, &g); err != nil || code != 200 || g.Lag != 0 {
		t.Fatalf("the python group over HTTP: %d %v lag %d", code, err, g.Lag)
	}
}

// npmCI installs a test client's npm packages from its lock file (once),
// and returns its directory.
func npmCI(tb testing.TB, dir, pkg string) string {
	tb.Helper()
	if _, err := os.Stat(filepath.Join(dir, "node_modules", pkg)); err != nil {
		out, err := exec.Command("npm", "ci", "--prefix", dir, "--no-audit", "--no-fund").CombinedOutput()
		if err != nil {
			tb.Fatalf("npm ci (%s): %v\n%s", pkg, err, out)
		}
	}
	return dir
}

// TestKafkaJS: kafkajs (npm, pinned in testdata/kafkajs) creates a topic
// with its admin client, produces idempotently with gzip, and a consumer
// group of two members reads every record and commits; Eddy sees the
// topic and the group with lag 0.
func TestKafkaJS(t *testing.T) {
	dir := npmCI(t, "testdata/kafkajs", "kafkajs")
	p := newProc(t)
	p.start()
	cmd := exec.Command("node", filepath.Join(dir, "client.js"), p.kafkaAddr, p.token, "js", "500")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kafkajs: %v\n%s\n%s", err, out, stderr.Bytes())
	}
	var res struct {
		Created, Listed, All bool
		Partitions, Sent     int
		Read                 int
		Committed            int64
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("kafkajs said: %s\n%s", out, stderr.Bytes())
	}
	if !res.Created || !res.Listed || res.Partitions != 3 || res.Sent != 500 || res.Read != 500 || !res.All || res.Committed != 500 {
		t.Fatalf("kafkajs: %+v\n%s", res, stderr.Bytes())
	}
	var topic struct{ Partitions int }
	if code, err := p.do("GET", "/v1/topics/js", "", nil, &topic); err != nil || code != 200 || topic.Partitions != 3 {
		t.Fatalf("the kafkajs topic over HTTP: %d %v %+v", code, err, topic)
	}
	var g struct{ Lag int64 }
	if code, err := p.do("GET", "/v1/groups/js-group", "", nil, &g); err != nil || code != 200 || g.Lag != 0 {
		t.Fatalf("the kafkajs group over HTTP: %d %v lag %d", code, err, g.Lag)
	}
}
