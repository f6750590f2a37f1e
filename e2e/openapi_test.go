package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"sort"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers/legacy"
)

// TestOpenAPI: docs/openapi.yaml is a valid OpenAPI 3.1 document, and
// every operation but the destructive ones, sent to a live node with the
// document's examples (path parameters naming what the run created), is
// answered as the document says: a documented status, and a body that
// fits its schema (the success's, or the Error schema). The route list
// itself is checked against the router by bridges/http TestOpenAPIRoutes.
func TestOpenAPI(t *testing.T) {
	ctx := context.Background()
	openapi3filter.RegisterBodyDecoder("text/html", openapi3filter.FileBodyDecoder) // the console's files
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromFile("../docs/openapi.yaml")
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	if err := doc.Validate(ctx); err != nil {
		t.Fatalf("docs/openapi.yaml is not valid OpenAPI: %v", err)
	}
	p := newProc(t)
	p.start()
	doc.Servers = openapi3.Servers{{URL: "http://" + p.httpAddr}}
	router, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	values := strings.NewReplacer("{topic}", "new1", "{tenant}", "default", "{partition}", "0", "{group}", "g1",
		"{member}", "m-none", "{name}", "oas", "{client}", "dev-none", "{kid}", "k-none", "{id}", "9", "{profile}", "heap", "{path}", "index.html")
	type call struct{ method, path string }
	var calls []call
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			calls = append(calls, call{method, path})
		}
	}
	// Creations first (what the others name), then the rest, by path.
	sort.Slice(calls, func(i, j int) bool {
		ci, cj := calls[i].method == "POST" && !strings.Contains(calls[i].path, "{"), calls[j].method == "POST" && !strings.Contains(calls[j].path, "{")
		if ci != cj {
			return ci
		}
		return calls[i].path+calls[i].method < calls[j].path+calls[j].method
	})
	checked := 0
	for _, c := range calls {
		op := doc.Paths.Value(c.path).GetOperation(c.method)
		switch {
		case c.method == "DELETE", c.path == "/v1/cluster/nodes", strings.HasSuffix(c.path, "/repair"),
			strings.HasSuffix(c.path, "/tail"), c.path == "/v1/tenants/{tenant}" && c.method == "PATCH":
			continue // destructive, or an endless stream
		}
		url := "http://" + p.httpAddr + values.Replace(c.path)
		var body []byte
		ctype := ""
		for _, prm := range op.Parameters {
			if prm.Value.In == "query" {
				sep := "?"
				if strings.Contains(url, "?") {
					sep = "&"
				}
				url += sep + prm.Value.Name + "=" + prm.Value.Example.(string)
			}
		}
		if rb := op.RequestBody; rb != nil {
			for ct, mt := range rb.Value.Content {
				ctype = ct
				if mt.Example != nil {
					body, _ = json.Marshal(mt.Example)
				} else {
					body = []byte("not wasm")
				}
			}
		}
		req, _ := http.NewRequest(c.method, url, bytes.NewReader(body))
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		req.Header.Set("Authorization", "Bearer "+p.token)
		route, pathParams, err := router.FindRoute(req)
		if err != nil {
			t.Fatalf("%s %s: no route in the document: %v", c.method, url, err)
		}
		in := &openapi3filter.RequestValidationInput{Request: req, PathParams: pathParams, Route: route,
			Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}}
		if err := openapi3filter.ValidateRequest(ctx, in); err != nil {
			t.Errorf("%s %s: the document's own example does not fit it: %v", c.method, c.path, err)
		}
		req.Body = io.NopCloser(bytes.NewReader(body))
		noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", c.method, url, err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: resp.StatusCode, Header: resp.Header,
			Body: io.NopCloser(bytes.NewReader(got)), Options: &openapi3filter.Options{IncludeResponseStatus: true}}
		if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
			t.Errorf("%s %s: answered %d %.200s, which the document does not describe: %v", c.method, c.path, resp.StatusCode, got, err)
		}
		checked++
	}
	t.Logf("%d operations answered as documented", checked)
}
