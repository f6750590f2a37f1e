package httpapi

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"strings"
	"testing"
	"time"

	"github.com/eddy-broker/eddy/multiraft"
	"github.com/eddy-broker/eddy/tenants"
	"github.com/golang-jwt/jwt/v5"
)

func TestTenantLifecycle(t *testing.T) {
	e := newEnv(t, multiraft.Config{}, Config{})
	code, _, body := e.req("POST", "/v1/tenants", "application/json", `{"name":"acme","quotas":{"max_topics":5}}`)
	if code != 201 || !strings.Contains(body, `"max_topics":5`) {
		t.Fatalf("create: %d %s", code, body)
	}
	if code, _, body := e.req("POST", "/v1/tenants", "application/json", `{"name":"acme"}`); code != 409 || errorCode(t, body) != "tenant_exists" {
		t.Fatalf("again: %d %s", code, body)
	}
	if code, _, body := e.req("POST", "/v1/tenants", "application/json", `{"name":"Bad_Name"}`); code != 400 {
		t.Fatalf("bad name: %d %s", code, body)
	}
	// The operator mints an admin token for acme through the API.
	code, _, body = e.req("POST", "/v1/tenants/acme/tokens", "application/json", `{"scopes":["admin"],"ttl_seconds":600,"subject":"acme-ops"}`)
	var tr struct{ Token string }
	json.Unmarshal([]byte(body), &tr)
	if code != 201 || tr.Token == "" {
		t.Fatalf("token: %d %s", code, body)
	}
	admin := tr.Token
	if code, _, body := e.reqAs(admin, "POST", "/v1/topics", "application/json", `{"name":"sensors","partitions":2}`); code != 201 {
		t.Fatalf("acme admin creates a topic: %d %s", code, body)
	}
	// acme registers its own key and mints a device token offline.
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(pub)
	pemText := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	keyBody, _ := json.Marshal(map[string]string{"kid": "acme-2026", "alg": "EdDSA", "public_key_pem": pemText})
	if code, _, body := e.reqAs(admin, "POST", "/v1/tenants/acme/keys", "application/json", string(keyBody)); code != 201 {
		t.Fatalf("add key: %d %s", code, body)
	}
	if code, _, body := e.reqAs(admin, "POST", "/v1/tenants/acme/keys", "application/json", string(keyBody)); code != 409 {
		t.Fatalf("duplicate kid: %d %s", code, body)
	}
	// Kids are per tenant: another tenant may use the same kid (and a
	// conflict never tells a tenant which kids others use).
	if code, _, body := e.req("POST", "/v1/tenants", "application/json", `{"name":"initech"}`); code != 201 {
		t.Fatalf("create initech: %d %s", code, body)
	}
	opub, _, _ := ed25519.GenerateKey(rand.Reader)
	oder, _ := x509.MarshalPKIXPublicKey(opub)
	otherKey, _ := json.Marshal(map[string]string{"kid": "acme-2026", "alg": "EdDSA",
		"public_key_pem": string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: oder}))})
	if code, _, body := e.req("POST", "/v1/tenants/initech/keys", "application/json", string(otherKey)); code != 201 {
		t.Fatalf("initech registers acme's kid: %d %s", code, body)
	}
	device := func(tenant string) string {
		c := tenants.Claims{Tenant: "acme", Scopes: []string{"produce:sensors"}, RegisteredClaims: jwt.RegisteredClaims{
			Issuer: "acme", Subject: "dev-17", Audience: jwt.ClaimStrings{"test-cluster"},
			IssuedAt: jwt.NewNumericDate(time.Now()), ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour))}}
		c.Tenant = "acme"
		if tenant != "" {
			c.Tenant = "default"
		}
		tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, c)
		tok.Header["kid"] = "acme-2026"
		s, _ := tok.SignedString(priv)
		return s
	}
	dev := device("")
	if code, _, body := e.reqAs(dev, "POST", "/v1/topics/sensors/records", "application/json", `{"records":[{"key":"dev-17","value":{"t":1}}]}`); code != 200 {
		t.Fatalf("device produce: %d %s", code, body)
	}
	if code, _, body := e.reqAs(dev, "GET", "/v1/topics/sensors/partitions/0/records", "", ""); code != 403 {
		t.Fatalf("device consume: %d %s", code, body)
	}
	if code, _, body := e.reqAs(device("default"), "GET", "/v1/topics", "", ""); code != 401 || errorCode(t, body) != "token_tenant_mismatch" {
		t.Fatalf("acme key signing for default: %d %s", code, body)
	}
	_, _, body = e.reqAs(admin, "GET", "/v1/tenants/acme/keys", "", "")
	if !strings.Contains(body, "acme-2026") {
		t.Fatalf("keys: %s", body)
	}
	// Revocation: the key's tokens stop working at once.
	if code, _, _ := e.reqAs(admin, "DELETE", "/v1/tenants/acme/keys/acme-2026", "", ""); code != 204 {
		t.Fatalf("remove key: %d", code)
	}
	if code, _, body := e.reqAs(dev, "POST", "/v1/topics/sensors/records", "application/json", `{"records":[{"value":1}]}`); code != 401 || errorCode(t, body) != "token_unknown_kid" {
		t.Fatalf("revoked key: %d %s", code, body)
	}
	// Describe shows usage.
	_, _, body = e.reqAs(admin, "GET", "/v1/tenants/acme", "", "")
	if !strings.Contains(body, `"topics":1`) || !strings.Contains(body, `"partitions":2`) {
		t.Fatalf("usage: %s", body)
	}
	// Deleting a tenant with topics needs force.
	if code, _, body := e.req("DELETE", "/v1/tenants/acme", "", ""); code != 409 {
		t.Fatalf("delete with topics: %d %s", code, body)
	}
	if code, _, _ := e.req("DELETE", "/v1/tenants/acme?force=true", "", ""); code != 204 {
		t.Fatalf("force delete: %d", code)
	}
	if code, _, _ := e.reqAs(admin, "GET", "/v1/topics", "", ""); code != 404 {
		t.Fatalf("deleted tenant's token: %d", code)
	}
}

func TestQuotas(t *testing.T) {
	e := newEnv(t, multiraft.Config{}, Config{})
	e.req("POST", "/v1/tenants", "application/json", `{"name":"q","quotas":{"produce_records_per_sec":20,"max_topics":1}}`)
	admin := e.mint("q", "admin")
	if code, _, body := e.reqAs(admin, "POST", "/v1/topics", "application/json", `{"name":"a"}`); code != 201 {
		t.Fatalf("%d %s", code, body)
	}
	if code, _, body := e.reqAs(admin, "POST", "/v1/topics", "application/json", `{"name":"b"}`); code != 409 || errorCode(t, body) != "limit_exceeded" {
		t.Fatalf("topic limit: %d %s", code, body)
	}
	ten := `{"records":[{"value":1},{"value":2},{"value":3},{"value":4},{"value":5},{"value":6},{"value":7},{"value":8},{"value":9},{"value":10}]}`
	var limited bool
	var retry string
	for i := 0; i < 5; i++ {
		code, h, body := e.reqAs(admin, "POST", "/v1/topics/a/records", "application/json", ten)
		if code == 429 {
			if errorCode(t, body) != "quota_exceeded" {
				t.Fatalf("429 code: %s", body)
			}
			limited, retry = true, h.Get("Retry-After")
			break
		}
	}
	if !limited || retry == "" {
		t.Fatalf("the rate quota did not engage (Retry-After %q)", retry)
	}
	// Other tenants are unaffected.
	e.mustCreate("free", 1, "")
	if code, _, _ := e.req("POST", "/v1/topics/free/records", "application/json", ten); code != 200 {
		t.Fatalf("default tenant limited by q's quota: %d", code)
	}
	// Recovers.
	time.Sleep(600 * time.Millisecond)
	if code, _, body := e.reqAs(admin, "POST", "/v1/topics/a/records", "application/json", ten); code != 200 {
		t.Fatalf("after waiting: %d %s", code, body)
	}
	// Storage quota: once the retained bytes reach it, produce is refused;
	// deleting the topic frees it.
	if code, _, body := e.req("PATCH", "/v1/tenants/q", "application/json", `{"quotas":{"storage_bytes":100,"max_topics":2}}`); code != 200 {
		t.Fatalf("set quota: %d %s", code, body)
	}
	big := `{"records":[{"value":"` + strings.Repeat("x", 200) + `"}]}`
	e.reqAs(admin, "POST", "/v1/topics/a/records", "application/json", big)
	code, _, body := e.reqAs(admin, "POST", "/v1/topics/a/records", "application/json", big)
	if code != 507 || errorCode(t, body) != "storage_quota_exceeded" {
		t.Fatalf("storage quota: %d %s", code, body)
	}
	if code, _, _ := e.reqAs(admin, "DELETE", "/v1/topics/a", "", ""); code != 204 {
		t.Fatal("delete")
	}
	e.reqAs(admin, "POST", "/v1/topics", "application/json", `{"name":"c"}`)
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, _, body = e.reqAs(admin, "POST", "/v1/topics/c/records", "application/json", `{"records":[{"value":1}]}`)
		if code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("storage not freed after delete: %d %s", code, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	_, _, metrics := e.req("GET", "/metrics", "", "")
	for _, m := range []string{`eddy_tenant_quota_rejections_total{tenant="q",code="quota_exceeded"}`,
		`eddy_tenant_quota_rejections_total{tenant="q",code="storage_quota_exceeded"}`,
		`eddy_tenant_topics{tenant="q"} 1`, `eddy_tenant_quota_storage_bytes{tenant="q"} 100`} {
		if !strings.Contains(metrics, m) {
			t.Errorf("metrics lack %s", m)
		}
	}
	_, _, body = e.req("GET", "/v1/tenants/q", "", "")
	if !strings.Contains(body, `"storage_bytes":100`) || !strings.Contains(body, `"usage"`) {
		t.Fatalf("describe: %s", body)
	}
}

// TestStorageQuotaFreedByRetention: once retention drops a full tenant's
// old segments, its producers are accepted again without an operator.
func TestStorageQuotaFreedByRetention(t *testing.T) {
	e := newEnv(t, multiraft.Config{RetentionInterval: 100 * time.Millisecond}, Config{})
	if code, _, body := e.req("POST", "/v1/tenants", "application/json", `{"name":"r","quotas":{"storage_bytes":20000}}`); code != 201 {
		t.Fatalf("tenant: %d %s", code, body)
	}
	admin := e.mint("r", "admin")
	if code, _, body := e.reqAs(admin, "POST", "/v1/topics", "application/json",
		`{"name":"a","config":{"segment.bytes":"4096","retention.ms":"1000"}}`); code != 201 {
		t.Fatalf("topic: %d %s", code, body)
	}
	rec := `{"records":[{"value":"` + strings.Repeat("x", 900) + `"}]}`
	refused := 0
	for i := 0; i < 100 && refused == 0; i++ {
		code, _, body := e.reqAs(admin, "POST", "/v1/topics/a/records", "application/json", rec)
		switch {
		case code == 507 && errorCode(t, body) == "storage_quota_exceeded":
			refused = i
		case code != 200:
			t.Fatalf("produce %d: %d %s", i, code, body)
		}
	}
	if refused == 0 {
		t.Fatal("100 records of 900 bytes never reached a 20,000-byte storage quota")
	}
	// The sealed segments expire a second after their newest record.
	deadline := time.Now().Add(15 * time.Second)
	for {
		code, _, body := e.reqAs(admin, "POST", "/v1/topics/a/records", "application/json", rec)
		if code == 200 {
			break
		}
		if code != 507 || time.Now().After(deadline) {
			t.Fatalf("retention did not free the quota: %d %s", code, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	var off struct{ Earliest int64 }
	_, _, body := e.reqAs(admin, "GET", "/v1/topics/a/partitions/0/offsets", "", "")
	json.Unmarshal([]byte(body), &off)
	if off.Earliest == 0 {
		t.Fatalf("accepted again but nothing was deleted: %s", body)
	}
}
