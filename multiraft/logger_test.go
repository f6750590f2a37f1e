package multiraft

import (
	"testing"
	"time"
)

// TestRepeatedWarningsLimited: a kind of dragonboat warning is logged once
// per window, then with the count of those left out.
func TestRepeatedWarningsLimited(t *testing.T) {
	l := &limiter{seen: map[string]*seenKind{}}
	t0 := time.Unix(1000, 0)
	if n, ok := l.admit("transport|unreachable %s", t0); !ok || n != 0 {
		t.Fatal("the first is logged")
	}
	for i := 1; i < 30; i++ {
		if _, ok := l.admit("transport|unreachable %s", t0.Add(time.Duration(i)*time.Second)); ok {
			t.Fatalf("repeat %d within the window was logged", i)
		}
	}
	if _, ok := l.admit("transport|other %s", t0.Add(time.Second)); !ok {
		t.Fatal("another kind is logged")
	}
	if n, ok := l.admit("transport|unreachable %s", t0.Add(repeatWindow)); !ok || n != 29 {
		t.Fatalf("after the window: logged %v, %d left out, want 29", ok, n)
	}
}
