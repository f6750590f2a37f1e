package httpapi

import (
	"testing"

	"github.com/eddy-broker/eddy"
)

// TestHTTPStatuses: the table answers each code with its status; a code
// that refuses credentials is a 401, and only those are.
func TestHTTPStatuses(t *testing.T) {
	tests := map[eddy.Code]int{
		eddy.CodeInvalid: 400, eddy.CodeNotFound: 404, eddy.CodeTopicExists: 409,
		eddy.CodeRecordTooLarge: 413, eddy.CodeOffsetOutOfRange: 416,
		eddy.CodeBackpressure: 429, eddy.CodeUnavailable: 503, eddy.Code("nope"): 500,
		eddy.CodeTokenRevoked: 401, eddy.CodeStorageFull: 507,
	}
	for c, s := range tests {
		if httpStatus(c) != s {
			t.Errorf("%s -> %d, want %d", c, httpStatus(c), s)
		}
	}
	for c, s := range statuses {
		if c.Unauthenticated() != (s == 401) {
			t.Errorf("%s -> %d, but Unauthenticated() is %v", c, s, c.Unauthenticated())
		}
	}
}
