package tenants

import (
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"testing"
	"time"

	"github.com/eddy-broker/eddy"
	"github.com/golang-jwt/jwt/v5"
)

// TestVerifiedCache: a repeated token is served from the cache, and the
// cache never accepts what a full check would refuse: an expired token, a
// removed key, a key replaced under the same kid.
func TestVerifiedCache(t *testing.T) {
	f := newFixture(t)
	tok := f.mint(t, "acme-ed", jwt.SigningMethodEdDSA, f.claims("acme", "acme", "produce:s*"))
	p1, err := f.v.Verify(tok)
	if err != nil {
		t.Fatal(err)
	}
	p2, err := f.v.Verify(tok)
	if err != nil || p2 != p1 {
		t.Fatalf("second verify: %v, same principal %v", err, p2 == p1)
	}
	// Expiry: the claims expire an hour after f.now; leeway 30 s.
	f.now = f.now.Add(time.Hour + 29*time.Second)
	if _, err := f.v.Verify(tok); err != nil {
		t.Fatalf("within the leeway: %v", err)
	}
	f.now = f.now.Add(2 * time.Second)
	if _, err := f.v.Verify(tok); eddy.ErrorCode(err) != eddy.CodeTokenExpired {
		t.Fatalf("expired, cached: %v", err)
	}
	f.now = f.now.Add(-time.Hour)

	// A removed key revokes at once.
	if _, err := f.v.Verify(tok); err != nil {
		t.Fatal(err)
	}
	k := f.keys["acme-ed"]
	delete(f.keys, "acme-ed")
	if _, err := f.v.Verify(tok); eddy.ErrorCode(err) != eddy.CodeTokenUnknownKey {
		t.Fatalf("key removed, cached: %v", err)
	}
	// Another key under the same kid: the old token no longer verifies.
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	k2, err := ParseKey("acme-ed", "acme", AlgEdDSA, pubPEM(t, pub))
	if err != nil {
		t.Fatal(err)
	}
	f.keys["acme-ed"] = k2
	if _, err := f.v.Verify(tok); eddy.ErrorCode(err) != eddy.CodeTokenBadSignature {
		t.Fatalf("kid reused for another key: %v", err)
	}
	f.keys["acme-ed"] = k
	if _, err := f.v.Verify(tok); err != nil {
		t.Fatalf("key back: %v", err)
	}
	// A token altered by one byte is checked in full.
	bad := tok[:len(tok)-2] + string("AB"[tok[len(tok)-2]%2]) + tok[len(tok)-1:]
	if _, err := f.v.Verify(bad); err == nil {
		t.Fatal("an altered token was accepted")
	}
}

// TestVerifyBytes: a token in a request's buffer verifies as its string
// does, is found in the cache without a copy of it, and is refused as the
// string is once its key is gone.
func TestVerifyBytes(t *testing.T) {
	f := newFixture(t)
	tok := f.mint(t, "acme-ed", jwt.SigningMethodEdDSA, f.claims("acme", "acme", "produce:s*"))
	buf := []byte(tok)
	p1, err := f.v.VerifyBytes(buf)
	if err != nil {
		t.Fatal(err)
	}
	if p2, err := f.v.Verify(tok); err != nil || p2 != p1 {
		t.Fatalf("the string after the bytes: %v, same principal %v", err, p2 == p1)
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = f.v.VerifyBytes(buf) }); n != 0 {
		t.Fatalf("a cached token's bytes cost %v allocations a verify, want 0", n)
	}
	delete(f.keys, "acme-ed")
	if _, err := f.v.VerifyBytes(buf); eddy.ErrorCode(err) != eddy.CodeTokenUnknownKey {
		t.Fatalf("key removed, cached: %v", err)
	}
}

func TestVerifiedCacheBounded(t *testing.T) {
	f := newFixture(t)
	for i := 0; i < maxVerified+500; i++ {
		tok, _, err := f.signer.Issue("acme", fmt.Sprint("dev-", i), []string{"produce:x"}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.v.Verify(tok); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(f.v.cache.m); n > maxVerified {
		t.Fatalf("%d cached tokens, bound %d", n, maxVerified)
	}
}

// BenchmarkVerify: the same token again (cached) against a token checked
// in full each time.
func BenchmarkVerify(b *testing.B) {
	f := newFixture(b)
	tok, _, _ := f.signer.Issue("acme", "svc", []string{"produce:*"}, time.Hour)
	b.Run("cached", func(b *testing.B) {
		for b.Loop() {
			if _, err := f.v.Verify(tok); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("full", func(b *testing.B) {
		for b.Loop() {
			if _, err := f.v.verify(tok); err != nil {
				b.Fatal(err)
			}
		}
	})
}
