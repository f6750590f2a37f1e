package catalog

import (
	"testing"

	"github.com/eddy-broker/eddy"
)

// TestLinkSpecRefusesBadCA: a CA that is no PEM certificate is refused at
// creation, not found by every node's runner later.
func TestLinkSpecRefusesBadCA(t *testing.T) {
	s := LinkSpec{To: []string{"cloud:9093"}, Topics: []string{"sensors"}, TLS: true, CAPEM: "not a certificate"}
	if err := s.Validate(); eddy.ErrorCode(err) != eddy.CodeInvalid {
		t.Fatalf("a bad CA: %v", err)
	}
	s.CAPEM = ""
	if err := s.Validate(); err != nil {
		t.Fatalf("no CA (the system's roots): %v", err)
	}
}
