package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eddy-broker/eddy/batch"

	"github.com/eddy-broker/eddy"
	"github.com/eddy-broker/eddy/internal/testhost"
	"github.com/eddy-broker/eddy/internal/testutil"
	"github.com/eddy-broker/eddy/multiraft"
	"github.com/eddy-broker/eddy/tenants"
)

type env struct {
	t      *testing.T
	base   string
	host   *multiraft.Host
	signer *tenants.Signer
	srv    *Server
	token  string // operator token, sent by req
}

// newEnv runs a real Raft host and the HTTP server on loopback.
func newEnv(t *testing.T, hc multiraft.Config, sc Config) *env {
	return newEnvOver(t, hc, sc, func(h *multiraft.Host) Broker { return h })
}

// newEnvOver is newEnv with the server's broker made from the host.
func newEnvOver(t *testing.T, hc multiraft.Config, sc Config, broker func(*multiraft.Host) Broker) *env {
	t.Helper()
	h := testhost.StartWith(t, hc)
	signer := testhost.Signer(t, h, "test-cluster")
	sc.Addr = "127.0.0.1:0"
	sc.Verifier = &tenants.Verifier{Audience: "test-cluster", Keys: h.Key, Incarnation: h.Incarnation}
	sc.Signer = func() *tenants.Signer { return signer }
	s := New(sc, broker(h))
	s.SetStarted()
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		s.Close(ctx)
		h.Close()
	})
	e := &env{t: t, base: "http://" + s.Addr(), host: h, signer: signer, srv: s}
	e.token = e.mint("default", "operator")
	return e
}

// mint issues an operator-signed token for tenant with scopes.
func (e *env) mint(tenant eddy.TenantID, scopes ...string) string {
	e.t.Helper()
	tok, _, err := e.signer.Issue(tenant, "test", scopes, time.Hour)
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

// tenantTopic creates a tenant with a topic and returns an admin token of
// the tenant.
func (e *env) tenantTopic(tenant eddy.TenantID, topic string) string {
	e.t.Helper()
	if code, _, body := e.req("POST", "/v1/tenants", "application/json", `{"name":"`+string(tenant)+`"}`); code != 201 {
		e.t.Fatalf("tenant: %d %s", code, body)
	}
	admin := e.mint(tenant, "admin")
	if code, _, body := e.reqAs(admin, "POST", "/v1/topics", "application/json", `{"name":"`+topic+`"}`); code != 201 {
		e.t.Fatalf("topic: %d %s", code, body)
	}
	return admin
}

func (e *env) req(method, path, ctype, body string) (int, http.Header, string) {
	e.t.Helper()
	return e.reqAs(e.token, method, path, ctype, body)
}

func (e *env) reqAs(token, method, path, ctype, body string) (int, http.Header, string) {
	e.t.Helper()
	req, _ := http.NewRequest(method, e.base+path, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

func (e *env) mustCreate(name string, partitions int, config string) {
	e.t.Helper()
	if config == "" {
		config = "{}"
	}
	code, _, body := e.req("POST", "/v1/topics", "application/json", fmt.Sprintf(`{"name":%q,"partitions":%d,"config":%s}`, name, partitions, config))
	if code != 201 {
		e.t.Fatalf("create %s: %d %s", name, code, body)
	}
}

func errorCode(t *testing.T, body string) string {
	t.Helper()
	var e struct {
		Error struct{ Code, Message string }
	}
	if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
		t.Fatalf("not an error body: %s", body)
	}
	return e.Error.Code
}

func TestErrors(t *testing.T) {
	e := newEnv(t, multiraft.Config{}, Config{MaxBodyBytes: 64 << 10})
	e.mustCreate("t", 2, `{"max.message.bytes":"1000"}`)
	big := strings.Repeat("x", 1001)
	tests := []struct {
		name, method, path, ctype, body string
		status                          int
		code                            string
	}{
		{"malformed json", "POST", "/v1/topics/t/records", "application/json", `{"records":[{"value":`, 400, "invalid_request"},
		{"unknown field", "POST", "/v1/topics/t/records", "application/json", `{"records":[{"valeu":1}]}`, 400, "invalid_request"},
		{"no records", "POST", "/v1/topics/t/records", "application/json", `{"records":[]}`, 400, "invalid_request"},
		{"trailing data", "POST", "/v1/topics/t/records", "application/json", `{"records":[{"value":1}]} x`, 400, "invalid_request"},
		{"bad base64", "POST", "/v1/topics/t/records", "application/json", `{"records":[{"value":"!!","value_encoding":"base64"}]}`, 400, "invalid_request"},
		{"bad encoding name", "POST", "/v1/topics/t/records", "application/json", `{"records":[{"value":"a","value_encoding":"hex"}]}`, 400, "invalid_request"},
		{"bad timestamp", "POST", "/v1/topics/t/records", "application/json", `{"records":[{"value":"a","timestamp":"yesterday"}]}`, 400, "invalid_request"},
		{"bad headers", "POST", "/v1/topics/t/records", "application/json", `{"records":[{"value":"a","headers":5}]}`, 400, "invalid_request"},
		{"negative partition", "POST", "/v1/topics/t/records", "application/json", `{"records":[{"value":"a","partition":-2}]}`, 400, "invalid_request"},
		{"missing partition", "POST", "/v1/topics/t/records", "application/json", `{"records":[{"value":"a","partition":9}]}`, 404, "not_found"},
		{"bad ndjson line", "POST", "/v1/topics/t/records", "application/x-ndjson", "{\"value\":1}\n{nope\n", 400, "invalid_request"},
		{"unsupported media", "POST", "/v1/topics/t/records", "text/csv", "a,b", 415, "unsupported_media"},
		{"record batches from a client", "POST", "/v1/topics/t/records?partition=0", BatchesContentType, "\x00\x01", 415, "unsupported_media"},
		{"record too large", "POST", "/v1/topics/t/records", "application/json", `{"records":[{"value":"` + big + `"}]}`, 413, "record_too_large"},
		{"body too large", "POST", "/v1/topics/t/records", "application/octet-stream", strings.Repeat("y", 70<<10), 413, "request_too_large"},
		{"unknown topic produce", "POST", "/v1/topics/nope/records", "application/json", `{"records":[{"value":1}]}`, 404, "not_found"},
		{"unknown topic fetch", "GET", "/v1/topics/nope/partitions/0/records", "", "", 404, "not_found"},
		{"unknown topic describe", "GET", "/v1/topics/nope", "", "", 404, "not_found"},
		{"unknown topic delete", "DELETE", "/v1/topics/nope", "", "", 404, "not_found"},
		{"bad topic name", "GET", "/v1/topics/a%20b", "", "", 404, "not_found"},
		{"unknown partition", "GET", "/v1/topics/t/partitions/7/records", "", "", 404, "not_found"},
		{"non-numeric partition", "GET", "/v1/topics/t/partitions/x/offsets", "", "", 404, "not_found"},
		{"offset past end", "GET", "/v1/topics/t/partitions/0/records?offset=5", "", "", 416, "offset_out_of_range"},
		{"bad max", "GET", "/v1/topics/t/partitions/0/records?max=-1", "", "", 400, "invalid_request"},
		{"bad wait", "GET", "/v1/topics/t/partitions/0/records?wait_ms=999999999", "", "", 400, "invalid_request"},
		{"topic exists", "POST", "/v1/topics", "application/json", `{"name":"t"}`, 409, "topic_exists"},
		{"rf over nodes", "POST", "/v1/topics", "application/json", `{"name":"r","replication_factor":3}`, 400, "invalid_request"},
		{"bad rf", "POST", "/v1/topics", "application/json", `{"name":"r","replication_factor":2}`, 400, "invalid_request"},
		{"bad name", "POST", "/v1/topics", "application/json", `{"name":"a/b"}`, 400, "invalid_request"},
		{"zero partitions", "POST", "/v1/topics", "application/json", `{"name":"z","partitions":0}`, 400, "invalid_request"},
		{"unknown config", "POST", "/v1/topics", "application/json", `{"name":"z","config":{"retention.mss":"1"}}`, 400, "invalid_request"},
		{"bad config value", "POST", "/v1/topics", "application/json", `{"name":"z","config":{"retention.ms":"soon"}}`, 400, "invalid_request"},
		{"other tenant", "GET", "/v1/tenants/acme/topics/t", "", "", 404, "not_found"},
		{"bad tenant", "GET", "/v1/tenants/AC_ME/topics", "", "", 404, "not_found"},
		{"no route", "GET", "/v2/nothing", "", "", 404, "not_found"},
		{"wrong method", "PUT", "/v1/topics/t", "", "", 405, "invalid_request"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, _, body := e.req(tc.method, tc.path, tc.ctype, tc.body)
			if code != tc.status {
				t.Fatalf("status %d, want %d: %s", code, tc.status, body)
			}
			if got := errorCode(t, body); got != tc.code {
				t.Fatalf("code %q, want %q: %s", got, tc.code, body)
			}
		})
	}
	// Nothing of any refused request was appended.
	for p := 0; p < 2; p++ {
		code, _, body := e.req("GET", fmt.Sprintf("/v1/topics/t/partitions/%d/offsets", p), "", "")
		if code != 200 || !strings.Contains(body, `"latest":0`) {
			t.Fatalf("partition %d after refusals: %s", p, body)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	e := newEnv(t, multiraft.Config{}, Config{})
	e.mustCreate("rt", 1, "")
	body := `{"records":[
		{"key":"dev-1","value":{"t":21.5,"ok":true},"headers":[{"key":"unit","value":"C"},{"key":"unit","value":"K"}],"timestamp":1700000000123},
		{"value":"plain text"},
		{"value":42},
		{"key":null,"value":null},
		{"value":"AAEC/w==","value_encoding":"base64","key":"aGk=","key_encoding":"base64"},
		{"value":"","timestamp":"2024-01-02T03:04:05.006Z"}
	]}`
	code, _, out := e.req("POST", "/v1/topics/rt/records", "application/json", body)
	if code != 200 || out != `{"offsets":[{"partition":0,"offset":0},{"partition":0,"offset":1},{"partition":0,"offset":2},{"partition":0,"offset":3},{"partition":0,"offset":4},{"partition":0,"offset":5}]}`+"\n" {
		t.Fatalf("produce: %d %s", code, out)
	}
	code, _, out = e.req("POST", "/v1/topics/rt/records", "application/x-ndjson", "{\"value\":\"n1\"}\n\n{\"value\":\"n2\",\"key\":\"k\"}\n")
	if code != 200 || strings.Count(out, `"offset":`) != 2 {
		t.Fatalf("ndjson: %d %s", code, out)
	}
	code, _, out = e.req("POST", "/v1/topics/rt/records?key=bin", "application/octet-stream", "\xff\xferaw")
	if code != 200 || !strings.Contains(out, `"offset":8`) {
		t.Fatalf("octet-stream: %d %s", code, out)
	}
	code, _, out = e.req("GET", "/v1/topics/rt/partitions/0/records?offset=0", "", "")
	if code != 200 {
		t.Fatal(out)
	}
	var fr struct {
		Records []map[string]json.RawMessage `json:"records"`
		Next    int64                        `json:"next_offset"`
		HW      int64                        `json:"high_watermark"`
	}
	if err := json.Unmarshal([]byte(out), &fr); err != nil {
		t.Fatal(err)
	}
	if len(fr.Records) != 9 || fr.Next != 9 || fr.HW != 9 {
		t.Fatalf("fetched %d records, next %d, hw %d", len(fr.Records), fr.Next, fr.HW)
	}
	want := []map[string]string{
		{"key": `"dev-1"`, "value": `{"t":21.5,"ok":true}`, "timestamp": "1700000000123", "headers": `[{"key":"unit","value":"C"},{"key":"unit","value":"K"}]`},
		{"key": "null", "value": `"plain text"`},
		{"value": `"42"`},
		{"key": "null", "value": "null"},
		{"key": `"hi"`, "value": `"AAEC/w=="`, "value_encoding": `"base64"`},
		{"value": `""`, "timestamp": "1704164645006"},
		{"value": `"n1"`},
		{"key": `"k"`, "value": `"n2"`},
		{"key": `"bin"`, "value": `"//5yYXc="`, "value_encoding": `"base64"`},
	}
	for i, w := range want {
		for k, v := range w {
			if got := string(fr.Records[i][k]); got != v {
				t.Errorf("record %d %s = %s, want %s", i, k, got, v)
			}
		}
	}
	// format=binary: everything base64, exact bytes.
	_, _, out = e.req("GET", "/v1/topics/rt/partitions/0/records?offset=1&max=1&format=binary", "", "")
	if !strings.Contains(out, `"value":"cGxhaW4gdGV4dA==","value_encoding":"base64"`) {
		t.Fatalf("binary format: %s", out)
	}
	// Offsets and describe.
	_, _, out = e.req("GET", "/v1/topics/rt/partitions/0/offsets", "", "")
	var offs struct {
		Partition, Earliest, Latest, Leader, SizeBytes int64
	}
	if err := json.Unmarshal([]byte(out), &offs); err != nil || offs.Earliest != 0 || offs.Latest != 9 || offs.Leader != 1 || offs.Partition != 0 {
		t.Fatalf("offsets: %s", out)
	}
	if !strings.Contains(out, `"size_bytes":`) || strings.Contains(out, `"size_bytes":0`) {
		t.Fatalf("offsets without the stored size: %s", out)
	}
	_, _, out = e.req("GET", "/v1/tenants/default/topics/rt", "", "")
	if !strings.Contains(out, `"high_watermark":9`) || !strings.Contains(out, `"leader":1`) {
		t.Fatalf("describe via tenant route: %s", out)
	}
	// Long poll: woken by a produce.
	done := make(chan string)
	go func() {
		_, _, out := e.req("GET", "/v1/topics/rt/partitions/0/records?offset=9&wait_ms=20000", "", "")
		done <- out
	}()
	time.Sleep(200 * time.Millisecond)
	start := time.Now()
	e.req("POST", "/v1/topics/rt/records", "application/json", `{"records":[{"value":"late"}]}`)
	select {
	case out := <-done:
		if !strings.Contains(out, `"late"`) {
			t.Fatalf("long poll: %s", out)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("long poll not woken")
	}
	t.Logf("long poll answered %v after the produce", time.Since(start))
	// Keyed records map with murmur2 like Kafka; unkeyed spread round-robin.
	e.mustCreate("keys", 4, "")
	_, _, out = e.req("POST", "/v1/topics/keys/records", "application/json", `{"records":[{"key":"foobar","value":1},{"key":"foobar","value":2}]}`)
	// murmur2("foobar") = -790332482 -> (h & 0x7fffffff) % 4 = 2
	if !strings.Contains(out, `{"partition":2,"offset":0},{"partition":2,"offset":1}`) {
		t.Fatalf("keyed: %s", out)
	}
	parts := map[string]bool{}
	for i := 0; i < 8; i++ {
		_, _, out = e.req("POST", "/v1/topics/keys/records", "application/json", `{"records":[{"value":1},{"value":2}]}`)
		var r struct{ Offsets []struct{ Partition int } }
		json.Unmarshal([]byte(out), &r)
		if r.Offsets[0].Partition != r.Offsets[1].Partition {
			t.Fatalf("one unkeyed request split across partitions: %s", out)
		}
		parts[fmt.Sprint(r.Offsets[0].Partition)] = true
	}
	if len(parts) != 4 {
		t.Fatalf("round-robin used partitions %v", parts)
	}
	// Delete.
	if code, _, _ := e.req("DELETE", "/v1/topics/keys", "", ""); code != 204 {
		t.Fatalf("delete: %d", code)
	}
	_, _, out = e.req("GET", "/v1/topics", "", "")
	if strings.Contains(out, `"keys"`) || !strings.Contains(out, `"rt"`) {
		t.Fatalf("list after delete: %s", out)
	}
}

func TestBackpressure(t *testing.T) {
	// A tiny queue and slow proposals: concurrent requests overflow it.
	e := newEnv(t, multiraft.Config{QueueRecords: 20, QueueBytes: 1 << 20, MaxInFlight: 1, Linger: 200 * time.Millisecond}, Config{})
	e.mustCreate("bp", 1, "")
	var wg sync.WaitGroup
	var mu sync.Mutex
	statuses := map[int]int{}
	retryAfter := ""
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var b bytes.Buffer
			b.WriteString(`{"records":[`)
			for j := 0; j < 15; j++ {
				if j > 0 {
					b.WriteByte(',')
				}
				b.WriteString(`{"value":"x"}`)
			}
			b.WriteString(`]}`)
			code, h, body := e.req("POST", "/v1/topics/bp/records", "application/json", b.String())
			mu.Lock()
			statuses[code]++
			if code == 429 {
				retryAfter = h.Get("Retry-After")
				if errorCode(t, body) != "backpressure" {
					t.Errorf("429 body: %s", body)
				}
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	if statuses[429] == 0 || statuses[200] == 0 || statuses[200]+statuses[429] != 20 {
		t.Fatalf("statuses %v: want some 200 and some 429", statuses)
	}
	if retryAfter == "" {
		t.Fatal("429 without Retry-After")
	}
	// Exactly the accepted requests were appended.
	_, _, out := e.req("GET", "/v1/topics/bp/partitions/0/offsets", "", "")
	if !strings.Contains(out, fmt.Sprintf(`"latest":%d`, statuses[200]*15)) {
		t.Fatalf("offsets %s after %d accepted requests", out, statuses[200])
	}
}

func TestHealthAndMetrics(t *testing.T) {
	e := newEnv(t, multiraft.Config{}, Config{})
	e.mustCreate("m", 1, "")
	e.req("POST", "/v1/topics/m/records", "application/json", `{"records":[{"value":1}]}`)
	e.req("GET", "/v1/topics/m/partitions/0/records", "", "")
	if code, _, out := e.req("GET", "/healthz", "", ""); code != 200 || !strings.Contains(out, "ok") {
		t.Fatalf("healthz %d %s", code, out)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, _, out := e.req("GET", "/readyz", "", "")
		if code == 200 && strings.Contains(out, "ready") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("readyz %d %s", code, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
	_, _, out := e.req("GET", "/metrics", "", "")
	for _, m := range []string{`eddy_produce_records_total{topic="default/m"} 1`, `eddy_fetch_records_total{topic="default/m"} 1`,
		"eddy_produce_request_duration_seconds_bucket", "process_resident_memory_bytes"} {
		if !strings.Contains(out, m) {
			t.Errorf("metrics lack %s", m)
		}
	}
}

func TestFetchBatchesFormat(t *testing.T) {
	e := newEnv(t, multiraft.Config{}, Config{})
	e.mustCreate("raw", 1, "")
	e.req("POST", "/v1/topics/raw/records", "application/json", `{"records":[{"value":"a"},{"value":"b"}]}`)
	e.req("POST", "/v1/topics/raw/records", "application/json", `{"records":[{"key":"k","value":"c"}]}`)
	code, h, body := e.req("GET", "/v1/topics/raw/partitions/0/records?offset=1&format=batches", "", "")
	if code != 200 || h.Get("Content-Type") != BatchesContentType {
		t.Fatalf("%d %s", code, h.Get("Content-Type"))
	}
	if h.Get("Eddy-Next-Offset") != "3" || h.Get("Eddy-High-Watermark") != "3" || h.Get("Eddy-Log-Start-Offset") != "0" {
		t.Fatalf("headers %v", h)
	}
	// The body is the stored batches, checkable and decodable as Kafka v2.
	var vals []string
	err := batch.Split([]byte(body), func(_ batch.Header, b []byte) error {
		recs, err := batch.Decode(nil, b)
		for _, r := range recs {
			vals = append(vals, fmt.Sprintf("%d:%s", r.Offset, r.Value))
		}
		return err
	})
	if err != nil || strings.Join(vals, ",") != "0:a,1:b,2:c" {
		t.Fatalf("batches: %v %v", vals, err)
	}
	if code, _, body := e.req("GET", "/v1/topics/raw/partitions/0/records?format=xml", "", ""); code != 400 {
		t.Fatalf("bad format: %d %s", code, body)
	}
}

// TestFetchAwaitOnly: a fetch of max=0 reads nothing: it answers the
// offsets at once when a record is at its offset, and otherwise once one
// is appended (or wait_ms passes), as JSON or as batches.
func TestFetchAwaitOnly(t *testing.T) {
	e := newEnv(t, multiraft.Config{}, Config{})
	e.mustCreate("w", 1, "")
	e.req("POST", "/v1/topics/w/records", "application/json", `{"records":[{"value":"a"}]}`)
	code, _, body := e.req("GET", "/v1/topics/w/partitions/0/records?offset=0&max=0&wait_ms=5000", "", "")
	if want := `{"records":[],"next_offset":0,"high_watermark":1,"log_start_offset":0}`; code != 200 || strings.TrimSpace(body) != want {
		t.Fatalf("max=0 with a record there: %d %s, want %s", code, body, want)
	}
	go func() {
		time.Sleep(300 * time.Millisecond)
		e.req("POST", "/v1/topics/w/records", "application/json", `{"records":[{"value":"b"}]}`)
	}()
	start := time.Now()
	code, h, body := e.req("GET", "/v1/topics/w/partitions/0/records?offset=1&max=0&wait_ms=10000&format=batches", "", "")
	if code != 200 || body != "" || h.Get("Eddy-High-Watermark") != "2" || h.Get("Eddy-Next-Offset") != "1" {
		t.Fatalf("max=0 woken by an append: %d %q %v", code, body, h)
	}
	if waited := time.Since(start); waited < 200*time.Millisecond || waited > 5*time.Second {
		t.Fatalf("max=0 answered after %v; want once the record came", waited)
	}
}

func TestStorageFullRefusesProduce(t *testing.T) {
	// A topic made while there was room; then the node starts again
	// demanding more free space than any disk has: the guard trips at start.
	dir, addr := t.TempDir(), testutil.FreeAddr(t)
	e := newEnv(t, multiraft.Config{Dir: dir, RaftAddr: addr}, Config{})
	e.mustCreate("full", 1, "")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	e.srv.Close(ctx)
	cancel()
	e.host.Close()
	e = newEnv(t, multiraft.Config{Dir: dir, RaftAddr: addr, MinFreeBytes: 1 << 62}, Config{})
	var code int
	var h http.Header
	var body string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) { // until it knows its leaders
		code, h, body = e.req("POST", "/v1/topics/full/records", "application/json", `{"records":[{"value":1}]}`)
		if code != 503 || time.Now().After(deadline) {
			break
		}
	}
	if code != 507 || errorCode(t, body) != "storage_full" || h.Get("Retry-After") == "" {
		t.Fatalf("%d %s %v", code, body, h)
	}
	_, _, out := e.req("GET", "/v1/topics/full/partitions/0/offsets", "", "")
	if !strings.Contains(out, `"latest":0`) {
		t.Fatalf("appended on a full disk: %s", out)
	}
	// Reads keep working.
	if code, _, _ := e.req("GET", "/v1/topics/full/partitions/0/records", "", ""); code != 200 {
		t.Fatalf("fetch on a full disk: %d", code)
	}
	// Every other write is refused too, before anything is written: a
	// topic (its partitions' Raft logs are preallocated), a tenant.
	if code, _, body := e.req("POST", "/v1/topics", "application/json", `{"name":"more"}`); code != 507 || errorCode(t, body) != "storage_full" {
		t.Fatalf("create a topic on a full disk: %d %s", code, body)
	}
	if code, _, body := e.req("POST", "/v1/tenants", "application/json", `{"name":"acme"}`); code != 507 || errorCode(t, body) != "storage_full" {
		t.Fatalf("create a tenant on a full disk: %d %s", code, body)
	}
}

// TestStrictNumbersAndTimestamps: a partition has one spelling ("+1" and
// "01" are not partition 1), and a create time far in the future is
// refused instead of making a segment that never ages out.
func TestStrictNumbersAndTimestamps(t *testing.T) {
	e := newEnv(t, multiraft.Config{}, Config{})
	e.mustCreate("t", 2, "")
	for _, p := range []string{"%2B1", "01", "1.0", "-0"} {
		if code, _, body := e.req("GET", "/v1/topics/t/partitions/"+p+"/records?offset=0", "", ""); code != 404 {
			t.Errorf("partition %s: %d %s", p, code, body)
		}
	}
	if code, _, body := e.req("GET", "/v1/topics/t/partitions/1/records?offset=%2B0", "", ""); code != 400 {
		t.Errorf("offset +0: %d %s", code, body)
	}
	if code, _, body := e.req("POST", "/v1/topics/t/records", "application/json", `{"records":[{"value":1,"timestamp":9223372036854775807}]}`); code != 400 || errorCode(t, body) != "invalid_request" {
		t.Errorf("timestamp 2^63-1: %d %s", code, body)
	}
	if code, _, body := e.req("POST", "/v1/topics/t/records", "application/json", fmt.Sprintf(`{"records":[{"value":1,"timestamp":%d}]}`, time.Now().Add(time.Minute).UnixMilli())); code != 200 {
		t.Errorf("a timestamp a minute ahead: %d %s", code, body)
	}
}
