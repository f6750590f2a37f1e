package logkey

import (
	"testing"
	"time"
)

// TestRepeats: a kind of line is logged once per window, then with the
// count of those left out; another kind is not held back by it.
func TestRepeats(t *testing.T) {
	r := NewRepeats(30 * time.Second)
	t0 := time.Unix(1000, 0)
	if n, ok := r.Admit("transport|unreachable %s", t0); !ok || n != 0 {
		t.Fatal("the first is logged")
	}
	for i := 1; i < 30; i++ {
		if _, ok := r.Admit("transport|unreachable %s", t0.Add(time.Duration(i)*time.Second)); ok {
			t.Fatalf("repeat %d within the window was logged", i)
		}
	}
	if _, ok := r.Admit("transport|other %s", t0.Add(time.Second)); !ok {
		t.Fatal("another kind is logged")
	}
	if n, ok := r.Admit("transport|unreachable %s", t0.Add(30*time.Second)); !ok || n != 29 {
		t.Fatalf("after the window: logged %v, %d left out, want 29", ok, n)
	}
}
