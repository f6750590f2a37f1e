package mqtt

import (
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

// TestWillsHeldBounded: delayed wills are held within their bounds (past
// one, hold refuses and the caller publishes at once), a return cancels
// one, a later will of the same client replaces its earlier one, and
// close drops them all without publishing.
func TestWillsHeldBounded(t *testing.T) {
	var ws wills
	var published atomic.Int64
	publish := func() { published.Add(1) }
	if !ws.hold("t/a", 100, time.Hour, publish) || !ws.hold("t/b", 100, time.Hour, publish) {
		t.Fatal("two small wills not held")
	}
	if ws.hold("t/c", maxHeldWillBytes, time.Hour, publish) {
		t.Fatal("a will past the bytes bound was held")
	}
	if !ws.hold("t/a", 50, time.Hour, publish) || len(ws.held) != 2 || ws.bytes != 150 {
		t.Fatalf("a second will of t/a: %d held, %d bytes", len(ws.held), ws.bytes)
	}
	if !ws.cancel("t/b") || ws.cancel("t/b") || ws.bytes != 50 {
		t.Fatalf("cancel: %d bytes", ws.bytes)
	}
	var many wills
	for i := range maxHeldWills {
		many.hold(strconv.Itoa(i), 1, time.Hour, publish)
	}
	if many.hold("one more", 1, time.Hour, publish) {
		t.Fatal("a will past the count bound was held")
	}
	many.close()
	ws.close()
	if len(ws.held) != 0 || ws.bytes != 0 || !ws.hold("after", 1, time.Millisecond, publish) || len(ws.held) != 0 {
		t.Fatal("close kept wills, or hold kept one after it (it drops them: the node is stopping)")
	}
	if !(&wills{}).hold("soon", 1, time.Millisecond, publish) {
		t.Fatal("not held")
	}
	deadline := time.Now().Add(5 * time.Second)
	for published.Load() != 1 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if n := published.Load(); n != 1 {
		t.Fatalf("%d wills published, want only the one whose delay passed", n)
	}
}
