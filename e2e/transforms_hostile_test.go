package e2e

// Hostile transforms: a module that loops, traps, lies about its output,
// floods, bombs memory, imports what it may not, or is not WebAssembly is
// refused with a code, and the node and the other tenant go on.

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// hostileNode starts a node with a second tenant and a topic in each
// tenant that has no transform, to show they keep working.
func hostileNode(t *testing.T) *proc {
	p := newProc(t)
	p.start()
	p.tb = t
	if code, err := p.do("POST", "/v1/tenants", "application/json", []byte(`{"name":"neighbour"}`), nil); err != nil || code != 201 {
		t.Fatalf("create tenant: %d %v", code, err)
	}
	if code, err := p.do("POST", "/v1/tenants/neighbour/topics", "application/json", []byte(`{"name":"calm","partitions":1}`), nil); err != nil || code != 201 {
		t.Fatalf("create neighbour topic: %d %v", code, err)
	}
	p.mustCreateTopic("plain", 1)
	p.mustCreateTopic("victim", 1)
	return p
}

// stillServing checks the node is ready and untransformed topics of both
// tenants take writes.
func stillServing(t *testing.T, p *proc) {
	t.Helper()
	if !p.alive() {
		t.Fatalf("the node died:\n%s", p.log)
	}
	if code, err := p.do("GET", "/readyz", "", nil, nil); err != nil || code != 200 {
		t.Fatalf("readyz: %d %v", code, err)
	}
	for _, prefix := range []string{"", "/tenants/neighbour"} {
		topic := "plain"
		if prefix != "" {
			topic = "calm"
		}
		if code, a := p.produceJSON(prefix, topic, `{"records":[{"value":"fine"}]}`); code != 200 || len(a.Offsets) != 1 {
			t.Fatalf("produce to %s%s: %d %+v", prefix, topic, code, a)
		}
	}
}

// hostile deploys a module that misbehaves on every batch, binds it to
// "victim" with reject, and checks the producer's error and that nothing
// was appended; then the same with dead-letter and pass.
func hostile(t *testing.T, guest, code string, memoryQuota int64) {
	p := hostileNode(t)
	if memoryQuota > 0 {
		body := fmt.Sprintf(`{"quotas":{"transform_memory_bytes":%d}}`, memoryQuota)
		if got, err := p.do("PATCH", "/v1/tenants/default", "application/json", []byte(body), nil); err != nil || got != 200 {
			t.Fatalf("set quota: %d %v", got, err)
		}
	}
	p.mustDeploy(guest, buildWasm(t, "wasm/testdata/guests/"+guest))
	p.mustBind("victim", `{"module":"`+guest+`"}`)
	for i := 0; i < 2; i++ { // the first batch also instantiates
		start := time.Now()
		got, a := p.produceJSON("", "victim", `{"records":[{"value":{"n":1}},{"value":{"n":2}}]}`)
		if got != 422 || a.Error.Code != code || !strings.Contains(a.Error.Message, "nothing was appended") {
			t.Fatalf("batch %d: %d %+v, want 422 %s", i, got, a, code)
		}
		// The default deadline is 200 ms; a guest that ignores it must
		// still answer promptly (this bounds a hang, not performance).
		if d := time.Since(start); i > 0 && d > 5*time.Second {
			t.Fatalf("the error took %s", d)
		}
	}
	if n := len(p.records("", "victim", 0)); n != 0 {
		t.Fatalf("%d records appended from failed batches", n)
	}
	stillServing(t, p)

	p.mustCreateTopic("victim-dlq", 1)
	p.mustBind("victim", `{"module":"`+guest+`","on_error":"dead-letter","dead_letter_topic":"victim-dlq"}`)
	got, a := p.produceJSON("", "victim", `{"records":[{"key":"k","value":{"n":3}}]}`)
	if got != 200 || a.Transform == nil || a.Transform.Policy != "dead-letter" || a.Transform.DeadLettered != 1 || len(a.Offsets) != 0 {
		t.Fatalf("dead-letter: %d %+v", got, a)
	}
	dl := p.records("", "victim-dlq", 0)
	if len(dl) != 1 || string(dl[0].Value) != `{"n":3}` || jsonString(dl[0].Key) != "k" || dl[0].header("eddy.dlq.topic") != "victim" ||
		dl[0].header("eddy.dlq.reason") == "" || dl[0].header("eddy.dlq.transform") != guest+"@1" {
		t.Fatalf("dead-lettered %+v", dl)
	}
	p.mustBind("victim", `{"module":"`+guest+`","on_error":"pass"}`)
	got, a = p.produceJSON("", "victim", `{"records":[{"value":{"n":4}}]}`)
	if got != 200 || a.Transform == nil || a.Transform.Policy != "pass" || len(a.Offsets) != 1 {
		t.Fatalf("pass: %d %+v", got, a)
	}
	if v := p.records("", "victim", 0); len(v) != 1 || string(v[0].Value) != `{"n":4}` {
		t.Fatalf("passed %+v", v)
	}
	stillServing(t, p)
}

func TestTransformHostileInfiniteLoop(t *testing.T) { hostile(t, "loop", "transform_timeout", 0) }
func TestTransformHostilePanic(t *testing.T)        { hostile(t, "panic", "transform_trap", 0) }
func TestTransformHostileBadPointer(t *testing.T)   { hostile(t, "badptr", "transform_bad_output", 0) }
func TestTransformHostileOutputFlood(t *testing.T)  { hostile(t, "flood", "transform_bad_output", 0) }

// The bomb runs against the tenant's transform memory quota (16 MiB per
// instance here; 32 MiB by default).
func TestTransformHostileMemoryBomb(t *testing.T) {
	hostile(t, "bomb", "transform_out_of_memory", 16<<20)
}

// refused uploads a module the node must refuse, with the reason.
func refused(t *testing.T, name string, bin []byte, wantStatus int, wantCode string, wantMsg ...string) {
	p := hostileNode(t)
	code, out := p.deploy("", name, bin)
	msg, _ := out["error"].(map[string]any)["message"].(string)
	if code != wantStatus || out["error"].(map[string]any)["code"] != wantCode {
		t.Fatalf("deploy: %d %v, want %d %s", code, out, wantStatus, wantCode)
	}
	for _, w := range wantMsg {
		if !strings.Contains(msg, w) {
			t.Fatalf("the refusal %q does not say %q", msg, w)
		}
	}
	var list struct{ Transforms []any }
	if code, err := p.do("GET", "/v1/transforms", "", nil, &list); err != nil || code != 200 || len(list.Transforms) != 0 {
		t.Fatalf("a refused module was stored: %d %v %v", code, err, list)
	}
	stillServing(t, p)
}

func TestTransformHostileForbiddenImport(t *testing.T) {
	refused(t, "forbidden", buildWasm(t, "wasm/testdata/guests/forbidden"), 422, "invalid_module", "imports not allowed", "wasi_snapshot_preview1.path_open")
}

func TestTransformHostileNotWasm(t *testing.T) {
	refused(t, "elf", []byte("\x7fELF\x02\x01\x01 this is not a WebAssembly module at all"), 422, "invalid_module", "not a WebAssembly binary")
	refused(t, "truncated", buildWasm(t, "wasm/testdata/guests/keep")[:4096], 422, "invalid_module")
	refused(t, "huge", make([]byte, 9<<20), 422, "invalid_module", "8 MiB")
}
