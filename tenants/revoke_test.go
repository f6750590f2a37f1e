package tenants

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/eddy-broker/eddy"
	"github.com/golang-jwt/jwt/v5"
)

// TestRevokedKeyNotRevivedByAnotherTenant: acme's key is removed; globex
// registers the same kid with the same public key (public keys are
// public). acme's old token must stay refused: a key is identified by its
// tenant and kid, and the cache compares the tenant too.
func TestRevokedKeyNotRevivedByAnotherTenant(t *testing.T) {
	f := newFixture(t)
	tok := f.mint(t, "acme-ed", jwt.SigningMethodEdDSA, f.claims("acme", "acme", "consume:*"))
	if _, err := f.v.Verify(tok); err != nil {
		t.Fatal(err)
	}
	k := f.keys["acme-ed"]
	delete(f.keys, "acme-ed")
	same, err := ParseKey("acme-ed", "globex", k.Alg, k.PEM)
	if err != nil {
		t.Fatal(err)
	}
	f.keys["acme-ed"] = same
	if _, err := f.v.Verify(tok); err == nil {
		t.Fatal("acme's token verified through globex's registration of the same kid and key")
	}
}

// TestKidsPerTenant: two tenants may use the same kid for different keys;
// each token verifies with its own tenant's key, found by its issuer.
func TestKidsPerTenant(t *testing.T) {
	f := newFixture(t)
	_, gpriv, _ := ed25519.GenerateKey(rand.Reader)
	gk, err := ParseKey("k1", "globex", AlgEdDSA, pubPEM(t, gpriv.Public()))
	if err != nil {
		t.Fatal(err)
	}
	ak := f.keys["acme-ed"]
	acmeK1, _ := ParseKey("k1", "acme", ak.Alg, ak.PEM)
	keys := map[[2]string]*Key{{"globex", "k1"}: gk, {"acme", "k1"}: acmeK1}
	v := &Verifier{Audience: "edge-1", Now: f.v.Now, Keys: func(tn eddy.TenantID, kid string) (*Key, bool) {
		k, ok := keys[[2]string{string(tn), kid}]
		return k, ok
	}}
	f.tenantK["k1"] = f.tenantK["acme-ed"]
	acmeTok := f.mint(t, "k1", jwt.SigningMethodEdDSA, f.claims("acme", "acme", "admin"))
	f.tenantK["k1"] = gpriv
	globexTok := f.mint(t, "k1", jwt.SigningMethodEdDSA, f.claims("globex", "globex", "admin"))
	for tok, want := range map[string]eddy.TenantID{acmeTok: "acme", globexTok: "globex"} {
		p, err := v.Verify(tok)
		if err != nil || p.Tenant != want {
			t.Fatalf("token of %s: %v %+v", want, err, p)
		}
	}
	// globex's key claiming to be acme's issuer: acme's k1 is another key.
	forged := f.mint(t, "k1", jwt.SigningMethodEdDSA, f.claims("acme", "acme", "admin"))
	if _, err := v.Verify(forged); eddy.ErrorCode(err) != eddy.CodeTokenBadSignature {
		t.Fatalf("globex's key under acme's issuer: %v", err)
	}
}

// TestTenantIncarnation: an operator-signed token names the incarnation of
// its tenant; once the tenant is deleted and created again, old tokens are
// refused (also from the cache), new ones verify.
func TestTenantIncarnation(t *testing.T) {
	f := newFixture(t)
	inc := map[eddy.TenantID]int64{"acme": 7}
	f.v.Incarnation = func(tn eddy.TenantID) (Incarnation, bool) { n, ok := inc[tn]; return Incarnation{Number: n}, ok }
	f.signer.Incarnation = func(tn eddy.TenantID) int64 { return inc[tn] }
	old, _, err := f.signer.Issue("acme", "admin", []string{"admin"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	p, err := f.v.Verify(old)
	if err != nil || p.Incarnation != 7 {
		t.Fatalf("%v %+v", err, p)
	}
	delete(inc, "acme") // deleted: the token verifies (routes answer not found)
	if _, err := f.v.Verify(old); err != nil {
		t.Fatal(err)
	}
	inc["acme"] = 9 // created again
	if _, err := f.v.Verify(old); eddy.ErrorCode(err) != eddy.CodeTokenRevoked {
		t.Fatalf("a token of the deleted incarnation: %v", err)
	}
	if err := f.v.Recheck(p); eddy.ErrorCode(err) != eddy.CodeTokenRevoked {
		t.Fatalf("Recheck of a live session of the deleted incarnation: %v", err)
	}
	fresh, _, _ := f.signer.Issue("acme", "admin", []string{"admin"}, time.Hour)
	if _, err := f.v.Verify(fresh); err != nil {
		t.Fatal(err)
	}
	// A tenant key's token carries no incarnation: its key went with the
	// old tenant, so it needs none.
	tok := f.mint(t, "acme-ed", jwt.SigningMethodEdDSA, f.claims("acme", "acme", "admin"))
	if _, err := f.v.Verify(tok); err != nil {
		t.Fatal(err)
	}
}

// TestStrictBase64: a token has one spelling. Changing the unused low bits
// of the signature's last character decodes to the same bytes with a
// lenient decoder; it must be refused.
func TestStrictBase64(t *testing.T) {
	f := newFixture(t)
	tok, _, _ := f.signer.Issue("acme", "svc", []string{"admin"}, time.Hour)
	if _, err := f.v.Verify(tok); err != nil {
		t.Fatal(err)
	}
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	accepted := 0
	for _, part := range []int{0, 1, 2} {
		parts := strings.Split(tok, ".")
		s := parts[part]
		want, _ := base64.RawURLEncoding.DecodeString(s)
		for _, c := range alphabet {
			alt := s[:len(s)-1] + string(c)
			if alt == s {
				continue
			}
			if got, err := base64.RawURLEncoding.DecodeString(alt); err != nil || string(got) != string(want) {
				continue // another value, not another spelling
			}
			parts[part] = alt
			if _, err := f.v.Verify(strings.Join(parts, ".")); err == nil {
				accepted++
			}
		}
	}
	if accepted > 0 {
		t.Fatalf("%d other spellings of one token verified", accepted)
	}
}

// TestMintLimits: a token that no node could verify is never minted.
func TestMintLimits(t *testing.T) {
	f := newFixture(t)
	scopes := make([]string, MaxScopes+1)
	for i := range scopes {
		scopes[i] = "produce:t" + strings.Repeat("x", i%5)
	}
	if _, _, err := f.signer.Issue("acme", "svc", scopes, time.Hour); eddy.ErrorCode(err) != eddy.CodeInvalid {
		t.Fatalf("%d scopes: %v", len(scopes), err)
	}
	if _, _, err := f.signer.Issue("acme", strings.Repeat("s", 1<<20), []string{"admin"}, time.Hour); eddy.ErrorCode(err) != eddy.CodeInvalid {
		t.Fatalf("a 1 MB subject: %v", err)
	}
	long := []string{"produce:" + strings.Repeat("y", 15<<10)}
	if _, _, err := f.signer.Issue("acme", "svc", long, time.Hour); eddy.ErrorCode(err) != eddy.CodeInvalid {
		t.Fatalf("a token over MaxTokenBytes: %v", err)
	}
}

// TestLegacyTokensAcrossIncarnations: a token from before incarnations
// were kept (no inc claim) stays valid for the tenant it was issued for,
// even once the upgraded controller numbers that tenant (replaying its
// log), and is refused by a tenant created after it was issued.
func TestLegacyTokensAcrossIncarnations(t *testing.T) {
	f := newFixture(t)
	legacy, _, err := f.signer.Issue("acme", "admin", []string{"admin"}, time.Hour) // no Incarnation func: no inc claim
	if err != nil {
		t.Fatal(err)
	}
	created := f.now.Add(-time.Hour).UnixMilli()
	f.v.Incarnation = func(eddy.TenantID) (Incarnation, bool) { return Incarnation{Number: 0, CreatedMs: created}, true }
	if _, err := f.v.Verify(legacy); err != nil {
		t.Fatalf("legacy token, legacy tenant: %v", err)
	}
	f.v.Incarnation = func(eddy.TenantID) (Incarnation, bool) { return Incarnation{Number: 1, CreatedMs: created}, true }
	if _, err := f.v.Verify(legacy); err != nil {
		t.Fatalf("legacy token, the same tenant numbered by an upgraded controller: %v", err)
	}
	f.v.Incarnation = func(eddy.TenantID) (Incarnation, bool) {
		return Incarnation{Number: 2, CreatedMs: f.now.Add(time.Minute).UnixMilli()}, true
	}
	if _, err := f.v.Verify(legacy); eddy.ErrorCode(err) != eddy.CodeTokenRevoked {
		t.Fatalf("legacy token, a tenant created after it: %v", err)
	}
}
