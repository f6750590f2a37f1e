package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
)

// TestHTTPHostileRequests: every operation of docs/openapi.yaml, asked
// with hostile path parameters (other tenants' names, dot segments,
// escapes, megabyte names), query values at their extremes or of the
// wrong type, and bodies made from the operation's schema with values of
// the wrong type, out of range or enormous, or with no schema at all;
// with the operator's token, a tenant's, a forged one or none. None is
// answered 500 (a refusal names its fault, 4xx, or the node's state,
// 503 and 507), every answer is JSON with a code unless the document
// says otherwise, and the node stays up and serves a well-formed client
// at the end. EDDY_FUZZ_SEED replays a run.
func TestHTTPHostileRequests(t *testing.T) {
	p := newProc(t)
	p.start()
	p.mustCreateTopic("mine", 2)
	acme := p.otherTenant()
	doc, err := openapi3.NewLoader().LoadFromFile("../docs/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	h := &hfuzz{rng: fuzzRand(t)}
	type call struct {
		method, path string
		op           *openapi3.Operation
	}
	var calls []call
	for path, item := range doc.Paths.Map() {
		if strings.HasPrefix(path, "/debug/") {
			continue // off unless pprof is set; a profile takes its seconds
		}
		for method, op := range item.Operations() {
			calls = append(calls, call{method, path, op})
		}
	}
	slices.SortFunc(calls, func(a, b call) int { return strings.Compare(a.path+a.method, b.path+b.method) })
	tokens := []string{p.token, p.token, p.token, acme, acme, "", p.token[:len(p.token)-4] + "AAAA", "not.a.jwt"}
	client := &http.Client{Timeout: 3 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	deadline := time.Now().Add(60 * time.Second)
	codes := map[int]int{}
	sent := 0
	for i := 0; i < 10000 && time.Now().Before(deadline); i++ {
		c := calls[h.rng.IntN(len(calls))]
		path := h.path(c.path)
		q := url.Values{}
		for _, prm := range c.op.Parameters {
			if prm.Value.In == "query" && h.rng.IntN(3) > 0 {
				q.Set(prm.Value.Name, h.scalar(prm.Value.Schema))
			}
		}
		if len(q) > 0 {
			path += "?" + q.Encode()
		}
		var body []byte
		ctype := "application/json"
		if rb := c.op.RequestBody; rb != nil {
			for ct, mt := range rb.Value.Content {
				ctype = ct
				if ct == "application/json" && mt.Schema != nil && h.rng.IntN(6) > 0 {
					body, _ = json.Marshal(h.value(mt.Schema, 0))
				} else {
					body = h.raw()
				}
			}
		}
		req, err := http.NewRequest(c.method, "http://"+p.httpAddr+path, bytes.NewReader(body))
		if err != nil {
			continue // a path net/http will not send
		}
		req.Header.Set("Content-Type", ctype)
		if tok := tokens[h.rng.IntN(len(tokens))]; tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		sent++
		resp, err := client.Do(req)
		if !p.alive() {
			t.Fatalf("the node died at %s %s\n%s", c.method, path[:min(len(path), 300)], p.diag())
		}
		if err != nil {
			continue // a long poll or a stream past the client's timeout
		}
		got, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		codes[resp.StatusCode]++
		if resp.StatusCode >= 500 && resp.StatusCode != 503 && resp.StatusCode != 507 {
			t.Errorf("%s %s (%d-byte body %.200q): %d %.300s", c.method, path[:min(len(path), 300)], len(body), body, resp.StatusCode, got)
		}
		if resp.StatusCode >= 400 && strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
			var e struct {
				Error struct{ Code, Message string }
			}
			if json.Unmarshal(got, &e) != nil || e.Error.Code == "" || e.Error.Message == "" {
				t.Errorf("%s %s: %d without a coded error: %.300s", c.method, c.path, resp.StatusCode, got)
			}
		}
	}
	t.Logf("%d requests, answers by status: %v", sent, codes)
	if codes[200]+codes[201]+codes[202]+codes[204] == 0 || len(codes) < 5 {
		t.Fatalf("answers by status %v: the fuzzer asks little the node takes", codes)
	}
	// A well-formed client is served as before.
	p.mustCreateTopic("after", 1)
	if code, err := p.do("POST", "/v1/topics/after/records", "application/json", []byte(`{"records":[{"value":"ok"}]}`), nil); err != nil || code != 200 {
		t.Fatalf("produce after the fuzz: %d %v\n%s", code, err, p.diag())
	}
}

// hfuzz makes hostile HTTP requests.
type hfuzz struct{ rng *rand.Rand }

var hostileNames = []string{"mine", "theirs", "default", "acme", "nothing-here", "0", "-1", "99999999999999999999",
	"..", "%2e%2e", "a%2Fb", "%00", "ü", "*", "$share", strings.Repeat("n", 300)}

// path fills a path's parameters.
func (h *hfuzz) path(p string) string {
	for {
		i := strings.IndexByte(p, '{')
		if i < 0 {
			return p
		}
		j := strings.IndexByte(p[i:], '}')
		v := h.name()
		if h.rng.IntN(60) == 0 {
			v = strings.Repeat("x", 1<<20)
		}
		p = p[:i] + v + p[i+j+1:]
	}
}

// name is a name of something there, or a hostile one.
func (h *hfuzz) name() string {
	if h.rng.IntN(2) == 0 {
		return []string{"mine", "theirs", "default", "acme", "0", "1"}[h.rng.IntN(6)]
	}
	return hostileNames[h.rng.IntN(len(hostileNames))]
}

// scalar is a query value: of the parameter's type at an edge, or of
// another type.
func (h *hfuzz) scalar(s *openapi3.SchemaRef) string {
	switch h.rng.IntN(4) {
	case 0:
		return h.name()
	case 1:
		return strconv.FormatInt(h.int(), 10)
	case 2:
		if s != nil && s.Value != nil && len(s.Value.Enum) > 0 {
			return fmt.Sprint(s.Value.Enum[h.rng.IntN(len(s.Value.Enum))])
		}
		return "1e309"
	}
	return ""
}

func (h *hfuzz) int() int64 {
	return []int64{0, 1, -1, math.MaxInt32, math.MinInt32, math.MaxInt64, math.MinInt64, h.rng.Int64N(1 << 40)}[h.rng.IntN(8)]
}

// value is a JSON value made from schema s, now and then of another type
// or size than it says.
func (h *hfuzz) value(s *openapi3.SchemaRef, depth int) any {
	if h.rng.IntN(8) == 0 || s == nil || s.Value == nil || depth > 6 {
		return h.wrong(depth)
	}
	v := s.Value
	if len(v.OneOf) > 0 {
		return h.value(v.OneOf[h.rng.IntN(len(v.OneOf))], depth+1)
	}
	if len(v.AnyOf) > 0 {
		return h.value(v.AnyOf[h.rng.IntN(len(v.AnyOf))], depth+1)
	}
	if len(v.AllOf) > 0 {
		return h.value(v.AllOf[0], depth+1)
	}
	if len(v.Enum) > 0 && h.rng.IntN(3) > 0 {
		return v.Enum[h.rng.IntN(len(v.Enum))]
	}
	switch {
	case v.Type.Is("object") || len(v.Properties) > 0:
		o := map[string]any{}
		for name, ps := range v.Properties {
			if h.rng.IntN(4) > 0 || slices.Contains(v.Required, name) {
				o[name] = h.value(ps, depth+1)
			}
		}
		return o
	case v.Type.Is("array"):
		n := h.rng.IntN(4)
		if h.rng.IntN(30) == 0 {
			n = 5000
		}
		a := make([]any, n)
		for i := range a {
			a[i] = h.value(v.Items, depth+1)
		}
		return a
	case v.Type.Is("integer"), v.Type.Is("number"):
		return h.int()
	case v.Type.Is("boolean"):
		return h.rng.IntN(2) == 0
	case v.Type.Is("string"):
		if h.rng.IntN(30) == 0 {
			return strings.Repeat("s", 1<<20)
		}
		return h.name()
	}
	return h.wrong(depth)
}

// wrong is a JSON value of any type.
func (h *hfuzz) wrong(depth int) any {
	switch h.rng.IntN(7) {
	case 0:
		return nil
	case 1:
		return 1e308
	case 2:
		return -1
	case 3:
		return "\u0000\ud7ff"
	case 4:
		if depth < 6 {
			return []any{h.wrong(depth + 1)}
		}
	case 5:
		if depth < 6 {
			return map[string]any{"": h.wrong(depth + 1)}
		}
	}
	return true
}

// raw is a body that is not what any schema says.
func (h *hfuzz) raw() []byte {
	switch h.rng.IntN(5) {
	case 0:
		return nil
	case 1:
		return []byte(`{"records":[`)
	case 2:
		return bytes.Repeat([]byte("["), 100000)
	case 3:
		b := make([]byte, h.rng.IntN(512))
		for i := range b {
			b[i] = byte(h.rng.IntN(256))
		}
		return b
	}
	return []byte("\x00asm\x01\x00\x00\x00") // a WebAssembly header and nothing else
}
