package tenants

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"
	"time"

	"github.com/eddy-broker/eddy"
)

// TestDeviceTokenSign: a token the tenant signs offline with each kind of
// private key file verifies as that tenant with its scopes.
func TestDeviceTokenSign(t *testing.T) {
	f := newFixture(t)
	pkcs8 := func(k any) []byte {
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	}
	ec := f.tenantK["acme-ec"].(*ecdsa.PrivateKey)
	ecDER, _ := x509.MarshalECPrivateKey(ec)
	rk := f.tenantK["acme-rsa"].(*rsa.PrivateKey)
	files := map[string][]byte{
		"acme-ed":        pkcs8(f.tenantK["acme-ed"]),
		"acme-ec":        pkcs8(ec),
		"acme-ec/sec1":   pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: ecDER}),
		"acme-rsa":       pkcs8(rk),
		"acme-rsa/pkcs1": pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rk)}),
	}
	for name, file := range files {
		kid, _, _ := strings.Cut(name, "/")
		d := DeviceToken{Tenant: "acme", KeyID: kid, Subject: "dev-17", Scopes: []string{"produce:sensors"}, TTL: time.Hour, Audience: "edge-1"}
		tok, exp, err := d.Sign(file, f.now)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !exp.Equal(f.now.Add(time.Hour)) {
			t.Errorf("%s: exp %v", name, exp)
		}
		p, err := f.v.Verify(tok)
		if err != nil {
			t.Fatalf("%s: verify: %v", name, err)
		}
		if p.Tenant != "acme" || p.Subject != "dev-17" || !p.Can(Produce, "acme", "sensors") || p.Can(Consume, "acme", "sensors") {
			t.Errorf("%s: principal %+v", name, p)
		}
	}
	// Signed for another tenant with acme's key: refused by the verifier.
	d := DeviceToken{Tenant: "globex", KeyID: "acme-ed", Scopes: []string{"produce:*"}, TTL: time.Hour, Audience: "edge-1"}
	tok, _, err := d.Sign(files["acme-ed"], f.now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.v.Verify(tok); eddy.AsError(err).Code != eddy.CodeTokenUnknownKey {
		t.Errorf("acme's key signing for globex: %v", err)
	}
	// Refused before signing: operator, no kid, bad ttl, not PEM, weak keys.
	small, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	for name, c := range map[string]struct {
		d    DeviceToken
		file []byte
	}{
		"operator":  {DeviceToken{Tenant: "acme", KeyID: "acme-ed", Scopes: []string{"operator"}, TTL: time.Hour, Audience: "a"}, files["acme-ed"]},
		"no kid":    {DeviceToken{Tenant: "acme", Scopes: []string{"admin"}, TTL: time.Hour, Audience: "a"}, files["acme-ed"]},
		"ttl":       {DeviceToken{Tenant: "acme", KeyID: "k", Scopes: []string{"admin"}, Audience: "a"}, files["acme-ed"]},
		"not pem":   {DeviceToken{Tenant: "acme", KeyID: "k", Scopes: []string{"admin"}, TTL: time.Hour, Audience: "a"}, []byte("nope")},
		"public":    {DeviceToken{Tenant: "acme", KeyID: "k", Scopes: []string{"admin"}, TTL: time.Hour, Audience: "a"}, []byte(pubPEM(t, ec.Public()))},
		"P-384":     {DeviceToken{Tenant: "acme", KeyID: "k", Scopes: []string{"admin"}, TTL: time.Hour, Audience: "a"}, pkcs8(small)},
		"bad scope": {DeviceToken{Tenant: "acme", KeyID: "k", Scopes: []string{"write:x"}, TTL: time.Hour, Audience: "a"}, files["acme-ed"]},
	} {
		if _, _, err := c.d.Sign(c.file, f.now); err == nil || eddy.AsError(err).Code != eddy.CodeInvalid {
			t.Errorf("%s: %v, want invalid", name, err)
		}
	}
}
