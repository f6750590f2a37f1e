package node

import (
	"context"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

// heapHeld is the heap mapped and not given back to the OS.
func heapHeld() uint64 {
	_, held := readHeap(heapSamples())
	return held
}

var sink [][]byte

// burst allocates n MiB in 64 KiB pieces and drops them: garbage the
// collector has not seen yet, as after a load.
func burst(n int) {
	for i := 0; i < n*16; i++ {
		sink = append(sink, make([]byte, 64<<10))
	}
	sink = nil
}

func TestReleaseWhenQuiet(t *testing.T) {
	var releases atomic.Int32
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	waitReleases := func(want int32) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); releases.Load() < want; time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("releases: have %d, want %d", releases.Load(), want)
			}
		}
	}
	runtime.GC()
	burst(96)
	before := heapHeld()
	const period = 100 * time.Millisecond
	go releaseWhenQuiet(ctx, period, func() { releases.Add(1) })
	waitReleases(1)
	if after := heapHeld(); after+64<<20 > before {
		t.Fatalf("heap held: %d MiB before the release, %d MiB after; want at least 64 MiB given back", before>>20, after>>20)
	}
	// Quiet since: no second release, however long it stays quiet.
	time.Sleep(10 * period)
	if n := releases.Load(); n != 1 {
		t.Fatalf("releases while quiet: %d, want 1", n)
	}
	// Busy again, ending on a large burst, then quiet: one more.
	for end := time.Now().Add(3 * period); time.Now().Before(end); {
		burst(16)
	}
	burst(96)
	waitReleases(2)
}
