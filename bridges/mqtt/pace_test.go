package mqtt

import (
	"testing"
	"time"
)

func TestPace(t *testing.T) {
	var p pace
	t0 := time.Unix(1000, 0)
	for i := 0; i < 10; i++ { // a second's worth at once
		if d := p.wait(10, t0); d != 0 {
			t.Fatalf("publish %d of the burst waits %v", i, d)
		}
	}
	if d := p.wait(10, t0); d != 100*time.Millisecond {
		t.Fatalf("the 11th at once waits %v, want 100ms", d)
	}
	// It waited its 100 ms: the next one owes another 100 ms.
	if d := p.wait(10, t0.Add(100*time.Millisecond)); d != 100*time.Millisecond {
		t.Fatalf("the 12th waits %v, want 100ms", d)
	}
	// Quiet for a minute: the bucket holds a second's worth, no more.
	later := t0.Add(time.Minute)
	for i := 0; i < 10; i++ {
		if d := p.wait(10, later); d != 0 {
			t.Fatalf("after a quiet minute, publish %d waits %v", i, d)
		}
	}
	if d := p.wait(10, later); d == 0 {
		t.Fatal("a quiet spell banked more than a second's worth")
	}
}
