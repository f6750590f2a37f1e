package node

import (
	"runtime"
	"testing"
	"time"
)

func TestFloorPercent(t *testing.T) {
	const mb = 1 << 20
	for _, c := range []struct {
		live, floor uint64
		base, want  int
	}{
		{4 * mb, 32 * mb, 100, 700},  // the goal is the floor
		{16 * mb, 32 * mb, 100, 100}, // twice the live heap reaches it
		{40 * mb, 32 * mb, 100, 100}, // beyond it
		{10 * mb, 32 * mb, 300, 300}, // GOGC 300 reaches it
		{1 * mb, 32 * mb, 100, 1000}, // capped
		{0, 32 * mb, 100, 1000},      // nothing live
		{12 * mb, 32 * mb, 100, 166}, // (32-12)/12
		{31 * mb, 32 * mb, 50, 50},   // 1.5 x 31 > 32
		{20 * mb, 32 * mb, 50, 60},   // (32-20)/20
		{3 * mb, 64 * mb, 100, 1000}, // capped
		{8 * mb, 16 * mb, 100, 100},  // exactly twice
	} {
		if got := floorPercent(c.live, c.floor, c.base); got != c.want {
			t.Errorf("live %d MiB, floor %d MiB, GOGC %d: %d, want %d", c.live/mb, c.floor/mb, c.base, got, c.want)
		}
	}
}

// With the floor, allocating 256 MiB of short-lived garbage over a small
// live heap takes a handful of collections, not the 100 or so that Go's
// 4 MiB minimum goal makes.
func TestHeapFloorCollectsLess(t *testing.T) {
	t.Setenv("GOGC", "") // an operator's GOGC turns the floor off
	keepHeapFloor(32 << 20)
	runtime.GC() // the finalizer sets GOGC after this one
	deadline := time.Now().Add(5 * time.Second)
	for gcPercent() <= 100 {
		if time.Now().After(deadline) {
			t.Fatalf("GOGC still %d after a collection", gcPercent())
		}
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	var keep []byte
	for range 4096 {
		keep = make([]byte, 64<<10)
		keep[0] = 1
	}
	runtime.ReadMemStats(&after)
	n := after.NumGC - before.NumGC
	t.Logf("%d collections for 256 MiB (GOGC %d, live %d KiB)", n, gcPercent(), after.HeapAlloc>>10)
	if n > 16 {
		t.Fatalf("%d collections for 256 MiB of garbage with a 32 MiB floor, want at most 16", n)
	}
}
