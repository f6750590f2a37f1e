package eddy_test

import (
	"errors"
	"fmt"
	"go/build"
	"strings"
	"testing"

	"github.com/eddy-broker/eddy"
)

// Kafka's own test vectors (clients/src/test/.../UtilsTest.testMurmur2) give
// murmur2 of these strings; the partition is (h & 0x7fffffff) % n.
func TestKeyPartitionMatchesKafka(t *testing.T) {
	tests := []struct {
		key  string
		hash int32
	}{
		{"21", -973932308},
		{"foobar", -790332482},
		{"a-little-bit-long-string", -985981536},
		{"a-little-bit-longer-string", -1486304829},
		{"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971},
		{"abc", 479470107},
	}
	for _, tc := range tests {
		for _, n := range []int32{1, 3, 8, 100} {
			want := eddy.Partition(int32(uint32(tc.hash)&0x7fffffff) % n)
			if got := eddy.KeyPartition([]byte(tc.key), n); got != want {
				t.Errorf("KeyPartition(%q, %d) = %d, want %d", tc.key, n, got, want)
			}
		}
	}
}

func TestNames(t *testing.T) {
	good := []string{"default", "a", "acme-1", strings.Repeat("a", 32)}
	bad := []string{"", "-a", "A", "a_b", strings.Repeat("a", 33), "a/b"}
	for _, s := range good {
		if err := eddy.TenantID(s).Validate(); err != nil {
			t.Errorf("tenant %q: %v", s, err)
		}
	}
	for _, s := range bad {
		if err := eddy.TenantID(s).Validate(); eddy.ErrorCode(err) != eddy.CodeInvalid {
			t.Errorf("tenant %q: got %v, want invalid", s, err)
		}
	}
	goodTopics := []string{"sensors", "a.b_c-D9", strings.Repeat("x", 200)}
	badTopics := []string{"", ".", "..", "a/b", "a b", strings.Repeat("x", 201), "é"}
	for _, s := range goodTopics {
		if err := eddy.TopicName(s).Validate(); err != nil {
			t.Errorf("topic %q: %v", s, err)
		}
	}
	for _, s := range badTopics {
		if err := eddy.TopicName(s).Validate(); eddy.ErrorCode(err) != eddy.CodeInvalid {
			t.Errorf("topic %q: got %v, want invalid", s, err)
		}
	}
	r, err := eddy.ParseTopicRef("acme/sensors")
	if err != nil || r.String() != "acme/sensors" {
		t.Fatalf("ParseTopicRef: %v %v", r, err)
	}
}

func TestErrorCodes(t *testing.T) {
	cause := errors.New("disk on fire")
	err := fmt.Errorf("append: %w", eddy.Errorf(eddy.CodeStorageFull, "no space: %w", cause))
	if got := eddy.ErrorCode(err); got != eddy.CodeStorageFull {
		t.Fatalf("code = %q", got)
	}
	if !errors.Is(err, cause) {
		t.Fatal("cause not reachable")
	}
	if got := eddy.ErrorCode(errors.New("x")); got != eddy.CodeInternal {
		t.Fatalf("plain error code = %q", got)
	}
}

// The root package is the vocabulary: it must import only the standard library.
func TestRootImportsStdlibOnly(t *testing.T) {
	pkg, err := build.ImportDir(".", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, imp := range pkg.Imports {
		if strings.Contains(strings.Split(imp, "/")[0], ".") {
			t.Errorf("package eddy imports %s; only the standard library is allowed", imp)
		}
	}
}
