// Package testutil holds helpers shared by Eddy's tests.
package testutil

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"testing"

	"github.com/eddy-broker/eddy"
)

// FreeAddr returns a loopback host:port that is free now, chosen below the
// kernel's ephemeral port range.
//
// Why not 127.0.0.1:0: that hands out ephemeral ports. While a test node is
// down, its peers keep dialling 127.0.0.1:P, and the kernel may pick P
// itself as the source port of such a dial: TCP then connects the socket to
// itself (simultaneous open). The peer believes it reached the node and
// keeps writing into its own socket, and the node, restarted on P, never
// hears from it. Ports outside the ephemeral range are never picked as
// source ports, as in production (7100).
func FreeAddr(tb testing.TB) string {
	tb.Helper()
	portMu.Lock()
	defer portMu.Unlock()
	lo := ephemeralLow()
	base := 10000
	if lo-base < 1000 {
		base = 1024
	}
	span := lo - base
	if nextPort == 0 {
		// Start each test process at its own random place and hand out
		// ports in sequence from there: two calls in one process never
		// return the same port, even if the first is not listening yet.
		nextPort = rand.IntN(span)
	}
	for i := 0; i < 500; i++ {
		port := base + nextPort%span
		nextPort++
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue
		}
		addr := l.Addr().String()
		l.Close()
		return addr
	}
	tb.Fatal("no free port below the ephemeral range")
	return ""
}

var (
	portMu   sync.Mutex
	nextPort int
)

// ephemeralLow is the first port of the kernel's ephemeral range.
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	var lo, hi int
	if err == nil {
		if _, err := fmt.Sscan(string(b), &lo, &hi); err == nil && lo > 2024 {
			return lo
		}
	}
	return 32768
}

// RandomRecords are n records of every shape: null and empty values, keys
// or none, headers or none.
func RandomRecords(rng *rand.Rand, n int) []eddy.Record {
	recs := make([]eddy.Record, n)
	for i := range recs {
		r := &recs[i]
		r.Timestamp = 1_700_000_000_000 + rng.Int64N(1_000_000)
		if rng.IntN(4) > 0 {
			r.Key = []byte(fmt.Sprintf("key-%d", rng.IntN(100)))
		}
		switch rng.IntN(5) {
		case 0: // null value
		case 1:
			r.Value = []byte{}
		default:
			r.Value = make([]byte, rng.IntN(300))
			for j := range r.Value {
				r.Value[j] = byte(rng.Uint32())
			}
		}
		for h := rng.IntN(3); h > 0; h-- {
			r.Headers = append(r.Headers, eddy.Header{Key: fmt.Sprintf("h%d", h), Value: []byte("v")})
		}
	}
	return recs
}

// SameRecord compares records as a round trip through a batch keeps them:
// null and empty told apart.
func SameRecord(a eddy.Record, b eddy.Record) bool {
	if (a.Key == nil) != (b.Key == nil) || (a.Value == nil) != (b.Value == nil) {
		return false
	}
	if !bytes.Equal(a.Key, b.Key) || !bytes.Equal(a.Value, b.Value) || a.Timestamp != b.Timestamp || len(a.Headers) != len(b.Headers) {
		return false
	}
	for i := range a.Headers {
		if a.Headers[i].Key != b.Headers[i].Key || !bytes.Equal(a.Headers[i].Value, b.Headers[i].Value) {
			return false
		}
	}
	return true
}
