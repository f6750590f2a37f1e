package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/eddy-broker/eddy/internal/testutil"
)

// eddyCLI runs the eddy binary as a client of p.
func (p *proc) cli(stdin string, args ...string) (string, string, error) {
	// The token comes from the profile eddy serve wrote on its first start.
	cmd := exec.Command(eddyBin, append(args, "--server", p.base())...)
	cmd.Env = append(os.Environ(), "EDDY_CONFIG_DIR="+p.confDir)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String(), errb.String(), err
}

func (p *proc) mustCLI(stdin string, args ...string) string {
	p.tb.Helper()
	out, errOut, err := p.cli(stdin, args...)
	if err != nil {
		p.tb.Fatalf("eddy %v: %v\n%s%s", args, err, out, errOut)
	}
	return out
}

func TestCLI(t *testing.T) {
	p := newProc(t)
	p.start()
	if out := p.mustCLI("", "topic", "create", "cli", "--partitions", "2", "--config", "retention.ms=3600000"); !strings.Contains(out, "created topic cli with 2 partition(s)") {
		t.Fatalf("create: %s", out)
	}
	if _, errOut, err := p.cli("", "topic", "create", "cli"); err == nil || !strings.Contains(errOut, "topic_exists") {
		t.Fatalf("second create: %v %s", err, errOut)
	}
	if _, errOut, err := p.cli("", "topic", "create", "bad", "--config", "nope=1"); err == nil || !strings.Contains(errOut, "unknown topic config") {
		t.Fatalf("bad config: %v %s", err, errOut)
	}
	if out := p.mustCLI("", "topic", "list"); !strings.Contains(out, "cli") || !strings.Contains(out, "NAME") {
		t.Fatalf("list: %s", out)
	}
	// Raw lines to partition 1 with a key; JSON records by key.
	_, errOut, err := p.cli("one\ntwo\n\nthree\n", "produce", "cli", "--partition", "0", "--key", "k")
	if err != nil || !strings.Contains(errOut, "produced 3 records") {
		t.Fatalf("produce raw: %v %s", err, errOut)
	}
	p.mustCLI(`{"key":"dev-1","value":{"t":1}}`+"\n"+`{"key":"dev-1","value":{"t":2},"headers":{"u":"C"}}`+"\n", "produce", "cli", "--format", "json")
	if _, errOut, err := p.cli("not json\n", "produce", "cli", "--format", "json"); err == nil || !strings.Contains(errOut, "line 1") {
		t.Fatalf("bad json line: %v %s", err, errOut)
	}
	// A file with a progress bar (not a terminal here, so none) and many lines.
	f := filepath.Join(t.TempDir(), "in.txt")
	var b strings.Builder
	for i := 0; i < 1200; i++ {
		b.WriteString("line\n")
	}
	os.WriteFile(f, []byte(b.String()), 0o644)
	if _, errOut, err := p.cli("", "produce", "cli", "--file", f, "--partition", "0"); err != nil || !strings.Contains(errOut, "produced 1200 records") {
		t.Fatalf("produce file: %v %s", err, errOut)
	}

	text := p.mustCLI("", "consume", "cli", "--partition", "0", "--from-beginning", "--format", "text", "--max", "3")
	if text != "one\ntwo\nthree\n" {
		t.Fatalf("consume text: %q", text)
	}
	jsonOut := p.mustCLI("", "consume", "cli", "--from-beginning", "--format", "json")
	lines := strings.Split(strings.TrimSpace(jsonOut), "\n")
	if len(lines) != 3+2+1200 {
		t.Fatalf("consume json: %d lines", len(lines))
	}
	var rec struct {
		Partition int32           `json:"partition"`
		Offset    int64           `json:"offset"`
		Key       string          `json:"key"`
		Value     json.RawMessage `json:"value"`
	}
	found := false
	for _, l := range lines {
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		if rec.Key == "dev-1" && string(rec.Value) == `{"t":2}` {
			found = true
		}
	}
	if !found {
		t.Fatalf("JSON record not found in %s", jsonOut[:200])
	}
	if out := p.mustCLI("", "consume", "cli", "--partition", "0", "--offset", "1", "--max", "1", "--format", "text"); out != "two\n" {
		t.Fatalf("consume --offset --max: %q", out)
	}
	if _, errOut, _ := p.cli("", "consume", "cli"); !strings.Contains(errOut, "no new records") {
		t.Fatalf("consume at end: %s", errOut)
	}
	desc := p.mustCLI("", "topic", "describe", "cli")
	if !regexp.MustCompile(`\bretention\.ms +3600000\n`).MatchString(desc) || !strings.Contains(desc, "HIGH-WATERMARK") {
		t.Fatalf("describe: %s", desc)
	}

	// bench prints the figures as one JSON object.
	var r map[string]any
	out := p.mustCLI("", "bench", "produce", "--topic", "b", "--records", "2000", "--size", "100", "--batch", "50", "--concurrency", "4", "--json")
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("bench json: %v %s", err, out)
	}
	for _, k := range []string{"records_per_sec", "mb_per_sec", "p50_ms", "p99_ms"} {
		if _, ok := r[k].(float64); !ok || r["records"] != float64(2000) {
			t.Fatalf("bench produce output lacks %s or records != 2000: %s", k, out)
		}
	}
	for _, format := range []string{"json", "batches"} {
		out = p.mustCLI("", "bench", "consume", "--topic", "b", "--format", format, "--json")
		r = nil
		if err := json.Unmarshal([]byte(out), &r); err != nil || r["records"] != float64(2000) {
			t.Fatalf("bench consume %s: %v %s", format, err, out)
		}
	}
	if out := p.mustCLI("", "topic", "delete", "cli"); !strings.Contains(out, "deleted") {
		t.Fatalf("delete: %s", out)
	}
	if _, errOut, err := p.cli("", "topic", "describe", "cli"); err == nil || !strings.Contains(errOut, "not_found") {
		t.Fatalf("describe deleted: %v %s", err, errOut)
	}
	// A client with no server gets a clear error and a non-zero exit.
	// (With p's profile for its token: without one, the CLI stops at the
	// missing token before it dials.)
	cmd := exec.Command(eddyBin, "topic", "list", "--server", "http://127.0.0.1:1")
	cmd.Env = append(os.Environ(), "EDDY_CONFIG_DIR="+p.confDir)
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "cannot reach") {
		t.Fatalf("no server: %v %s", err, out)
	}
}

// The Dockerfile cannot be built here (no engine); check what it promises.
func TestDockerfile(t *testing.T) {
	b, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	d := string(b)
	for _, want := range []string{"AS build", "CGO_ENABLED=0", "GOARCH=$TARGETARCH", "USER 65532", "VOLUME /var/lib/eddy", "EXPOSE 8080", "ENTRYPOINT [\"/usr/local/bin/eddy\"]", "--platform=$BUILDPLATFORM"} {
		if !strings.Contains(d, want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
}

func TestServeRefusesBadConfig(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "eddy.yaml")
	os.WriteFile(cfg, []byte("http_addr: 127.0.0.1:0\nunknown_key: 1\n"), 0o644)
	out, err := exec.Command(eddyBin, "serve", "--config", cfg).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "unknown_key") {
		t.Fatalf("unknown key: %v %s", err, out)
	}
	out, err = exec.Command(eddyBin, "serve", "--raft-addr", "0.0.0.0:7100").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "wildcard") {
		t.Fatalf("wildcard raft addr: %v %s", err, out)
	}
	// The Raft address is bound to the data directory.
	p := newProc(t)
	p.start()
	p.cmd.Process.Signal(os.Interrupt)
	<-p.exited
	other := testutil.FreeAddr(t)
	out, err = exec.Command(eddyBin, "serve", "--data-dir", p.dataDir, "--http-addr", testutil.FreeAddr(t), "--raft-addr", other).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "Raft address cannot change") {
		t.Fatalf("changed raft address: %v %s", err, out)
	}
	// Nor can the node's id.
	out, err = exec.Command(eddyBin, "serve", "--data-dir", p.dataDir, "--http-addr", testutil.FreeAddr(t), "--raft-addr", p.raftAddr, "--node-id", "2").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "belongs to node 1, not node 2") {
		t.Fatalf("changed node id: %v %s", err, out)
	}
}

// TestSystemdUnit: systemd-analyze verify accepts the unit (with this
// build's binary in ExecStart), and the unit keeps its hardening.
func TestSystemdUnit(t *testing.T) {
	b, err := os.ReadFile("../deploy/systemd/eddy.service")
	if err != nil {
		t.Fatal(err)
	}
	unit := string(b)
	for _, want := range []string{"DynamicUser=yes", "ProtectSystem=strict", "ReadWritePaths=/var/lib/eddy", "LimitNOFILE=", "Restart=on-failure", "ExecReload=/bin/kill -HUP $MAINPID"} {
		if !strings.Contains(unit, want) {
			t.Errorf("the unit lacks %s", want)
		}
	}
	f := filepath.Join(t.TempDir(), "eddy.service")
	os.WriteFile(f, []byte(strings.ReplaceAll(unit, "/usr/local/bin/eddy ", eddyBin+" ")), 0o644)
	if out, err := exec.Command("systemd-analyze", "verify", f).CombinedOutput(); err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// TestCLIOutputAndErrors: -o json and yaml print the API's field names;
// an unknown subcommand fails with a suggestion; a missing token names its
// fix; eddy version names the build.
func TestCLIOutputAndErrors(t *testing.T) {
	p := newProc(t)
	p.start()
	p.mustCreateTopic("out", 2)
	js := p.mustCLI("", "topic", "list", "-o", "json")
	var list struct {
		Topics []struct {
			Name       string `json:"name"`
			Partitions int    `json:"partitions"`
		} `json:"topics"`
	}
	if err := json.Unmarshal([]byte(js), &list); err != nil || len(list.Topics) != 1 || list.Topics[0].Name != "out" || list.Topics[0].Partitions != 2 {
		t.Fatalf("topic list -o json: %v %s", err, js)
	}
	if y := p.mustCLI("", "topic", "describe", "out", "-o", "yaml"); !strings.Contains(y, "name: out") || !strings.Contains(y, "partitions: 2") {
		t.Fatalf("topic describe -o yaml:\n%s", y)
	}
	if y := p.mustCLI("", "tenant", "list", "-o", "yaml"); !strings.Contains(y, "name: default") || strings.Contains(y, "e+") {
		t.Fatalf("tenant list -o yaml (integers stay integers):\n%s", y)
	}
	if _, errOut, err := p.cli("", "topic", "list", "-o", "xml"); err == nil || !strings.Contains(errOut, `unknown output "xml"`) {
		t.Fatalf("-o xml: %v %s", err, errOut)
	}
	if _, errOut, err := p.cli("", "topic", "crate", "x"); err == nil || !strings.Contains(errOut, `did you mean "create"?`) {
		t.Fatalf("topic crate: %v %s", err, errOut)
	}
	cmd := exec.Command(eddyBin, "topic", "list", "--server", "http://"+p.httpAddr)
	cmd.Env = append(os.Environ(), "EDDY_CONFIG_DIR="+t.TempDir(), "EDDY_TOKEN=")
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "no token: pass --token, set EDDY_TOKEN") {
		t.Fatalf("no token: %v %s", err, out)
	}
	if _, errOut, err := p.cli("", "topic", "list", "--profile", "nope"); err == nil || !strings.Contains(errOut, `profile "nope" does not exist`) {
		t.Fatalf("unknown profile: %v %s", err, errOut)
	}
	if v := p.mustCLI("", "version"); !strings.HasPrefix(v, "eddy ") || !strings.Contains(v, "commit ") {
		t.Fatalf("version: %s", v)
	}

	// -o on the commands that change things, produce, consume, bench and
	// the local ones: the API's answer, its field names.
	var created struct {
		Name              string `json:"name"`
		ReplicationFactor int    `json:"replication_factor"`
	}
	if js := p.mustCLI("", "topic", "create", "made", "-o", "json"); json.Unmarshal([]byte(js), &created) != nil || created.Name != "made" || created.ReplicationFactor != 1 {
		t.Fatalf("topic create -o json: %s", js)
	}
	var tok struct {
		Token     string `json:"token"`
		ExpiresAt string `json:"expires_at"`
	}
	if js := p.mustCLI("", "token", "issue", "--scopes", "consume:made", "-o", "json"); json.Unmarshal([]byte(js), &tok) != nil || tok.Token == "" || tok.ExpiresAt == "" {
		t.Fatalf("token issue -o json: %s", js)
	}
	lines := strings.Split(strings.TrimSpace(p.mustCLI("a\nb\nc\n", "produce", "made", "--batch", "2", "-o", "json")), "\n")
	var answer struct {
		Offsets []struct {
			Partition int32 `json:"partition"`
			Offset    int64 `json:"offset"`
		} `json:"offsets"`
	}
	if len(lines) != 2 || json.Unmarshal([]byte(lines[1]), &answer) != nil || len(answer.Offsets) != 1 || answer.Offsets[0].Offset != 2 {
		t.Fatalf("produce -o json (an answer per request of 2): %q", lines)
	}
	if y := p.mustCLI("", "consume", "made", "--from-beginning", "--output", "yaml"); strings.Count(y, "---\n") != 3 || !strings.Contains(y, "offset: 2") || strings.Contains(y, "e+") {
		t.Fatalf("consume --output yaml (timestamps as integers):\n%s", y)
	}
	if y := p.mustCLI("", "bench", "produce", "--topic", "made", "--records", "10", "--batch", "5", "-o", "yaml"); !strings.Contains(y, "records: 10") {
		t.Fatalf("bench produce -o yaml:\n%s", y)
	}
	if js := p.mustCLI("", "topic", "delete", "made", "-o", "json"); js != "" {
		t.Fatalf("topic delete -o json (a 204: no body): %q", js)
	}
	var ver map[string]string
	if js := p.mustCLI("", "version", "-o", "json"); json.Unmarshal([]byte(js), &ver) != nil || ver["version"] == "" || ver["go"] == "" {
		t.Fatalf("version -o json: %s", js)
	}
	if js := p.mustCLI("", "profile", "list", "-o", "json"); !strings.Contains(js, `"profiles"`) || strings.Contains(js, p.token) {
		t.Fatalf("profile list -o json (never a token): %s", js)
	}
}

// TestCLIProduceConsumeFlags: produce with a key delimiter and headers,
// consume the last N with a kcat-style template, and from a timestamp.
func TestCLIProduceConsumeFlags(t *testing.T) {
	p := newProc(t)
	p.start()
	p.mustCreateTopic("kv", 1)
	if _, errOut, err := p.cli("a:1\nb:2\nc:3\n", "produce", "kv", "-K", ":", "-H", "unit=C"); err != nil || !strings.Contains(errOut, "produced 3 records") {
		t.Fatalf("produce: %v %s", err, errOut)
	}
	out := p.mustCLI("", "consume", "kv", "--offset", "-2", "--format", `%o %k=%v %h\n`)
	if out != "1 b=2 unit=C\n2 c=3 unit=C\n" {
		t.Fatalf("consume --offset -2 with a template: %q", out)
	}
	if out := p.mustCLI("", "consume", "kv", "--from-timestamp", "0", "--format", "%v,"); out != "1,2,3," {
		t.Fatalf("--from-timestamp 0: %q", out)
	}
	if out := p.mustCLI("", "consume", "kv", "--from-timestamp", "2100-01-01T00:00:00Z", "--format", "%v,"); out != "" {
		t.Fatalf("--from-timestamp in the future: %q", out)
	}
	if _, errOut, err := p.cli("", "consume", "kv", "--from-timestamp", "yesterday"); err == nil || !strings.Contains(errOut, "RFC 3339") {
		t.Fatalf("a bad time: %v %s", err, errOut)
	}
}

// TestCLITopicAlter: alter-config sets and resets keys; add-partitions
// grows a topic and refuses to shrink it.
func TestCLITopicAlter(t *testing.T) {
	p := newProc(t)
	p.start()
	p.mustCreateTopic("alt", 2)
	if out := p.mustCLI("", "topic", "alter-config", "alt", "--set", "retention.ms=3600000"); out != "topic alt: 2 partitions, retention.ms=3600000\n" {
		t.Fatalf("alter-config: %q", out)
	}
	if out := p.mustCLI("", "topic", "alter-config", "alt", "--delete", "retention.ms"); strings.Contains(out, "3600000") {
		t.Fatalf("alter-config --delete: %q", out)
	}
	if out := p.mustCLI("", "topic", "add-partitions", "alt", "--total", "4"); out != "topic alt: 4 partitions\n" {
		t.Fatalf("add-partitions: %q", out)
	}
	if _, errOut, err := p.cli("", "topic", "add-partitions", "alt", "--total", "3"); err == nil || !strings.Contains(errOut, "invalid_request") {
		t.Fatalf("shrinking: %v %s", err, errOut)
	}
}

// TestCLICompletion: the shell completion offers the server's topic and
// group names (cobra's __complete, which the bash/zsh/fish scripts call).
func TestCLICompletion(t *testing.T) {
	p := newProc(t)
	p.start()
	p.mustCreateTopic("sensors", 1)
	p.mustCreateTopic("settings", 1)
	p.mustCreateTopic("alerts", 1)
	complete := func(words ...string) string { // the word being completed comes last: no --server after it
		cmd := exec.Command(eddyBin, append([]string{"__complete"}, words...)...)
		cmd.Env = append(os.Environ(), "EDDY_CONFIG_DIR="+p.confDir, "EDDY_SERVER=http://"+p.httpAddr)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("__complete %v: %v", words, err)
		}
		return string(out)
	}
	if out := complete("topic", "describe", "se"); !strings.Contains(out, "sensors\nsettings\n") || strings.Contains(out, "alerts") {
		t.Fatalf("completion of topic describe se: %q", out)
	}
	if out := complete("consume", ""); !strings.Contains(out, "alerts") {
		t.Fatalf("completion of consume: %q", out)
	}
	if out := p.mustCLI("", "completion", "bash"); !strings.Contains(out, "bash completion") {
		t.Fatalf("completion bash: %.100q", out)
	}
}
