// Package cpus is the number of CPUs the process may use, as Go's runtime
// found it at start: the machine's, a cgroup's CPU limit, or the
// GOMAXPROCS environment variable. Defaults scaled by CPUs read it rather
// than runtime.GOMAXPROCS, which a node sets one higher (SpareP).
package cpus

import (
	"os"
	"runtime"
)

var n = runtime.GOMAXPROCS(0)

// N is the number of CPUs.
func N() int { return n }

// SpareP runs Go's scheduler with one P more than the CPUs, unless the
// GOMAXPROCS environment variable sets them; it returns how many it runs.
//
// A goroutine queued on a P whose goroutine is blocked in a system call
// waits until Go's sysmon takes that P back, 20 µs to 10 ms later, unless
// an idle P steals it; and disk calls block. The Raft log's step worker
// readies the apply worker (the commit before) and goes straight into the
// next save's write and fdatasync: with a P for each of 2 CPUs, the other
// P busy answering requests, the apply worker waited 112 µs on average
// (p90 300 µs) to run, a Go execution trace of a node under 50
// connections sending one record each; with a spare P, which an idle
// thread holds and steals from the blocked one, 67 µs (p90 160 µs), and
// HTTP handlers' waits fell from 166 to 106 µs. docs/figures.md has the
// loads it moved. When no call blocks and more goroutines are ready
// than there are CPUs, the kernel time-slices one thread more among them;
// those figures include that.
func SpareP() int {
	if os.Getenv("GOMAXPROCS") != "" {
		return runtime.GOMAXPROCS(0)
	}
	runtime.GOMAXPROCS(n + 1)
	return n + 1
}
