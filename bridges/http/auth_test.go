package httpapi

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/eddy-broker/eddy"
	"github.com/eddy-broker/eddy/multiraft"
	"github.com/eddy-broker/eddy/series"
	"github.com/eddy-broker/eddy/tenants"
	"github.com/golang-jwt/jwt/v5"
)

// route is one route of the API, by the pattern it is registered with.
type route struct {
	method, pattern string
	query           string // appended to the path
	ctype, body     string
	// need is what a token must hold: list (any token of the tenant),
	// describe (produce or consume on the topic), produce, consume, admin,
	// operator, or group: consume on every topic of the group, refused as
	// not found (a group the token may not see does not exist for it).
	need string
	// destructive routes are called only by tokens that must be refused.
	destructive bool
	// stream answers 200 with an endless body (the live tail).
	stream bool
}

// topicRoutes are the routes under both /v1 and /v1/tenants/{tenant}.
var topicRoutes = []route{
	{method: "POST", pattern: "/topics", ctype: "application/json", body: `{"name":"new1"}`, need: "admin"},
	{method: "GET", pattern: "/topics", need: "list"},
	{method: "GET", pattern: "/topics/{topic}", need: "describe"},
	{method: "DELETE", pattern: "/topics/{topic}", need: "admin", destructive: true},
	{method: "PATCH", pattern: "/topics/{topic}", ctype: "application/json", body: `{"config":{"retention.ms":"60000"}}`, need: "admin"},
	{method: "POST", pattern: "/topics/{topic}/records", ctype: "application/json", body: `{"records":[{"value":1}]}`, need: "produce"},
	{method: "GET", pattern: "/topics/{topic}/partitions/{partition}/records", query: "?wait_ms=0", need: "consume"},
	{method: "DELETE", pattern: "/topics/{topic}/partitions/{partition}/records", query: "?before=0", need: "admin"},
	{method: "GET", pattern: "/topics/{topic}/partitions/{partition}/offsets", need: "consume"},
	{method: "GET", pattern: "/topics/{topic}/partitions/{partition}/checksum", need: "consume"},
	{method: "POST", pattern: "/topics/{topic}/partitions/{partition}/repair", need: "operator", destructive: true},
	{method: "GET", pattern: "/topics/{topic}/tail", need: "consume", stream: true},
	{method: "GET", pattern: "/series", need: "list"},
	{method: "GET", pattern: "/mqtt/connections", need: "admin"},
	{method: "DELETE", pattern: "/mqtt/connections/{client}", need: "admin"},
	{method: "GET", pattern: "/topics/{topic}/partition-for-key", query: "?key=k", need: "describe"},
	{method: "PUT", pattern: "/transforms/{name}", ctype: "application/wasm", body: "not wasm", need: "admin"},
	{method: "GET", pattern: "/transforms", need: "admin"},
	{method: "GET", pattern: "/transforms/{name}", need: "admin"},
	{method: "DELETE", pattern: "/transforms/{name}", need: "admin"},
	{method: "POST", pattern: "/transforms/{name}/test", ctype: "application/json", body: `{"records":[{"value":1}]}`, need: "admin"},
	{method: "PUT", pattern: "/topics/{topic}/transform", ctype: "application/json", body: `{"module":"tx"}`, need: "admin"},
	{method: "DELETE", pattern: "/topics/{topic}/transform", need: "admin"},
	{method: "POST", pattern: "/groups/{group}/members", ctype: "application/json", body: `{"topics":["t"],"session_timeout_ms":60000}`, need: "consume"},
	{method: "GET", pattern: "/groups/{group}/members/{member}/records", query: "?wait_ms=0", need: "consume"},
	{method: "POST", pattern: "/groups/{group}/members/{member}/commit", ctype: "application/json", body: `{}`, need: "consume"},
	{method: "DELETE", pattern: "/groups/{group}/members/{member}", need: "consume", destructive: true},
	{method: "GET", pattern: "/groups", need: "list"},
	{method: "GET", pattern: "/groups/{group}", need: "group"},
	{method: "POST", pattern: "/groups/{group}/offsets", ctype: "application/json", body: `{"topic":"t","to":"earliest"}`, need: "consume"},
	{method: "DELETE", pattern: "/groups/{group}/offsets", query: "?topic=t", need: "group", destructive: true},
	{method: "DELETE", pattern: "/groups/{group}", need: "group", destructive: true},
	{method: "POST", pattern: "/links", ctype: "application/json", body: `{"name":"l1","to":["127.0.0.1:1"],"topics":["t"]}`, need: "admin"},
	{method: "GET", pattern: "/links", need: "admin"},
	{method: "GET", pattern: "/links/{name}", need: "admin"},
	{method: "POST", pattern: "/links/{name}/pause", need: "admin"},
	{method: "POST", pattern: "/links/{name}/resume", need: "admin"},
	{method: "DELETE", pattern: "/links/{name}", need: "admin", destructive: true},
}

// tenantRoutes act on a tenant as a whole.
var tenantRoutes = []route{
	{method: "GET", pattern: "/v1/tenants/{tenant}", need: "admin"},
	{method: "PATCH", pattern: "/v1/tenants/{tenant}", ctype: "application/json", body: `{"quotas":{}}`, need: "operator", destructive: true},
	{method: "DELETE", pattern: "/v1/tenants/{tenant}", need: "operator", destructive: true},
	{method: "POST", pattern: "/v1/tenants/{tenant}/tokens", ctype: "application/json", body: `{"scopes":["consume:*"]}`, need: "admin"},
	{method: "GET", pattern: "/v1/tenants/{tenant}/keys", need: "admin"},
	{method: "POST", pattern: "/v1/tenants/{tenant}/keys", ctype: "application/json", body: `{"kid":"k","alg":"EdDSA","public_key_pem":"x"}`, need: "admin"},
	{method: "DELETE", pattern: "/v1/tenants/{tenant}/keys/{kid}", need: "admin"},
	{method: "PUT", pattern: "/v1/tenants/{tenant}/mqtt", ctype: "application/json", body: `{"rules":[]}`, need: "admin"},
	{method: "DELETE", pattern: "/v1/tenants/{tenant}/mqtt", need: "admin"},
	{method: "POST", pattern: "/v1/tenants/{tenant}/mqtt/test", ctype: "application/json", body: `{"topic":"t/dev-1"}`, need: "admin"},
}

// clusterRoutes act on the cluster (and /v1/tenants lists tenants).
var clusterRoutes = []route{
	{method: "POST", pattern: "/v1/tenants", ctype: "application/json", body: `{"name":"zeta"}`, need: "operator", destructive: true},
	{method: "GET", pattern: "/v1/tenants", need: "list"},
	{method: "GET", pattern: "/v1/cluster", need: "operator"},
	{method: "GET", pattern: "/v1/cluster/partitions", need: "operator"},
	{method: "GET", pattern: "/v1/whoami", need: "list"},
	{method: "POST", pattern: "/v1/cluster/nodes", ctype: "application/json", body: `{"id":9,"raft_addr":"127.0.0.1:1"}`, need: "operator", destructive: true},
	{method: "DELETE", pattern: "/v1/cluster/nodes/{id}", need: "operator", destructive: true},
	{method: "GET", pattern: "/v1/bridges", need: "operator"},
	{method: "GET", pattern: "/metrics", need: "operator"},
	{method: "GET", pattern: "/debug/pprof/{profile:*}", need: "operator"},
}

// allRoutes: the topic routes under both prefixes, then the others.
func allRoutes() (plain, scoped, rest []route) {
	for _, r := range topicRoutes {
		a, b := r, r
		a.pattern, b.pattern = "/v1"+r.pattern, "/v1/tenants/{tenant}"+r.pattern
		plain, scoped = append(plain, a), append(scoped, b)
	}
	return plain, append(scoped, tenantRoutes...), clusterRoutes
}

// path fills in the route's parameters: tenant, topic "t", partition 0,
// group "g" with member.
func (r route) path(tenant, member string) string {
	p := strings.NewReplacer("{tenant}", tenant, "{topic}", "t", "{partition}", "0", "{name}", "tx",
		"{group}", "g", "{member}", member, "{kid}", "k", "{id}", "9", "{profile:*}", "cmdline", "{client}", "dev-1").Replace(r.pattern)
	return p + r.query
}

// call sends the route's request as tok; a stream's 200 is not read.
func (e *env) call(tok string, r route, path string) (int, string) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, r.method, e.base+path, strings.NewReader(r.body))
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	if r.ctype != "" {
		req.Header.Set("Content-Type", r.ctype)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", r.method, path, err)
	}
	defer resp.Body.Close()
	if r.stream && resp.StatusCode == 200 {
		return 200, ""
	}
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestAuthRouteTableComplete: the walk below covers every registered
// route, so a new route cannot ship without its auth being checked.
func TestAuthRouteTableComplete(t *testing.T) {
	e := newEnv(t, multiraft.Config{}, Config{Pprof: true, Console: true, Series: series.New(series.Config{})})
	plain, scoped, rest := allRoutes()
	want := map[string]bool{}
	for _, r := range append(append(plain, scoped...), rest...) {
		want[r.method+" "+r.pattern] = true
	}
	checkRoutes(t, e.srv, want, "the auth walk's table", func(p string) string {
		if p == "/healthz" || p == "/readyz" || p == "/" || p == "/console/{path:*}" {
			return "" // open by design (the console's files hold no data), checked in TestAuthEveryRoute
		}
		return p
	})
}

// checkRoutes fails the test unless the server's routes ("METHOD /path",
// the path as norm rewrites it; "" skips it) are exactly want's keys.
func checkRoutes(t *testing.T, s *Server, want map[string]bool, table string, norm func(string) string) {
	t.Helper()
	var missing []string
	for method, paths := range s.router.List() {
		for _, p := range paths {
			if p = norm(p); p == "" {
				continue
			}
			k := method + " " + p
			if !want[k] {
				missing = append(missing, k)
			}
			delete(want, k)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("routes missing from %s: %s", table, strings.Join(missing, ", "))
	}
	if len(want) > 0 {
		t.Errorf("%s names routes the server does not register: %v", table, want)
	}
}

// TestAuthEveryRoute walks every route with each kind of bad token, with a
// token of another tenant and with tokens lacking the scope.
func TestAuthEveryRoute(t *testing.T) {
	e := newEnv(t, multiraft.Config{}, Config{Pprof: true, Console: true, Series: series.New(series.Config{})})
	e.mustCreate("t", 1, "")
	if code, _, body := e.req("POST", "/v1/tenants", "application/json", `{"name":"globex"}`); code != 201 {
		t.Fatalf("create tenant: %d %s", code, body)
	}
	e.req("POST", "/v1/tenants/globex/topics", "application/json", `{"name":"secret"}`)
	// A member of group g of default, on topic t.
	code, _, body := e.req("POST", "/v1/groups/g/members", "application/json", `{"topics":["t"],"session_timeout_ms":60000}`)
	var joined struct {
		MemberID string `json:"member_id"`
	}
	if json.Unmarshal([]byte(body), &joined); code != 201 || joined.MemberID == "" {
		t.Fatalf("join: %d %s", code, body)
	}
	member := joined.MemberID
	// A key of globex's own, to sign for another tenant and as another issuer.
	gpub, gpriv, _ := ed25519.GenerateKey(rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(gpub)
	keyBody, _ := json.Marshal(map[string]string{"kid": "globex-k1", "alg": "EdDSA",
		"public_key_pem": string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))})
	if code, _, body := e.req("POST", "/v1/tenants/globex/keys", "application/json", string(keyBody)); code != 201 {
		t.Fatalf("globex key: %d %s", code, body)
	}
	globexSigned := func(tenant, issuer string) string {
		c := tenants.Claims{Tenant: eddy.TenantID(tenant), Scopes: []string{"admin"}, RegisteredClaims: jwt.RegisteredClaims{
			Issuer: issuer, Subject: "x", Audience: jwt.ClaimStrings{"test-cluster"},
			IssuedAt: jwt.NewNumericDate(time.Now()), ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour))}}
		tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, c)
		tok.Header["kid"] = "globex-k1"
		s, err := tok.SignedString(gpriv)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}

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
	// An admin token of tenant reborn, deleted and created again since.
	e.req("POST", "/v1/tenants", "application/json", `{"name":"reborn"}`)
	reborn := e.mint("reborn", "admin")
	e.req("DELETE", "/v1/tenants/reborn", "", "")
	if code, _, body := e.req("POST", "/v1/tenants", "application/json", `{"name":"reborn"}`); code != 201 {
		t.Fatalf("create reborn again: %d %s", code, body)
	}
	expired := sign(&tenants.Signer{KeyID: "op-test", Key: e.signer.Key, Audience: "test-cluster", Now: func() time.Time { return time.Now().Add(-2 * time.Hour) }})
	early := sign(&tenants.Signer{KeyID: "op-test", Key: e.signer.Key, Audience: "test-cluster", Now: func() time.Time { return time.Now().Add(time.Hour) }})
	bad := map[string]string{
		"token_missing":         "",
		"token_malformed":       "not-a-jwt",
		"token_alg_none":        b64(map[string]string{"alg": "none", "kid": "op-test"}) + "." + parts[1] + ".",
		"token_alg_mismatch":    b64(map[string]string{"alg": "HS256", "kid": "op-test"}) + "." + parts[1] + "." + parts[2],
		"token_bad_signature":   sign(&tenants.Signer{KeyID: "op-test", Key: otherPriv, Audience: "test-cluster"}),
		"token_expired":         expired,
		"token_not_yet_valid":   early,
		"token_wrong_audience":  sign(&tenants.Signer{KeyID: "op-test", Key: e.signer.Key, Audience: "another-cluster"}),
		"token_unknown_kid":     sign(&tenants.Signer{KeyID: "op-ghost", Key: e.signer.Key, Audience: "test-cluster"}),
		"token_tenant_mismatch": globexSigned("default", "globex"),
		"token_wrong_issuer":    globexSigned("globex", "Globex Inc"),
		"token_revoked":         reborn,
	}
	// Another tenant's issuer with globex's kid: kids are per tenant.
	if st, body := e.call(globexSigned("globex", "default"), route{method: "GET", pattern: "/v1/topics"}, "/v1/topics"); st != 401 || errorCode(t, body) != "token_unknown_kid" {
		t.Errorf("globex's kid under issuer default: %d %s", st, body)
	}
	plain, scoped, rest := allRoutes()
	all := append(append(append([]route{}, plain...), scoped...), rest...)
	for code, tok := range bad {
		for _, r := range all {
			st, body := e.call(tok, r, r.path("default", member))
			if st != 401 || errorCode(t, body) != code {
				t.Errorf("%s %s with %s: %d %s", r.method, r.pattern, code, st, body)
			}
		}
	}
	if st, body := e.call(globexSigned("globex", "globex"), route{method: "GET", pattern: "/v1/topics"}, "/v1/topics"); st != 200 || !strings.Contains(body, "secret") {
		t.Fatalf("globex's own key no longer works: %d %s", st, body)
	}

	// Another tenant's admin token: 404 on every route of default's, with
	// the very answer a tenant that does not exist gets.
	globex := e.mint("globex", "admin")
	for _, tok := range []string{globex, e.mint("globex", "produce:*", "consume:*")} {
		for _, r := range scoped {
			st, body := e.call(tok, r, r.path("default", member))
			if st != 404 || errorCode(t, body) != "not_found" {
				t.Errorf("globex on %s %s: %d %s", r.method, r.pattern, st, body)
			}
			if strings.Contains(body, "globex") {
				t.Errorf("globex on %s %s: the error names the caller's tenant: %s", r.method, r.pattern, body)
			}
			_, missing := e.call(tok, r, r.path("nosuch", member))
			if strings.ReplaceAll(body, "default", "X") != strings.ReplaceAll(missing, "nosuch", "X") {
				t.Errorf("%s %s: an existing tenant and a missing one answer differently: %s vs %s", r.method, r.pattern, body, missing)
			}
		}
	}
	// default's lists never show globex's topics or tenant.
	admin := e.mint("default", "admin")
	for _, p := range []string{"/v1/topics", "/v1/tenants", "/v1/groups", "/v1/transforms"} {
		if _, _, out := e.reqAs(admin, "GET", p, "", ""); strings.Contains(out, "secret") || strings.Contains(out, "globex") {
			t.Errorf("default's %s shows globex: %s", p, out)
		}
	}
	// globex sees its own topic under /v1/topics.
	if st, _, out := e.reqAs(globex, "GET", "/v1/topics/secret", "", ""); st != 200 {
		t.Errorf("globex own topic: %d %s", st, out)
	}

	// Too few scopes, within the tenant: 403 (a name's scope is checked
	// before its existence, so this says nothing about other topics), or
	// 404 for a group the token may not see.
	tokens := map[string]string{
		"produce":  e.mint("default", "produce:t"),
		"consume":  e.mint("default", "consume:t*"),
		"admin":    admin,
		"operator": e.token,
	}
	allows := map[string]map[string]bool{
		"produce":  {"produce": true, "describe": true, "list": true},
		"consume":  {"consume": true, "group": true, "describe": true, "list": true},
		"admin":    {"produce": true, "consume": true, "group": true, "describe": true, "list": true, "admin": true},
		"operator": {"produce": true, "consume": true, "group": true, "describe": true, "list": true, "admin": true, "operator": true},
	}
	for who, tok := range tokens {
		for _, r := range all {
			allowed := allows[who][r.need]
			if allowed && r.destructive {
				continue // what it does is tested with the feature
			}
			st, body := e.call(tok, r, r.path("default", member))
			switch {
			case allowed:
				if st == 401 || st == 403 || r.need == "group" && st == 404 {
					t.Errorf("%s token refused on %s %s: %d %s", who, r.method, r.pattern, st, body)
				}
			case r.need == "group":
				if st != 404 || errorCode(t, body) != "not_found" {
					t.Errorf("%s token on %s %s: %d %s, want 404 not_found", who, r.method, r.pattern, st, body)
				}
			default:
				if st != 403 || errorCode(t, body) != "forbidden" {
					t.Errorf("%s token on %s %s: %d %s, want 403 forbidden", who, r.method, r.pattern, st, body)
				}
			}
		}
	}
	// A consume token for t* cannot read u.
	if st, _, _ := e.reqAs(tokens["consume"], "GET", "/v1/topics/u/partitions/0/offsets", "", ""); st != 403 {
		t.Errorf("consume:t* read u: %d", st)
	}
	// An admin cannot mint an operator token.
	if st, _, body := e.reqAs(admin, "POST", "/v1/tenants/default/tokens", "application/json", `{"scopes":["operator"]}`); st != 403 {
		t.Errorf("admin minted operator: %d %s", st, body)
	}
	// healthz, readyz and the console's files need no token; the
	// console's page carries no data, only the code that asks for it.
	for _, p := range []string{"/healthz", "/readyz", "/console/", "/console/app/main.js"} {
		if st, _, _ := e.reqAs("", "GET", p, "", ""); st != 200 {
			t.Errorf("%s without a token: %d", p, st)
		}
	}
	if st, _, body := e.reqAs("", "GET", "/console/../v1/topics", "", ""); st == 200 {
		t.Errorf("a path out of the console served data without a token: %s", body)
	}
}

// TestEmptyGroupNeedsConsumeScope: a group with no members is still
// guarded by the topics it has committed offsets for, so a device that may
// only produce can neither see nor delete it.
func TestEmptyGroupNeedsConsumeScope(t *testing.T) {
	e := newEnv(t, multiraft.Config{}, Config{})
	e.mustCreate("t", 1, "")
	e.mustCreate("other", 1, "")
	if code, _, body := e.req("POST", "/v1/groups/g/offsets", "application/json", `{"topic":"t","to":"earliest"}`); code != 200 {
		t.Fatalf("reset offsets of an empty group: %d %s", code, body)
	}
	for _, tok := range []string{e.mint("default", "produce:t"), e.mint("default", "consume:other")} {
		for _, m := range []string{"GET", "DELETE"} {
			if st, _, body := e.reqAs(tok, m, "/v1/groups/g", "", ""); st != 404 {
				t.Errorf("%s of an empty group by a token without consume:t: %d %s", m, st, body)
			}
		}
		if _, _, body := e.reqAs(tok, "GET", "/v1/groups", "", ""); strings.Contains(body, `"g"`) {
			t.Errorf("the group list shows g to a token without consume:t: %s", body)
		}
	}
	if st, _, body := e.reqAs(e.mint("default", "consume:t"), "GET", "/v1/groups/g", "", ""); st != 200 {
		t.Errorf("describe by consume:t: %d %s", st, body)
	}
}
