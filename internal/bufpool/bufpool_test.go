package bufpool

import "testing"

func TestClasses(t *testing.T) {
	for _, c := range []struct{ n, class, capacity int }{
		{100, -1, 100},
		{4<<10 - 1, -1, 4<<10 - 1},
		{4 << 10, 0, 4 << 10},
		{4<<10 + 1, 1, 8 << 10},
		{53 << 10, 4, 64 << 10},
		{1_000_012, 8, 1 << 20},
		{1<<20 + 3, 9, 2 << 20},
		{8 << 20, 11, 8 << 20},
		{8<<20 + 1, -1, 8<<20 + 1},
	} {
		if got := class(c.n); got != c.class {
			t.Errorf("class(%d) = %d, want %d", c.n, got, c.class)
		}
		b := Get(c.n)
		if len(b) != 0 || cap(b) != c.capacity {
			t.Errorf("Get(%d): len %d cap %d, want 0 and %d", c.n, len(b), cap(b), c.capacity)
		}
		Put(append(b, 1, 2, 3))
	}
	// A buffer given back is handed out again, empty (sync.Pool may drop
	// it, so only what comes back is checked).
	b := Get(300 << 10)
	Put(append(b, make([]byte, 300<<10)...))
	if again := Get(260 << 10); len(again) != 0 || cap(again) != 512<<10 {
		t.Fatalf("Get after Put: len %d cap %d, want 0 and %d", len(again), cap(again), 512<<10)
	}
	Put(make([]byte, 0, 100<<10)) // not a pool's size: left to the collector
}

// TestGrow: the bytes move to a buffer of at least the capacity asked;
// one large enough is kept.
func TestGrow(t *testing.T) {
	b := append(Get(Min), "abc"...)
	g := Grow(b, 3*Min)
	if string(g) != "abc" || cap(g) < 3*Min {
		t.Fatalf("Grow: %q, cap %d", g, cap(g))
	}
	if same := Grow(g, Min); &same[:1][0] != &g[:1][0] {
		t.Fatal("a buffer large enough was replaced")
	}
}

// TestCap: Cap(n) is the capacity of what Get(n) returns, pooled or made
// to measure.
func TestCap(t *testing.T) {
	for _, n := range []int{0, 1, Min - 1, Min, Min + 1, 3 * Min, Max - 1, Max, Max + 1, 3 * Max} {
		if b := Get(n); cap(b) != Cap(n) || Cap(n) < n {
			t.Fatalf("Get(%d) has capacity %d; Cap says %d", n, cap(b), Cap(n))
		}
	}
}
