package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Transforms through a real node: modules built with the standard
// toolchain as a tenant builds them, uploaded, bound and run on produce.

var (
	wasmMu    sync.Mutex
	wasmBuilt = map[string][]byte{}
)

// buildWasm builds a Go transform package (relative to the repository).
func buildWasm(t testing.TB, pkg string) []byte {
	t.Helper()
	wasmMu.Lock()
	defer wasmMu.Unlock()
	if b, ok := wasmBuilt[pkg]; ok {
		return b
	}
	out := filepath.Join(t.TempDir(), "t.wasm")
	cmd := exec.Command("go", "build", "-buildmode=c-shared", "-o", out, "../"+pkg)
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v\n%s", pkg, err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	wasmBuilt[pkg] = b
	return b
}

type apiError struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// deploy uploads a module; it returns the status and the decoded answer.
// A prefix is "" (the token's tenant) or "/tenants/NAME".
func (p *proc) deploy(prefix, name string, bin []byte) (int, map[string]any) {
	p.tb.Helper()
	var out map[string]any
	code, err := p.do("PUT", "/v1"+prefix+"/transforms/"+name, "application/wasm", bin, &out)
	if err != nil {
		p.tb.Fatalf("deploy %s: %v", name, err)
	}
	return code, out
}

func (p *proc) mustDeploy(name string, bin []byte) int {
	p.tb.Helper()
	code, out := p.deploy("", name, bin)
	if code != 201 {
		p.tb.Fatalf("deploy %s: %d %v", name, code, out)
	}
	return int(out["version"].(float64))
}

// waitBound waits until every node shows topic's transform binding: it
// takes effect on each node once that node applied the controller entry
// (docs/transforms.md).
func waitBound(t *testing.T, procs []*proc, topic string) {
	t.Helper()
	for _, p := range procs {
		waitFor(t, fmt.Sprintf("node %d to show %s's binding", p.nodeID, topic), 10*time.Second, func() bool {
			var meta struct{ Transform *struct{ Module string } }
			code, err := p.do("GET", "/v1/topics/"+topic, "", nil, &meta)
			return err == nil && code == 200 && meta.Transform != nil
		})
	}
}

func (p *proc) mustBind(topic, binding string) {
	p.tb.Helper()
	var out map[string]any
	if code, err := p.do("PUT", "/v1/topics/"+topic+"/transform", "application/json", []byte(binding), &out); err != nil || code != 200 {
		p.tb.Fatalf("bind %s %s: %d %v %v", topic, binding, code, err, out)
	}
}

type produceAnswer struct {
	Offsets []struct {
		Partition int   `json:"partition"`
		Offset    int64 `json:"offset"`
	} `json:"offsets"`
	Transform *struct {
		Version      int    `json:"version"`
		RecordsIn    int    `json:"records_in"`
		RecordsOut   int    `json:"records_out"`
		Policy       string `json:"policy"`
		Failure      string `json:"failure"`
		DeadLettered int    `json:"dead_lettered"`
	} `json:"transform"`
	apiError
}

func (p *proc) produceJSON(prefix, topic, body string) (int, produceAnswer) {
	p.tb.Helper()
	var a produceAnswer
	code, err := p.do("POST", "/v1"+prefix+"/topics/"+topic+"/records", "application/json", []byte(body), &a)
	if err != nil {
		p.tb.Fatalf("produce %s: %v", topic, err)
	}
	return code, a
}

type fullRecord struct {
	Offset  int64           `json:"offset"`
	Key     json.RawMessage `json:"key"`
	Value   json.RawMessage `json:"value"`
	Headers []struct {
		Key   string          `json:"key"`
		Value json.RawMessage `json:"value"`
	} `json:"headers"`
}

func (r *fullRecord) header(k string) string {
	for _, h := range r.Headers {
		if h.Key == k {
			return jsonString(h.Value)
		}
	}
	return ""
}

// records fetches a partition's records with their headers.
func (p *proc) records(prefix, topic string, part int) []fullRecord {
	p.tb.Helper()
	var fr struct {
		Records []fullRecord `json:"records"`
	}
	if code, err := p.do("GET", fmt.Sprintf("/v1%s/topics/%s/partitions/%d/records?offset=0&max=10000", prefix, topic, part), "", nil, &fr); err != nil || code != 200 {
		p.tb.Fatalf("fetch %s/%d: %d %v", topic, part, code, err)
	}
	return fr.Records
}

func jsonValue(t testing.TB, raw json.RawMessage) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("value %s: %v", raw, err)
	}
	return m
}

// TestTransformExamples runs each example in examples/transforms through a
// node: built, deployed, bound with a config, and produced through.
func TestTransformExamples(t *testing.T) {
	p := newProc(t)
	p.start()
	t.Run("filter", func(t *testing.T) {
		p.tb = t
		p.mustCreateTopic("readings", 1)
		p.mustDeploy("filter", buildWasm(t, "examples/transforms/filter"))
		p.mustBind("readings", `{"module":"filter","config":{"field":"temp","min":-40,"max":85}}`)
		code, a := p.produceJSON("", "readings", `{"records":[{"value":{"temp":21.5}},{"value":{"temp":900}},{"value":{"temp":-41}},{"value":{"hum":40}},{"value":{"temp":85}}]}`)
		if code != 200 || a.Transform == nil || a.Transform.RecordsIn != 5 || a.Transform.RecordsOut != 3 || len(a.Offsets) != 3 {
			t.Fatalf("produce: %d %+v", code, a)
		}
		got := p.records("", "readings", 0)
		if len(got) != 3 || string(got[0].Value) != `{"temp":21.5}` || string(got[1].Value) != `{"hum":40}` || string(got[2].Value) != `{"temp":85}` {
			t.Fatalf("stored %+v", got)
		}
	})
	t.Run("enrich", func(t *testing.T) {
		p.tb = t
		p.mustCreateTopic("enriched", 1)
		p.mustDeploy("enrich", buildWasm(t, "examples/transforms/enrich"))
		p.mustBind("enriched", `{"module":"enrich","config":{"fields":{"site":"edge-01","gateway":"gw-7"}}}`)
		if code, a := p.produceJSON("", "enriched", `{"records":[{"key":"d1","value":{"temp":20}},{"value":{}}]}`); code != 200 || len(a.Offsets) != 2 {
			t.Fatalf("produce: %d %+v", code, a)
		}
		got := p.records("", "enriched", 0)
		if len(got) != 2 || string(got[0].Value) != `{"temp":20,"gateway":"gw-7","site":"edge-01"}` || jsonString(got[0].Key) != "d1" ||
			got[0].header("site") != "edge-01" || got[0].header("gateway") != "gw-7" || string(got[1].Value) != `{"gateway":"gw-7","site":"edge-01"}` {
			t.Fatalf("stored %+v", got)
		}
		// Not a JSON object: the batch fails, and the default policy rejects it whole.
		code, a := p.produceJSON("", "enriched", `{"records":[{"value":{"ok":1}},{"value":"plain text"}]}`)
		if code != 422 || a.Error.Code != "transform_error" || !strings.Contains(a.Error.Message, "not a JSON object") {
			t.Fatalf("bad record: %d %+v", code, a)
		}
		if n := len(p.records("", "enriched", 0)); n != 2 {
			t.Fatalf("a rejected batch appended %d records", n-2)
		}
	})
	t.Run("convert", func(t *testing.T) {
		p.tb = t
		p.mustCreateTopic("celsius", 1)
		p.mustDeploy("convert", buildWasm(t, "examples/transforms/convert"))
		p.mustBind("celsius", `{"module":"convert","config":{"field":"temp_f","to":"temp_c","decimals":1}}`)
		if code, a := p.produceJSON("", "celsius", `{"records":[{"value":{"temp_f":212}},{"value":{"temp_f":-40}},{"value":{"temp_f":98.6,"id":"x"}},{"value":{"rh":3}}]}`); code != 200 || len(a.Offsets) != 4 {
			t.Fatalf("produce: %d %+v", code, a)
		}
		got := p.records("", "celsius", 0)
		want := []float64{100, -40, 37}
		for i, w := range want {
			if v := jsonValue(t, got[i].Value); v["temp_c"] != w {
				t.Fatalf("record %d: %s, want temp_c %v", i, got[i].Value, w)
			}
		}
		if string(got[3].Value) != `{"rh":3}` {
			t.Fatalf("a record without the field changed: %s", got[3].Value)
		}
	})
	t.Run("redact", func(t *testing.T) {
		p.tb = t
		p.mustCreateTopic("people", 1)
		p.mustDeploy("redact", buildWasm(t, "examples/transforms/redact"))
		p.mustBind("people", `{"module":"redact","config":{"fields":["ssn","email"],"mask":"***"}}`)
		if code, a := p.produceJSON("", "people", `{"records":[{"value":{"name":"Ann","ssn":"123-45-6789","contact":{"email":"a@b.c","tel":"1"}}},{"value":{"name":"Bob"}}]}`); code != 200 || len(a.Offsets) != 2 {
			t.Fatalf("produce: %d %+v", code, a)
		}
		got := p.records("", "people", 0)
		v := jsonValue(t, got[0].Value)
		if v["ssn"] != "***" || v["contact"].(map[string]any)["email"] != "***" || v["contact"].(map[string]any)["tel"] != "1" || v["name"] != "Ann" {
			t.Fatalf("redacted %s", got[0].Value)
		}
		if strings.Contains(string(got[0].Value), "123-45") || string(got[1].Value) != `{"name":"Bob"}` {
			t.Fatalf("stored %s %s", got[0].Value, got[1].Value)
		}
	})
	t.Run("route", func(t *testing.T) {
		p.tb = t
		p.mustCreateTopic("devices", 4)
		p.mustDeploy("route", buildWasm(t, "examples/transforms/route"))
		p.mustBind("devices", `{"module":"route","config":{"field":"device"}}`)
		var body strings.Builder
		body.WriteString(`{"records":[`)
		for i := 0; i < 40; i++ {
			if i > 0 {
				body.WriteByte(',')
			}
			fmt.Fprintf(&body, `{"value":{"device":"dev-%d","seq":%d}}`, i%5, i)
		}
		body.WriteString(`]}`)
		if code, a := p.produceJSON("", "devices", body.String()); code != 200 || len(a.Offsets) != 40 {
			t.Fatalf("produce: %d %+v", code, a)
		}
		// Every record is keyed by its device, each device in one partition, in order.
		where := map[string]int{}
		total := 0
		for part := 0; part < 4; part++ {
			last := map[string]float64{}
			for _, r := range p.records("", "devices", part) {
				total++
				dev := jsonValue(t, r.Value)["device"].(string)
				if jsonString(r.Key) != dev {
					t.Fatalf("record %s has key %s", r.Value, r.Key)
				}
				if w, ok := where[dev]; ok && w != part {
					t.Fatalf("device %s in partitions %d and %d", dev, w, part)
				}
				where[dev] = part
				seq := jsonValue(t, r.Value)["seq"].(float64)
				if s, ok := last[dev]; ok && seq <= s {
					t.Fatalf("device %s out of order: %v after %v", dev, seq, s)
				}
				last[dev] = seq
			}
		}
		if total != 40 || len(where) != 5 {
			t.Fatalf("%d records over %d devices", total, len(where))
		}
	})
}

// TestTransformLifecycle: versions, pinning and rollback, a dry run, the
// refusals, and modules and bindings surviving a kill -9.
func TestTransformLifecycle(t *testing.T) {
	p := newProc(t)
	p.start()
	keep := buildWasm(t, "wasm/testdata/guests/keep")
	enrich := buildWasm(t, "examples/transforms/enrich")
	p.mustCreateTopic("s", 1)
	p.mustCreateTopic("dlq", 1)
	if v := p.mustDeploy("t", keep); v != 1 {
		t.Fatalf("first version %d", v)
	}
	if v := p.mustDeploy("t", enrich); v != 2 {
		t.Fatalf("second version %d", v)
	}
	expect := func(method, path, body string, status int, code string) {
		t.Helper()
		var e apiError
		var out any = &e
		if status == 204 {
			out = nil
		}
		got, err := p.do(method, path, "application/json", []byte(body), out)
		if err != nil || got != status || e.Error.Code != code {
			t.Fatalf("%s %s %s: %d %+v %v, want %d %s", method, path, body, got, e, err, status, code)
		}
	}
	expect("PUT", "/v1/topics/s/transform", `{"module":"nope"}`, 404, "not_found")
	expect("PUT", "/v1/topics/s/transform", `{"module":"t","version":9}`, 404, "not_found")
	expect("PUT", "/v1/topics/s/transform", `{"module":"t","on_error":"explode"}`, 400, "invalid_request")
	expect("PUT", "/v1/topics/s/transform", `{"module":"t","on_error":"dead-letter"}`, 400, "invalid_request")
	expect("PUT", "/v1/topics/s/transform", `{"module":"t","on_error":"dead-letter","dead_letter_topic":"s"}`, 400, "invalid_request")
	expect("PUT", "/v1/topics/s/transform", `{"module":"t","on_error":"dead-letter","dead_letter_topic":"missing"}`, 404, "not_found")
	expect("PUT", "/v1/topics/s/transform", `{"module":"t","config":{bad json}`, 400, "invalid_request")
	expect("PUT", "/v1/transforms/bad%20name", ``, 400, "invalid_request")
	expect("DELETE", "/v1/topics/s/transform", ``, 404, "not_found")

	// Following the latest: version 2 (enrich) runs.
	p.mustBind("s", `{"module":"t","config":{"fields":{"site":"a"}},"on_error":"dead-letter","dead_letter_topic":"dlq"}`)
	if code, a := p.produceJSON("", "s", `{"records":[{"value":{"x":1}}]}`); code != 200 || a.Transform.Version != 2 {
		t.Fatalf("produce: %d %+v", code, a)
	}
	// Roll back by pinning version 1.
	p.mustBind("s", `{"module":"t","version":1,"on_error":"dead-letter","dead_letter_topic":"dlq"}`)
	if code, a := p.produceJSON("", "s", `{"records":[{"value":{"x":2}}]}`); code != 200 || a.Transform.Version != 1 {
		t.Fatalf("produce pinned: %d %+v", code, a)
	}
	expect("DELETE", "/v1/transforms/t", ``, 409, "conflict")
	expect("DELETE", "/v1/transforms/t?version=1", ``, 409, "conflict")
	expect("DELETE", "/v1/topics/dlq", ``, 409, "conflict")

	// A dry run writes nothing and shows the output and the source index.
	var dry struct {
		Version int `json:"version"`
		Records []struct {
			Source  int             `json:"source"`
			Value   json.RawMessage `json:"value"`
			Headers []struct{ Key string }
		} `json:"records"`
		Error  *struct{ Code, Message string } `json:"error"`
		Stderr string                          `json:"stderr"`
	}
	if code, err := p.do("POST", "/v1/transforms/t/test", "application/json",
		[]byte(`{"config":{"fields":{"site":"dry"}},"records":[{"value":{"a":1}},{"value":{"b":2}}]}`), &dry); err != nil || code != 200 {
		t.Fatalf("dry run: %d %v", code, err)
	}
	if dry.Version != 2 || len(dry.Records) != 2 || dry.Records[1].Source != 1 || string(dry.Records[1].Value) != `{"b":2,"site":"dry"}` || dry.Error != nil {
		t.Fatalf("dry run: %+v", dry)
	}
	if code, err := p.do("POST", "/v1/transforms/t/test", "application/json", []byte(`{"records":[{"value":"text"}]}`), &dry); err != nil || code != 200 ||
		dry.Error == nil || dry.Error.Code != "transform_error" || !strings.Contains(dry.Error.Message, "config") {
		t.Fatalf("dry run without config: %d %v %+v", code, err, dry)
	}
	expect("POST", "/v1/transforms/t/test", `{"records":[]}`, 400, "invalid_request")
	expect("POST", "/v1/transforms/t/test", `{"version":7,"records":[{"value":1}]}`, 404, "not_found")
	if n := len(p.records("", "s", 0)); n != 2 {
		t.Fatalf("the dry runs appended: %d records", n)
	}

	// kill -9: the modules, versions and binding come back.
	p.kill()
	p.start()
	var desc struct {
		Latest   int `json:"latest_version"`
		Versions []struct {
			Version int    `json:"version"`
			SHA256  string `json:"sha256"`
		}
		Topics []struct {
			Topic   string `json:"topic"`
			Version int    `json:"version"`
		}
	}
	if code, err := p.do("GET", "/v1/transforms/t", "", nil, &desc); err != nil || code != 200 || desc.Latest != 2 || len(desc.Versions) != 2 ||
		len(desc.Topics) != 1 || desc.Topics[0].Topic != "s" || desc.Topics[0].Version != 1 {
		t.Fatalf("after restart: %d %v %+v", code, err, desc)
	}
	if code, a := p.produceJSON("", "s", `{"records":[{"value":{"x":3}}]}`); code != 200 || a.Transform.Version != 1 {
		t.Fatalf("produce after restart: %d %+v", code, a)
	}
	got := p.records("", "s", 0)
	if len(got) != 3 || string(got[0].Value) != `{"x":1,"site":"a"}` || string(got[1].Value) != `{"x":2}` {
		t.Fatalf("stored %+v", got)
	}
	// Old versions are kept up to the limit; unpinned ones can go.
	for i := 0; i < 4; i++ {
		p.mustDeploy("t", keep)
	}
	if code, err := p.do("GET", "/v1/transforms/t", "", nil, &desc); err != nil || code != 200 || desc.Latest != 6 || len(desc.Versions) != 5 || desc.Versions[0].Version != 1 {
		t.Fatalf("after 6 deploys: %+v", desc)
	}
	expect("DELETE", "/v1/transforms/t?version=2", ``, 404, "not_found") // dropped by the sixth deploy
	expect("DELETE", "/v1/transforms/t?version=3", ``, 204, "")
	expect("DELETE", "/v1/topics/s/transform", ``, 204, "")
	expect("DELETE", "/v1/transforms/t", ``, 204, "")
	expect("GET", "/v1/transforms/t", ``, 404, "not_found")
	if code, a := p.produceJSON("", "s", `{"records":[{"value":{"x":4}}]}`); code != 200 || a.Transform != nil {
		t.Fatalf("produce after detaching: %d %+v", code, a)
	}
}

// TestTransformCircuitBreaker: consecutive failures open the breaker; it
// shows in the topic and in metrics; it probes after the cooldown.
func TestTransformCircuitBreaker(t *testing.T) {
	p := newProc(t)
	p.env = []string{"EDDY_TRANSFORM_BREAKER_FAILURES=3", "EDDY_TRANSFORM_BREAKER_COOLDOWN=1s"}
	p.start()
	p.mustCreateTopic("s", 1)
	p.mustDeploy("panic", buildWasm(t, "wasm/testdata/guests/panic"))
	p.mustBind("s", `{"module":"panic"}`)
	for i := 0; i < 3; i++ {
		if code, a := p.produceJSON("", "s", `{"records":[{"value":1}]}`); code != 422 || a.Error.Code != "transform_trap" {
			t.Fatalf("batch %d: %d %+v", i, code, a)
		}
	}
	req, _ := http.NewRequest("POST", p.url("/v1/topics/s/records"), strings.NewReader(`{"records":[{"value":1}]}`))
	req.Header.Set("Authorization", "Bearer "+p.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 503 || !strings.Contains(string(body), "transform_circuit_open") || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("open breaker: %d %s (Retry-After %q)", resp.StatusCode, body, resp.Header.Get("Retry-After"))
	}
	var topic struct {
		Transform struct {
			Status struct {
				Breaker string         `json:"breaker"`
				Errors  map[string]int `json:"errors"`
			} `json:"status"`
		} `json:"transform"`
	}
	if code, err := p.do("GET", "/v1/topics/s", "", nil, &topic); err != nil || code != 200 || topic.Transform.Status.Breaker != "open" || topic.Transform.Status.Errors["trap"] != 3 {
		t.Fatalf("topic: %d %v %+v", code, err, topic)
	}
	metrics := p.metricsText()
	for _, want := range []string{`eddy_transform_breaker_open{topic="default/s",transform="panic"} 1`,
		`eddy_transform_errors_total{topic="default/s",transform="panic",kind="trap"} 3`,
		`eddy_transform_instances{topic="default/s",transform="panic"}`,
		`eddy_transform_batch_duration_seconds_bucket{topic="default/s",transform="panic"`,
		`eddy_transform_compile_seconds_bucket{tenant="default",transform="panic"`} {
		if !strings.Contains(metrics, want) {
			t.Fatalf("metrics lack %s", want)
		}
	}
	// After the cooldown one batch probes; it fails, and the breaker opens again.
	time.Sleep(1100 * time.Millisecond)
	if code, a := p.produceJSON("", "s", `{"records":[{"value":1}]}`); code != 422 || a.Error.Code != "transform_trap" {
		t.Fatalf("probe: %d %+v", code, a)
	}
	if code, a := p.produceJSON("", "s", `{"records":[{"value":1}]}`); code != 503 || a.Error.Code != "transform_circuit_open" {
		t.Fatalf("after the probe: %d %+v", code, a)
	}
	// A fixed module: the new binding starts closed.
	p.mustDeploy("panic", buildWasm(t, "wasm/testdata/guests/keep"))
	if code, a := p.produceJSON("", "s", `{"records":[{"value":1}]}`); code != 200 || a.Transform.Version != 2 {
		t.Fatalf("fixed: %d %+v", code, a)
	}
	if n := len(p.records("", "s", 0)); n != 1 {
		t.Fatalf("%d records stored, want the one after the fix", n)
	}
}

func (p *proc) metricsText() string {
	p.tb.Helper()
	_, text := p.getText("/metrics")
	return text
}

// getText GETs path with the admin token and answers the status and body.
func (p *proc) getText(path string) (int, string) {
	p.tb.Helper()
	req, _ := http.NewRequest("GET", p.url(path), nil)
	req.Header.Set("Authorization", "Bearer "+p.token)
	resp, err := p.client().Do(req)
	if err != nil {
		p.tb.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestTransformQuotas: a tenant's transform count and memory quotas.
func TestTransformQuotas(t *testing.T) {
	p := newProc(t)
	p.start()
	keep := buildWasm(t, "wasm/testdata/guests/keep")
	if code, err := p.do("PATCH", "/v1/tenants/default", "application/json", []byte(`{"quotas":{"max_transforms":1,"transform_memory_bytes":1048576}}`), nil); err != nil || code != 200 {
		t.Fatalf("set quota: %d %v", code, err)
	}
	code, out := p.deploy("", "a", keep)
	if e := out["error"].(map[string]any); code != 422 || e["code"] != "invalid_module" || !strings.Contains(e["message"].(string), "over limit") {
		t.Fatalf("a module over the memory quota: %d %v", code, out)
	}
	if code, err := p.do("PATCH", "/v1/tenants/default", "application/json", []byte(`{"quotas":{"max_transforms":1}}`), nil); err != nil || code != 200 {
		t.Fatalf("set quota: %d %v", code, err)
	}
	p.mustDeploy("a", keep)
	p.mustDeploy("a", keep) // a new version is not a new transform
	if code, out := p.deploy("", "b", keep); code != 409 || out["error"].(map[string]any)["code"] != "limit_exceeded" {
		t.Fatalf("a second transform: %d %v", code, out)
	}
}

// TestTransformCluster: a module deployed on one node runs on every node,
// including one that joins later; replicas store the output.
func TestTransformCluster(t *testing.T) {
	procs := newCluster(t, 3)
	p1, p3 := procs[0], procs[2]
	if code, err := p1.do("POST", "/v1/topics", "application/json", []byte(`{"name":"c","partitions":2,"replication_factor":3}`), nil); err != nil || code != 201 {
		t.Fatalf("create: %d %v", code, err)
	}
	p1.mustDeploy("enrich", buildWasm(t, "examples/transforms/enrich"))
	p1.mustBind("c", `{"module":"enrich","config":{"fields":{"site":"x"}}}`)
	waitBound(t, procs, "c")
	for i, p := range procs {
		if code, a := p.produceJSON("", "c", fmt.Sprintf(`{"records":[{"key":"k","value":{"n":%d}}]}`, i)); code != 200 || a.Transform == nil {
			t.Fatalf("produce via node %d: %d %+v", i+1, code, a)
		}
	}
	n4 := newProc(t)
	n4.nodeID, n4.join = 4, true
	p3.mustCLI("", "cluster", "add-node", "--id", "4", "--raft-addr", n4.raftAddr)
	n4.start()
	n4.token = p1.token
	if code, a := n4.produceJSON("", "c", `{"records":[{"key":"k","value":{"n":4}}]}`); code != 200 || a.Transform == nil || a.Transform.RecordsOut != 1 {
		t.Fatalf("produce via the joined node: %d %+v", code, a)
	}
	part := -1
	for q := 0; q < 2; q++ {
		if len(p1.records("", "c", q)) > 0 {
			part = q
		}
	}
	// A replica the joined node was given may still be catching up, and
	// serves what it has applied so far (0 records once in CI): every node
	// must serve all four within a few seconds. (A catching-up replica
	// answering reads locally is a known gap: it should forward until it
	// has caught up.)
	for _, p := range append(procs, n4) {
		got := p.records("", "c", part)
		for deadline := time.Now().Add(10 * time.Second); len(got) < 4 && time.Now().Before(deadline); {
			time.Sleep(50 * time.Millisecond)
			got = p.records("", "c", part)
		}
		if len(got) != 4 {
			t.Fatalf("node %d serves %d records", p.nodeID, len(got))
		}
		for i, r := range got {
			if string(r.Value) != fmt.Sprintf(`{"n":%d,"site":"x"}`, i+min(i/3, 1)) || r.header("site") != "x" {
				t.Fatalf("node %d record %d: %s", p.nodeID, i, r.Value)
			}
		}
	}
}

// TestTransformCLI: the whole workflow a tenant follows with the CLI, from
// a scaffold to records transformed on a topic.
func TestTransformCLI(t *testing.T) {
	p := newProc(t)
	p.start()
	dir := filepath.Join(t.TempDir(), "dropper")
	p.mustCLI("", "transform", "init", "dropper", "--dir", dir)
	build := exec.Command(eddyBin, "transform", "build", dir)
	if out, err := build.CombinedOutput(); err != nil || !strings.Contains(string(out), "dropper.wasm") {
		t.Fatalf("build: %v\n%s", err, out)
	}
	if out := p.mustCLI("", "transform", "deploy", "dropper", filepath.Join(dir, "dropper.wasm")); !strings.Contains(out, "deployed dropper version 1") {
		t.Fatalf("deploy: %s", out)
	}
	if _, errOut, err := p.cli("", "transform", "deploy", "bad", "/etc/hostname"); err == nil || !strings.Contains(errOut, "invalid_module") {
		t.Fatalf("deploying a text file: %v %s", err, errOut)
	}
	// A dry run: the line containing "test" is dropped.
	in := filepath.Join(t.TempDir(), "in.ndjson")
	os.WriteFile(in, []byte("{\"t\":1}\nthis is a test\nplain\n"), 0o644)
	out, errOut, err := p.cli("", "transform", "test", "dropper", "--input", in, "--config", `{"drop":"test"}`)
	if err != nil || strings.Count(out, "\n") != 2 || !strings.Contains(out, `"source":0`) || !strings.Contains(out, `"source":2`) ||
		!strings.Contains(errOut, "3 record(s) in, 2 out") {
		t.Fatalf("test: %v\n%s\n%s", err, out, errOut)
	}
	if _, errOut, err := p.cli("", "transform", "test", "dropper", "--input", in, "--config", `{"drop":5}`); err == nil || !strings.Contains(errOut, "transform_error") {
		t.Fatalf("test with a bad config: %v %s", err, errOut)
	}
	p.mustCLI("", "topic", "create", "events")
	if out := p.mustCLI("", "topic", "set-transform", "events", "--module", "dropper", "--config", `{"drop":"debug"}`); !strings.Contains(out, "TRANSFORM     dropper") {
		t.Fatalf("set-transform: %s", out)
	}
	p.mustCLI("keep\ndebug noise\nkeep too\n", "produce", "events")
	if out := p.mustCLI("", "consume", "events", "--from-beginning"); strings.Count(out, "\n") != 2 || !strings.Contains(out, `"value":"keep"`) ||
		!strings.Contains(out, `"value":"keep too"`) {
		t.Fatalf("consume: %q", out)
	}
	if out := p.mustCLI("", "transform", "list"); !strings.Contains(out, "dropper") || !strings.Contains(out, "events") {
		t.Fatalf("list: %s", out)
	}
	if out := p.mustCLI("", "transform", "describe", "dropper"); !strings.Contains(out, "TOPIC         events") || !strings.Contains(out, "breaker closed") ||
		!strings.Contains(out, "records in 3, out 2, dropped 1") {
		t.Fatalf("describe: %s", out)
	}
	if out := p.mustCLI("", "topic", "describe", "events"); !strings.Contains(out, "TRANSFORM     dropper (version latest, runs 1), on error reject") {
		t.Fatalf("topic describe: %s", out)
	}
	if _, errOut, err := p.cli("", "transform", "delete", "dropper"); err == nil || !strings.Contains(errOut, "conflict") {
		t.Fatalf("delete while attached: %v %s", err, errOut)
	}
	p.mustCLI("", "topic", "clear-transform", "events")
	p.mustCLI("", "transform", "delete", "dropper")
}

// TestTransformAuth: transforms need the tenant's admin scope, and a tenant
// never sees or touches another tenant's transforms.
func TestTransformAuth(t *testing.T) {
	p := newProc(t)
	p.start()
	keep := buildWasm(t, "wasm/testdata/guests/keep")
	p.mustDeploy("mine", keep)
	p.mustCreateTopic("s", 1)
	p.mustCLI("", "tenant", "create", "other")
	otherAdmin := strings.TrimSpace(p.mustCLI("", "token", "issue", "--tenant", "other", "--scopes", "admin", "--ttl", "1h"))
	producer := strings.TrimSpace(p.mustCLI("", "token", "issue", "--tenant", "default", "--scopes", "produce:*", "--ttl", "1h"))
	as := func(token, method, path, ctype string, body []byte) (int, string) {
		t.Helper()
		q := *p
		q.token = token
		var e apiError
		code, err := q.do(method, path, ctype, body, &e)
		if err != nil && code != 204 {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		return code, e.Error.Code
	}
	for _, c := range []struct {
		token, method, path, ctype string
		body                       []byte
		status                     int
		code                       string
	}{
		{producer, "PUT", "/v1/transforms/x", "application/wasm", keep, 403, "forbidden"},
		{producer, "GET", "/v1/transforms", "", nil, 403, "forbidden"},
		{producer, "PUT", "/v1/topics/s/transform", "application/json", []byte(`{"module":"mine"}`), 403, "forbidden"},
		{otherAdmin, "GET", "/v1/transforms/mine", "", nil, 404, "not_found"},
		{otherAdmin, "GET", "/v1/tenants/default/transforms", "", nil, 404, "not_found"},
		{otherAdmin, "DELETE", "/v1/tenants/default/transforms/mine", "", nil, 404, "not_found"},
		{otherAdmin, "POST", "/v1/tenants/default/transforms/mine/test", "application/json", []byte(`{"records":[{"value":1}]}`), 404, "not_found"},
		{p.token, "PUT", "/v1/transforms/x", "text/plain", keep, 415, "unsupported_media"},
		{"", "PUT", "/v1/transforms/x", "application/wasm", keep, 401, "token_malformed"}, // "Bearer " and nothing
	} {
		if status, code := as(c.token, c.method, c.path, c.ctype, c.body); status != c.status || code != c.code {
			t.Errorf("%s %s: %d %s, want %d %s", c.method, c.path, status, code, c.status, c.code)
		}
	}
	// The other tenant's own transform of the same name is its own.
	if status, _ := as(otherAdmin, "PUT", "/v1/transforms/mine", "application/wasm", keep); status != 201 {
		t.Fatalf("other tenant deploy: %d", status)
	}
	var list struct{ Transforms []struct{ Name string } }
	q := *p
	q.token = otherAdmin
	if code, err := q.do("GET", "/v1/transforms", "", nil, &list); err != nil || code != 200 || len(list.Transforms) != 1 {
		t.Fatalf("other tenant's list: %d %v %+v", code, err, list)
	}
	var desc struct {
		Latest int `json:"latest_version"`
	}
	if code, err := p.do("GET", "/v1/transforms/mine", "", nil, &desc); err != nil || code != 200 || desc.Latest != 1 {
		t.Fatalf("default's transform changed: %d %v %+v", code, err, desc)
	}
}
