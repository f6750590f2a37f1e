package multiraft

import "testing"

func TestCmdBuffers(t *testing.T) {
	for _, c := range []struct{ n, class, capacity int }{
		{100, -1, 100},
		{64<<10 - 1, -1, 64<<10 - 1},
		{64 << 10, 0, 64 << 10},
		{64<<10 + 1, 1, 128 << 10},
		{1_000_012, 4, 1 << 20},
		{1<<20 + 3, 5, 2 << 20},
		{8 << 20, 7, 8 << 20},
		{8<<20 + 1, -1, 8<<20 + 1},
	} {
		if got := cmdClass(c.n); got != c.class {
			t.Errorf("cmdClass(%d) = %d, want %d", c.n, got, c.class)
		}
		b := getCmd(c.n)
		if len(b) != 0 || cap(b) != c.capacity {
			t.Errorf("getCmd(%d): len %d cap %d, want 0 and %d", c.n, len(b), cap(b), c.capacity)
		}
		putCmd(append(b, 1, 2, 3))
	}
	// A buffer given back is handed out again, empty (sync.Pool may drop
	// it, so only what comes back is checked).
	b := getCmd(300 << 10)
	putCmd(append(b, make([]byte, 300<<10)...))
	if again := getCmd(260 << 10); len(again) != 0 || cap(again) != 512<<10 {
		t.Fatalf("getCmd after putCmd: len %d cap %d, want 0 and %d", len(again), cap(again), 512<<10)
	}
	putCmd(make([]byte, 0, 100<<10)) // not a pool's size: left to the collector
}
