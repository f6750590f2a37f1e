package tenants

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/eddy-broker/eddy"
	"github.com/golang-jwt/jwt/v5"
)

type fixture struct {
	signer  *Signer
	keys    map[string]*Key
	v       *Verifier
	now     time.Time
	tenantK map[string]any // private keys of tenant keys by kid
}

func pubPEM(t testing.TB, pub any) string {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

func newFixture(t testing.TB) *fixture {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	f := &fixture{now: time.Unix(1_800_000_000, 0), keys: map[string]*Key{}, tenantK: map[string]any{}}
	f.signer = &Signer{KeyID: "op-1", Key: priv, Audience: "edge-1", Now: func() time.Time { return f.now }}
	ok, err := f.signer.OperatorKey()
	if err != nil {
		t.Fatal(err)
	}
	f.keys[ok.ID] = ok
	f.v = &Verifier{Audience: "edge-1", Keys: f.lookup, Now: func() time.Time { return f.now }}
	// Tenant acme registers one key of each algorithm.
	_, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	ecPriv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rsaPriv, _ := rsa.GenerateKey(rand.Reader, 2048)
	for kid, kp := range map[string]struct {
		alg  string
		priv any
		pub  any
	}{"acme-ed": {AlgEdDSA, edPriv, edPriv.Public()}, "acme-ec": {AlgES256, ecPriv, ecPriv.Public()}, "acme-rsa": {AlgRS256, rsaPriv, rsaPriv.Public()}} {
		k, err := ParseKey(kid, "acme", kp.alg, pubPEM(t, kp.pub))
		if err != nil {
			t.Fatal(err)
		}
		f.keys[kid] = k
		f.tenantK[kid] = kp.priv
	}
	return f
}

// mint signs arbitrary claims with a tenant key (as a tenant's own tooling would).
func (f *fixture) mint(t testing.TB, kid string, method jwt.SigningMethod, c Claims) string {
	tok := jwt.NewWithClaims(method, c)
	tok.Header["kid"] = kid
	s, err := tok.SignedString(f.tenantK[kid])
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (f *fixture) claims(tenant eddy.TenantID, iss string, scopes ...string) Claims {
	return Claims{Tenant: tenant, Scopes: scopes, RegisteredClaims: jwt.RegisteredClaims{
		Issuer: iss, Subject: "dev-17", Audience: jwt.ClaimStrings{"edge-1"},
		IssuedAt: jwt.NewNumericDate(f.now), ExpiresAt: jwt.NewNumericDate(f.now.Add(time.Hour))}}
}

func TestIssueAndVerify(t *testing.T) {
	f := newFixture(t)
	tok, exp, err := f.signer.Issue("acme", "svc", []string{"produce:sensors*", "consume:*"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if !exp.Equal(f.now.Add(time.Hour)) {
		t.Fatalf("exp %v", exp)
	}
	p, err := f.v.Verify(tok)
	if err != nil {
		t.Fatal(err)
	}
	if p.Tenant != "acme" || p.Subject != "svc" || p.Operator() {
		t.Fatalf("principal %+v", p)
	}
	if !p.Can(Produce, "acme", "sensors-a") || p.Can(Produce, "acme", "other") || !p.Can(Consume, "acme", "other") {
		t.Fatal("scope globs")
	}
	if p.Can(Produce, "globex", "sensors-a") || p.Can(Admin, "acme", "") || p.SeesTenant("globex") {
		t.Fatal("crossed a tenant or gained admin")
	}
	op, _, _ := f.signer.Issue("default", "root", []string{"operator"}, time.Hour)
	p, err = f.v.Verify(op)
	if err != nil || !p.Operator() || !p.Can(Produce, "globex", "x") || !p.Can(Operate, "", "") {
		t.Fatalf("operator: %v %+v", err, p)
	}
	for _, kid := range []string{"acme-ed", "acme-ec", "acme-rsa"} {
		m := map[string]jwt.SigningMethod{"acme-ed": jwt.SigningMethodEdDSA, "acme-ec": jwt.SigningMethodES256, "acme-rsa": jwt.SigningMethodRS256}[kid]
		p, err := f.v.Verify(f.mint(t, kid, m, f.claims("acme", "acme", "produce:sensors")))
		if err != nil || p.Tenant != "acme" || p.KeyID != kid {
			t.Fatalf("%s: %v", kid, err)
		}
	}
}

func TestVerifyRefusals(t *testing.T) {
	f := newFixture(t)
	good, _, _ := f.signer.Issue("acme", "svc", []string{"admin"}, time.Hour)
	parts := strings.Split(good, ".")
	acmeParts := strings.Split(f.mint(t, "acme-ec", jwt.SigningMethodES256, f.claims("acme", "acme", "admin")), ".")
	b64 := func(v any) string { b, _ := json.Marshal(v); return base64.RawURLEncoding.EncodeToString(b) }
	// Algorithm confusion: HS256 keyed with the operator public key's bytes.
	opPub := f.keys["op-1"].PEM
	hsHeader := b64(map[string]string{"alg": "HS256", "kid": "op-1", "typ": "JWT"})
	mac := hmac.New(sha256.New, []byte(opPub))
	mac.Write([]byte(hsHeader + "." + parts[1]))
	confused := hsHeader + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
	noneTok := b64(map[string]string{"alg": "none", "kid": "op-1"}) + "." + parts[1] + "."
	tampered := parts[0] + "." + b64(map[string]any{"tenant": "globex", "scopes": []string{"admin"}, "iss": "eddy", "aud": "edge-1", "exp": f.now.Add(time.Hour).Unix()}) + "." + parts[2]
	noKid := b64(map[string]string{"alg": "EdDSA"}) + "." + parts[1] + "." + parts[2]
	unknownKid := b64(map[string]string{"alg": "EdDSA", "kid": "ghost"}) + "." + parts[1] + "." + parts[2]

	expired := f.claims("acme", "acme", "admin")
	expired.ExpiresAt = jwt.NewNumericDate(f.now.Add(-time.Hour))
	future := f.claims("acme", "acme", "admin")
	future.NotBefore = jwt.NewNumericDate(f.now.Add(time.Hour))
	wrongAud := f.claims("acme", "acme", "admin")
	wrongAud.Audience = jwt.ClaimStrings{"other-cluster"}
	noExp := f.claims("acme", "acme", "admin")
	noExp.ExpiresAt = nil
	tests := []struct {
		name  string
		token string
		code  eddy.Code
	}{
		{"missing", "", eddy.CodeTokenMissing},
		{"not a jwt", "hello", eddy.CodeTokenMalformed},
		{"bad header", "!!!.a.b", eddy.CodeTokenMalformed},
		{"alg none", noneTok, eddy.CodeTokenAlgNone},
		{"algorithm confusion", confused, eddy.CodeTokenAlgMismatch},
		{"tampered claims", tampered, eddy.CodeTokenBadSignature},
		{"no kid", noKid, eddy.CodeTokenUnknownKey},
		{"unknown kid", unknownKid, eddy.CodeTokenUnknownKey},
		{"expired", f.mint(t, "acme-ed", jwt.SigningMethodEdDSA, expired), eddy.CodeTokenExpired},
		{"not yet valid", f.mint(t, "acme-ed", jwt.SigningMethodEdDSA, future), eddy.CodeTokenNotYetValid},
		{"wrong audience", f.mint(t, "acme-ed", jwt.SigningMethodEdDSA, wrongAud), eddy.CodeTokenWrongAudience},
		{"no issuer", f.mint(t, "acme-ed", jwt.SigningMethodEdDSA, f.claims("acme", "", "admin")), eddy.CodeTokenWrongIssuer},
		{"issuer not a tenant", f.mint(t, "acme-ed", jwt.SigningMethodEdDSA, f.claims("acme", "Acme Corp", "admin")), eddy.CodeTokenWrongIssuer},
		// Keys are found by issuer and kid: the operator has no key acme-ed.
		{"tenant key under the operator issuer", f.mint(t, "acme-ed", jwt.SigningMethodEdDSA, f.claims("acme", "eddy", "admin")), eddy.CodeTokenUnknownKey},
		{"no exp", f.mint(t, "acme-ed", jwt.SigningMethodEdDSA, noExp), eddy.CodeTokenMalformed},
		{"tenant key signs for another tenant", f.mint(t, "acme-ed", jwt.SigningMethodEdDSA, f.claims("globex", "acme", "admin")), eddy.CodeTokenTenantMismatch},
		{"tenant key grants operator", f.mint(t, "acme-ed", jwt.SigningMethodEdDSA, f.claims("acme", "acme", "operator")), eddy.CodeTokenTenantMismatch},
		{"EdDSA alg for an ES256 key", b64(map[string]string{"alg": "EdDSA", "kid": "acme-ec"}) + "." + acmeParts[1] + "." + acmeParts[2], eddy.CodeTokenAlgMismatch},
		{"bad scope", f.mint(t, "acme-ed", jwt.SigningMethodEdDSA, f.claims("acme", "acme", "root")), eddy.CodeTokenMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.v.Verify(tc.token)
			if got := eddy.ErrorCode(err); got != tc.code {
				t.Fatalf("code %q (%v), want %q", got, err, tc.code)
			}
			if !eddy.Code(tc.code).Unauthenticated() {
				t.Fatalf("%s is not an authentication refusal (a 401)", tc.code)
			}
		})
	}
	// Leeway: 10s past exp is still accepted, 2 minutes is not.
	tok, _, _ := f.signer.Issue("acme", "s", []string{"admin"}, time.Minute)
	f.now = f.now.Add(time.Minute + 10*time.Second)
	if _, err := f.v.Verify(tok); err != nil {
		t.Fatalf("within leeway: %v", err)
	}
	f.now = f.now.Add(2 * time.Minute)
	if _, err := f.v.Verify(tok); eddy.ErrorCode(err) != eddy.CodeTokenExpired {
		t.Fatalf("past leeway: %v", err)
	}
}

// oddModulus is an odd number of exactly bits bits: a modulus as parsing
// sees it (a key's size is checked, not its factors).
func oddModulus(bits int) *big.Int {
	n := new(big.Int).Lsh(big.NewInt(1), uint(bits-1))
	return n.Or(n, big.NewInt(0x10001))
}

func TestParseKeyRefusals(t *testing.T) {
	ecPriv, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	tests := []struct{ name, kid, alg, pem string }{
		{"no kid", "", AlgEdDSA, pubPEM(t, edPub)},
		{"not pem", "k", AlgEdDSA, "hello"},
		{"HS256", "k", "HS256", pubPEM(t, edPub)},
		{"P-384 as ES256", "k", AlgES256, pubPEM(t, ecPriv.Public())},
		{"1024-bit RSA", "k", AlgRS256, pubPEM(t, small.Public())},
		{"EdDSA key as RS256", "k", AlgRS256, pubPEM(t, edPub)},
		{"16384-bit RSA", "k", AlgRS256, pubPEM(t, &rsa.PublicKey{N: oddModulus(16384), E: 65537})},
		{"4097-bit RSA", "k", AlgRS256, pubPEM(t, &rsa.PublicKey{N: oddModulus(4097), E: 65537})},
		{"RSA exponent 2^31-1", "k", AlgRS256, pubPEM(t, &rsa.PublicKey{N: oddModulus(2048), E: 1<<31 - 1})},
	}
	if _, err := ParseKey("k", "acme", AlgRS256, pubPEM(t, &rsa.PublicKey{N: oddModulus(4096), E: 65537})); err != nil {
		t.Errorf("a 4096-bit RSA key: %v", err)
	}
	for _, tc := range tests {
		if _, err := ParseKey(tc.kid, "acme", tc.alg, tc.pem); eddy.ErrorCode(err) != eddy.CodeInvalid {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}

func TestScopes(t *testing.T) {
	for _, bad := range [][]string{nil, {"root"}, {"produce:"}, {"consume:["}} {
		if ValidateScopes(bad) == nil {
			t.Errorf("%v accepted", bad)
		}
	}
	p := &Principal{Tenant: "acme"}
	p.setScopes([]string{"produce:a*"}, true)
	if p.Grants([]string{"produce:a*"}) || p.Can(Describe, "acme", "b") || !p.Can(Describe, "acme", "ab") {
		t.Fatal("a non-admin must not mint tokens; describe follows globs")
	}
	admin := &Principal{Tenant: "acme"}
	admin.setScopes([]string{"admin"}, true)
	if !admin.Grants([]string{"admin", "consume:*"}) || admin.Grants([]string{"operator"}) {
		t.Fatal("admin grants")
	}
}

func TestLimiter(t *testing.T) {
	now := time.Unix(0, 0)
	l := NewLimiter(func() time.Time { return now })
	q := Quotas{ProduceRecordsPerSec: 100, ProduceBytesPerSec: 10_000}
	if err := l.AllowProduce("acme", q, 100, 1000); err != nil {
		t.Fatal(err)
	}
	err := l.AllowProduce("acme", q, 10, 100)
	e := eddy.AsError(err)
	if e.Code != eddy.CodeQuotaExceeded || e.RetryAfterMs < 90 || e.RetryAfterMs > 110 {
		t.Fatalf("engaged: %v (retry after %d ms)", err, e.RetryAfterMs)
	}
	// Other tenants are not affected.
	if err := l.AllowProduce("globex", q, 100, 100); err != nil {
		t.Fatal(err)
	}
	// Recovers with time.
	now = now.Add(100 * time.Millisecond)
	if err := l.AllowProduce("acme", q, 10, 100); err != nil {
		t.Fatalf("recovered: %v", err)
	}
	// Bytes limit alone.
	if err := l.AllowProduce("b", Quotas{ProduceBytesPerSec: 1000}, 1, 900); err != nil {
		t.Fatal(err)
	}
	if err := l.AllowProduce("b", Quotas{ProduceBytesPerSec: 1000}, 1, 900); eddy.ErrorCode(err) != eddy.CodeQuotaExceeded {
		t.Fatalf("bytes: %v", err)
	}
	// A request over a second's worth passes on a full bucket.
	if err := l.AllowProduce("c", Quotas{ProduceRecordsPerSec: 10}, 50, 1); err != nil {
		t.Fatalf("large request on a full bucket: %v", err)
	}
	if err := (&Quotas{StorageBytes: -1}).Validate(); err == nil {
		t.Fatal("negative quota accepted")
	}
}

// TestConsumeQuota: a read is charged what it answered, whole, into debt;
// the reads after wait the debt out, and another tenant does not.
func TestConsumeQuota(t *testing.T) {
	now := time.Unix(0, 0)
	l := NewLimiter(func() time.Time { return now })
	q := Quotas{ConsumeBytesPerSec: 1000}
	if d := l.ConsumeOwed("acme", q); d != 0 {
		t.Fatalf("a full bucket owes %v", d)
	}
	l.ChargeConsume("acme", q, 3000) // a second's worth and two more
	if d := l.ConsumeOwed("acme", q); d < 1990*time.Millisecond || d > 2010*time.Millisecond {
		t.Fatalf("2,000 bytes over 1,000/s owe %v, want 2 s", d)
	}
	if d := l.ConsumeOwed("globex", q); d != 0 {
		t.Fatalf("another tenant owes %v", d)
	}
	now = now.Add(time.Second)
	if d := l.ConsumeOwed("acme", q); d < 990*time.Millisecond || d > 1010*time.Millisecond {
		t.Fatalf("a second later: owes %v, want 1 s", d)
	}
	now = now.Add(time.Second + time.Millisecond)
	if d := l.ConsumeOwed("acme", q); d != 0 {
		t.Fatalf("paid: owes %v", d)
	}
	// ReadQuota: the tenant's clients owe; the operator does not.
	rq := ReadQuota{Limiter: l, Quotas: func(eddy.TenantID) Quotas { return q }}
	rq.Charge(&Principal{Tenant: "acme"}, "acme", 2000)
	if d := rq.Owed(&Principal{Tenant: "acme"}, "acme"); d < 1990*time.Millisecond {
		t.Fatalf("acme's client owes %v, want 2 s", d)
	}
	rq.Charge(&Principal{operator: true}, "acme", 1<<20)
	if d := rq.Owed(&Principal{operator: true}, "acme"); d != 0 {
		t.Fatalf("the operator owes %v", d)
	}
	if d := rq.Owed(&Principal{Tenant: "acme"}, "acme"); d > 2010*time.Millisecond {
		t.Fatalf("the operator's read was charged to acme: owes %v", d)
	}
	// Unlimited: nothing counted, nothing owed.
	l.ChargeConsume("b", Quotas{}, 1<<30)
	if d := l.ConsumeOwed("b", Quotas{}); d != 0 {
		t.Fatalf("no quota owes %v", d)
	}
	if err := (&Quotas{ConsumeBytesPerSec: -1}).Validate(); err == nil {
		t.Fatal("negative consume quota accepted")
	}
}

func FuzzVerify(f *testing.F) {
	fx := newFixture(f)
	good, _, _ := fx.signer.Issue("acme", "s", []string{"admin"}, time.Hour)
	f.Add(good)
	f.Add("a.b.c")
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Fuzz(func(t *testing.T, tok string) {
		p, err := fx.v.Verify(tok)
		if err != nil {
			if !eddy.AsError(err).Code.Unauthenticated() {
				t.Fatalf("refusal %v is not a 401", err)
			}
			return
		}
		if tok != good || p.Tenant != "acme" {
			t.Fatalf("accepted a token that was not issued: %q", tok)
		}
	})
}

// lookup finds a key by the tenant that registered it and its kid.
func (f *fixture) lookup(t eddy.TenantID, kid string) (*Key, bool) {
	k, ok := f.keys[kid]
	return k, ok && k.Tenant == t
}

// BenchmarkForgedToken is the CPU a node spends refusing a token whose
// signature is wrong, by the algorithm and size of the key it names:
// anyone can send those (the signature is what is checked), and none is
// cached. RS256 keys are bounded to MaxRSABits for it.
func BenchmarkForgedToken(b *testing.B) {
	f := newFixture(b)
	big, _ := rsa.GenerateKey(rand.Reader, MaxRSABits)
	k, err := ParseKey("acme-rsa-max", "acme", AlgRS256, pubPEM(b, big.Public()))
	if err != nil {
		b.Fatal(err)
	}
	f.keys[k.ID], f.tenantK[k.ID] = k, big
	for _, c := range []struct {
		kid    string
		method jwt.SigningMethod
	}{{"acme-ed", jwt.SigningMethodEdDSA}, {"acme-ec", jwt.SigningMethodES256}, {"acme-rsa", jwt.SigningMethodRS256}, {"acme-rsa-max", jwt.SigningMethodRS256}} {
		tok := f.mint(b, c.kid, c.method, f.claims("acme", "acme", "produce:*"))
		dot := strings.LastIndexByte(tok, '.') + 1
		sig, _ := base64.RawURLEncoding.DecodeString(tok[dot:])
		sig[len(sig)/2] ^= 1 // another signature of the same length
		forged := tok[:dot] + base64.RawURLEncoding.EncodeToString(sig)
		b.Run(c.kid, func(b *testing.B) {
			for range b.N {
				if _, err := f.v.Verify(forged); eddy.ErrorCode(err) != eddy.CodeTokenBadSignature {
					b.Fatal(err)
				}
			}
		})
	}
}
