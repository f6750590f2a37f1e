package node

import (
	"context"
	"os"
	"path/filepath"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"time"
)

// applyMemoryLimit sets Go's soft memory limit: memory_limit when set;
// otherwise, inside a memory cgroup (a container, a systemd unit with
// MemoryMax=), 3/4 of the cgroup's limit, so the collector gives memory
// back before the kernel's OOM killer takes the node. It returns the
// limit set (0 for none) and where it came from.
func applyMemoryLimit(configured int64) (int64, string) {
	if configured > 0 {
		debug.SetMemoryLimit(configured)
		return configured, "memory_limit"
	}
	if l := cgroupMemoryLimit(); l > 0 {
		debug.SetMemoryLimit(l / 4 * 3)
		return l / 4 * 3, "3/4 of the memory cgroup's limit"
	}
	return 0, ""
}

// cgroupMemoryLimit is the memory limit of this process's cgroup (v2's
// memory.max, or v1's memory.limit_in_bytes), or 0 if it has none.
func cgroupMemoryLimit() int64 {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.SplitN(line, ":", 3)
		if len(f) != 3 {
			continue
		}
		var file string
		switch {
		case f[0] == "0" && f[1] == "":
			file = filepath.Join("/sys/fs/cgroup", f[2], "memory.max")
		case strings.Contains(","+f[1]+",", ",memory,"):
			file = filepath.Join("/sys/fs/cgroup/memory", f[2], "memory.limit_in_bytes")
		default:
			continue
		}
		v, err := os.ReadFile(file)
		if err != nil {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSpace(string(v)), 10, 64)
		if err == nil && n > 0 && n < 1<<60 { // "max", or v1's "no limit" near 2^63
			return n
		}
	}
	return 0
}

// Giving memory back when the node falls quiet. After a burst Go keeps
// the heap it grew to: garbage waits for the next collection (which an
// idle node may not need for minutes) and free pages go back to the OS
// slowly, so the RSS stays near its peak long after the load stopped.
const (
	quietAllocsPerSec = 256 << 10 // what an idle node allocates (timers, metrics, sampling) stays well below
	releaseSlackBytes = 16 << 20  // heap kept beyond the live one before a release is worth a collection
)

// releaseWhenQuiet checks every period whether the node allocated less
// than quietAllocsPerSec over it; if so, after a busier period, and the
// heap the process holds grew by releaseSlackBytes since the last release
// left it, it collects and returns the free pages to the OS
// (debug.FreeOSMemory): once per quiet spell, so a node that stays quiet,
// or idles along under a light load, pays for it once. (The live heap the
// last collection saw is no guide: an idle node may not have collected
// since the middle of the burst.) The first time the node is quiet it
// also gives back the pages of its own binary mapped so far
// (pageOutBinary), most of which only the start used. It returns when
// ctx ends.
func releaseWhenQuiet(ctx context.Context, period time.Duration, released func(), pagedOut func(int64)) {
	s := heapSamples()
	read := func() (uint64, uint64) { return readHeap(s) }
	last, _ := read()
	var base uint64 // the heap held after the last release
	armed := true   // the start itself may have left garbage behind
	paged := false
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		allocs, held := read()
		quiet := allocs-last < uint64(quietAllocsPerSec*period.Seconds())
		last = allocs
		if !quiet {
			armed = true
			continue
		}
		if armed && held > base+releaseSlackBytes {
			debug.FreeOSMemory()
			last, base = read()
			released()
		}
		armed = false
		if !paged { // after the collection, which maps code of its own
			paged = true
			if b := pageOutBinary(); b > 0 {
				pagedOut(b)
			}
		}
	}
}

// heapSamples are the runtime metrics readHeap reads.
func heapSamples() []metrics.Sample {
	return []metrics.Sample{
		{Name: "/gc/heap/allocs:bytes"},
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/memory/classes/heap/unused:bytes"},
		{Name: "/memory/classes/heap/free:bytes"},
	}
}

// readHeap reads s (from heapSamples): the bytes allocated so far, and the
// heap held (mapped and not released to the OS).
func readHeap(s []metrics.Sample) (allocs, held uint64) {
	metrics.Read(s)
	return s[0].Value.Uint64(), s[1].Value.Uint64() + s[2].Value.Uint64() + s[3].Value.Uint64()
}
