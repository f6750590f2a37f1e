package node

import (
	"context"
	"os"
	"runtime"
	"strconv"
	"strings"
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
	var pagedOut atomic.Int64
	binBefore := binaryRSS(t)
	go releaseWhenQuiet(ctx, period, func() { releases.Add(1) }, func(b int64) { pagedOut.Add(b) })
	waitReleases(1)
	for deadline := time.Now().Add(10 * time.Second); pagedOut.Load() == 0 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	// The pages of the executable the process mapped left its RSS.
	binAfter := binaryRSS(t)
	t.Logf("the binary's RSS %d kB -> %d kB (%d MiB of mappings advised)", binBefore, binAfter, pagedOut.Load()>>20)
	if pagedOut.Load() <= 0 || binAfter > binBefore/2 {
		t.Fatalf("the binary's RSS %d kB -> %d kB after advising %d bytes at the first quiet spell: want at least half of it gone",
			binBefore, binAfter, pagedOut.Load())
	}
	if after := heapHeld(); after+64<<20 > before {
		t.Fatalf("heap held: %d MiB before the release, %d MiB after; want at least 64 MiB given back", before>>20, after>>20)
	}
	paged := pagedOut.Load()
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
	if b := pagedOut.Load(); b != paged {
		t.Fatalf("the binary's pages given back again (%d bytes, then %d): only the start's go", paged, b)
	}
}

// binaryRSS sums the Rss of the process's read-only mappings of its
// executable (/proc/self/smaps), in kB.
func binaryRSS(t *testing.T) int64 {
	t.Helper()
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	var sum int64
	mine := false
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "Rss:" {
			if mine {
				n, err := strconv.ParseInt(f[1], 10, 64)
				if err != nil {
					t.Fatal(err)
				}
				sum += n
			}
		} else if len(f) >= 5 && strings.Contains(f[0], "-") {
			_, _, mine = exeMapping(line, exe) // a mapping's first line
		}
	}
	return sum
}
