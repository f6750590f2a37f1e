package httpapi

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/eddy-broker/eddy/multiraft"
	"github.com/eddy-broker/eddy/tenants"
)

type route struct {
	method, path, ctype, body string
	need                      string // produce, consume, describe, admin, operator
}

// routes: every route of the API, on topic "t" of tenant default.
func routes(prefix string) []route {
	return []route{
		{"POST", prefix + "/topics", "application/json", `{"name":"new1"}`, "admin"},
		{"GET", prefix + "/topics", "", "", "list"},
		{"GET", prefix + "/topics/t", "", "", "describe"},
		{"DELETE", prefix + "/topics/t", "", "", "admin"},
		{"POST", prefix + "/topics/t/records", "application/json", `{"records":[{"value":1}]}`, "produce"},
		{"GET", prefix + "/topics/t/partitions/0/records", "", "", "consume"},
		{"GET", prefix + "/topics/t/partitions/0/offsets", "", "", "consume"},
	}
}

var tenantRoutes = []route{
	{"GET", "/v1/tenants/default", "", "", "admin"},
	{"PATCH", "/v1/tenants/default", "application/json", `{"quotas":{}}`, "operator"},
	{"DELETE", "/v1/tenants/default", "", "", "operator"},
	{"POST", "/v1/tenants/default/tokens", "application/json", `{"scopes":["consume:*"]}`, "admin"},
	{"GET", "/v1/tenants/default/keys", "", "", "admin"},
	{"POST", "/v1/tenants/default/keys", "application/json", `{"kid":"k","alg":"EdDSA","public_key_pem":"x"}`, "admin"},
	{"DELETE", "/v1/tenants/default/keys/k", "", "", "admin"},
}

var operatorRoutes = []route{
	{"POST", "/v1/tenants", "application/json", `{"name":"zeta"}`, "operator"},
	{"GET", "/v1/cluster", "", "", "operator"},
	{"GET", "/metrics", "", "", "operator"},
}

// TestAuthEveryRoute walks every route with each kind of bad token, with a
// token of another tenant and with a token lacking the scope.
func TestAuthEveryRoute(t *testing.T) {
	e := newEnv(t, multiraft.Config{}, Config{})
	e.mustCreate("t", 1, "")
	if code, _, body := e.req("POST", "/v1/tenants", "application/json", `{"name":"globex"}`); code != 201 {
		t.Fatalf("create tenant: %d %s", code, body)
	}
	e.req("POST", "/v1/tenants/globex/topics", "application/json", `{"name":"secret"}`)

	// Bad tokens of every kind.
	good := e.mint("default", "admin")
	parts := strings.Split(good, ".")
	b64 := func(v any) string { b, _ := json.Marshal(v); return base64.RawURLEncoding.EncodeToString(b) }
	_, otherPriv, _ := ed25519.GenerateKey(rand.Reader)
	sign := func(s *tenants.Signer) string {
		tok, _, err := s.Issue("default", "x", []string{"admin"}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	expired := sign(&tenants.Signer{KeyID: "op-test", Key: e.signer.Key, Audience: "test-cluster", Now: func() time.Time { return time.Now().Add(-2 * time.Hour) }})
	early := sign(&tenants.Signer{KeyID: "op-test", Key: e.signer.Key, Audience: "test-cluster", Now: func() time.Time { return time.Now().Add(time.Hour) }})
	bad := map[string]string{
		"token_missing":        "",
		"token_malformed":      "not-a-jwt",
		"token_alg_none":       b64(map[string]string{"alg": "none", "kid": "op-test"}) + "." + parts[1] + ".",
		"token_alg_mismatch":   b64(map[string]string{"alg": "HS256", "kid": "op-test"}) + "." + parts[1] + "." + parts[2],
		"token_bad_signature":  sign(&tenants.Signer{KeyID: "op-test", Key: otherPriv, Audience: "test-cluster"}),
		"token_expired":        expired,
		"token_not_yet_valid":  early,
		"token_wrong_audience": sign(&tenants.Signer{KeyID: "op-test", Key: e.signer.Key, Audience: "another-cluster"}),
		"token_unknown_kid":    sign(&tenants.Signer{KeyID: "op-ghost", Key: e.signer.Key, Audience: "test-cluster"}),
	}
	all := append(append(append(routes("/v1"), routes("/v1/tenants/default")...), tenantRoutes...), operatorRoutes...)
	for code, tok := range bad {
		for _, r := range all {
			st, _, body := e.reqAs(tok, r.method, r.path, r.ctype, r.body)
			if st != 401 || errorCode(t, body) != code {
				t.Errorf("%s %s with %s: %d %s", r.method, r.path, code, st, body)
			}
		}
	}

	// Another tenant's admin token: 404 on everything of default's, exactly
	// as for a tenant or topic that does not exist.
	globex := e.mint("globex", "admin")
	for _, r := range append(routes("/v1/tenants/default"), tenantRoutes...) {
		st, _, body := e.reqAs(globex, r.method, r.path, r.ctype, r.body)
		if st != 404 || errorCode(t, body) != "not_found" {
			t.Errorf("globex on %s %s: %d %s", r.method, r.path, st, body)
		}
		if strings.Contains(body, "globex") {
			t.Errorf("error names the caller's tenant, not the asked one: %s", body)
		}
	}
	// The same 404 as a tenant that does not exist at all.
	_, _, a := e.reqAs(globex, "GET", "/v1/tenants/default/topics/t", "", "")
	_, _, b := e.reqAs(globex, "GET", "/v1/tenants/nosuch/topics/t", "", "")
	if strings.Replace(a, "default", "X", 1) != strings.Replace(b, "nosuch", "X", 1) {
		t.Errorf("existing and missing tenants answered differently: %s vs %s", a, b)
	}
	// default's lists never show globex's topics or tenant.
	_, _, out := e.reqAs(e.mint("default", "admin"), "GET", "/v1/topics", "", "")
	if strings.Contains(out, "secret") {
		t.Errorf("default lists globex's topic: %s", out)
	}
	_, _, out = e.reqAs(e.mint("default", "admin"), "GET", "/v1/tenants", "", "")
	if strings.Contains(out, "globex") || !strings.Contains(out, "default") {
		t.Errorf("tenant list: %s", out)
	}
	// globex sees its own topic under /v1/topics.
	if st, _, out := e.reqAs(globex, "GET", "/v1/topics/secret", "", ""); st != 200 {
		t.Errorf("globex own topic: %d %s", st, out)
	}

	// Too few scopes, within the tenant: 403 (the name's scope is checked
	// before existence, so this says nothing about other topics).
	tokens := map[string]string{
		"produce":  e.mint("default", "produce:t"),
		"consume":  e.mint("default", "consume:t*"),
		"admin":    e.mint("default", "admin"),
		"operator": e.token,
	}
	allows := map[string]map[string]bool{
		"produce":  {"produce": true, "describe": true, "list": true},
		"consume":  {"consume": true, "describe": true, "list": true},
		"admin":    {"produce": true, "consume": true, "describe": true, "list": true, "admin": true},
		"operator": {"produce": true, "consume": true, "describe": true, "list": true, "admin": true, "operator": true},
	}
	for who, tok := range tokens {
		for _, r := range append(append(routes("/v1"), tenantRoutes...), operatorRoutes...) {
			if r.method == "DELETE" || r.need == "operator" && who == "operator" {
				continue // destructive, and checked below
			}
			st, _, body := e.reqAs(tok, r.method, r.path, r.ctype, r.body)
			if allows[who][r.need] {
				if st == 401 || st == 403 {
					t.Errorf("%s token refused on %s %s: %d %s", who, r.method, r.path, st, body)
				}
			} else if st != 403 || errorCode(t, body) != "forbidden" {
				t.Errorf("%s token on %s %s: %d %s, want 403 forbidden", who, r.method, r.path, st, body)
			}
		}
	}
	// A consume token for t* cannot produce to t, nor read u.
	if st, _, _ := e.reqAs(tokens["consume"], "GET", "/v1/topics/u/partitions/0/offsets", "", ""); st != 403 {
		t.Errorf("consume:t* read u: %d", st)
	}
	// An admin cannot mint an operator token.
	if st, _, body := e.reqAs(tokens["admin"], "POST", "/v1/tenants/default/tokens", "application/json", `{"scopes":["operator"]}`); st != 403 {
		t.Errorf("admin minted operator: %d %s", st, body)
	}
	// healthz and readyz need no token.
	for _, p := range []string{"/healthz", "/readyz"} {
		if st, _, _ := e.reqAs("", "GET", p, "", ""); st == 401 {
			t.Errorf("%s needs a token", p)
		}
	}
}
