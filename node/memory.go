package node

import (
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
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
