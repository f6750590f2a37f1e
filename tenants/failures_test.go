package tenants

import (
	"net/netip"
	"testing"
	"time"

	"github.com/eddy-broker/eddy"
)

// TestFailureLimit: an address that sent more refused tokens than its
// bucket holds gets its next unverified token refused unchecked (a good
// one too), while a token that verified before is served to it, and
// another address's tokens are checked in full; the bucket refills at
// its rate.
func TestFailureLimit(t *testing.T) {
	f := newFixture(t)
	var throttled int
	f.v.Failures = &FailureLimit{PerSecond: 2, Burst: 3, OnThrottle: func() { throttled++ }}
	attacker, other := netip.MustParseAddr("192.0.2.7"), netip.MustParseAddr("192.0.2.8")
	good, _, err := f.signer.Issue("acme", "svc", []string{"produce:*"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.v.VerifyFrom([]byte(good), other); err != nil { // verified once: cached
		t.Fatal(err)
	}
	forged := []byte(good[:len(good)-4] + "AAAA")
	for i := range 3 {
		if _, err := f.v.VerifyFrom(forged, attacker); eddy.ErrorCode(err) == eddy.CodeAuthThrottled {
			t.Fatalf("refusal %d of a burst of 3 throttled", i+1)
		}
	}
	if _, err := f.v.VerifyFrom(forged, attacker); eddy.ErrorCode(err) != eddy.CodeAuthThrottled {
		t.Fatalf("the 4th refused token at once: %v", err)
	}
	fresh, _, _ := f.signer.Issue("acme", "svc2", []string{"produce:*"}, time.Hour)
	if _, err := f.v.VerifyFrom([]byte(fresh), attacker); eddy.ErrorCode(err) != eddy.CodeAuthThrottled {
		t.Fatalf("a good token never verified, from the throttled address, was checked: %v", err)
	}
	if p, err := f.v.VerifyFrom([]byte(good), attacker); err != nil || p.Subject != "svc" {
		t.Fatalf("a token verified before, from the throttled address: %v", err)
	}
	if _, err := f.v.VerifyFrom(forged, other); eddy.ErrorCode(err) != eddy.CodeTokenBadSignature {
		t.Fatalf("another address's forged token: %v", err)
	}
	if _, err := f.v.VerifyFrom(nil, attacker); eddy.ErrorCode(err) != eddy.CodeTokenMissing {
		t.Fatalf("no token, from the throttled address: %v", err)
	}
	if throttled != 2 {
		t.Fatalf("throttled %d, want 2", throttled)
	}
	f.now = f.now.Add(time.Second) // two refusals' room
	for i := range 2 {
		if _, err := f.v.VerifyFrom(forged, attacker); eddy.ErrorCode(err) != eddy.CodeTokenBadSignature {
			t.Fatalf("refusal %d a second later: %v", i+1, err)
		}
	}
	if _, err := f.v.VerifyFrom([]byte(fresh), attacker); eddy.ErrorCode(err) != eddy.CodeAuthThrottled {
		t.Fatalf("past the refilled room: %v", err)
	}
}

// TestFailureLimitIPv6: the addresses of one IPv6 /64 share a bucket (a
// host has a /64 to pick from); another /64 has its own.
func TestFailureLimitIPv6(t *testing.T) {
	f := newFixture(t)
	f.v.Failures = &FailureLimit{PerSecond: 1, Burst: 2}
	good, _, _ := f.signer.Issue("acme", "svc", []string{"produce:*"}, time.Hour)
	forged := []byte(good[:len(good)-4] + "AAAA")
	for _, a := range []string{"2001:db8:1:2::1", "2001:db8:1:2::2"} {
		if _, err := f.v.VerifyFrom(forged, netip.MustParseAddr(a)); eddy.ErrorCode(err) != eddy.CodeTokenBadSignature {
			t.Fatalf("%s: %v", a, err)
		}
	}
	if _, err := f.v.VerifyFrom(forged, netip.MustParseAddr("2001:db8:1:2:ffff::9")); eddy.ErrorCode(err) != eddy.CodeAuthThrottled {
		t.Fatalf("a third address of the /64: %v", err)
	}
	if _, err := f.v.VerifyFrom(forged, netip.MustParseAddr("2001:db8:1:3::1")); eddy.ErrorCode(err) != eddy.CodeTokenBadSignature {
		t.Fatalf("another /64: %v", err)
	}
}
