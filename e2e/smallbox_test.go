package e2e

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// dirBytes is the disk a directory tree takes (allocated blocks, so a
// preallocated file counts whole).
func dirBytes(t *testing.T, dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if fi, err := d.Info(); err == nil {
				n += allocated(fi)
			}
		}
		return nil
	})
	return n
}

// TestEmptyPartitionsCostKilobytes: 64 empty partitions, and a restart,
// take a few MB of Raft log store, not the 64 MiB each that tan
// preallocated (4.2 GB), nor 64 MiB more per restart.
func TestEmptyPartitionsCostKilobytes(t *testing.T) {
	p := newProc(t)
	p.start()
	before := dirBytes(t, filepath.Join(p.dataDir, "raft"))
	if code, err := p.do("POST", "/v1/topics", "application/json", []byte(`{"name":"many","partitions":64}`), nil); err != nil || code != 201 {
		t.Fatalf("create: %d %v", code, err)
	}
	time.Sleep(2 * time.Second)
	grew := dirBytes(t, filepath.Join(p.dataDir, "raft")) - before
	p.kill()
	p.start()
	again := dirBytes(t, filepath.Join(p.dataDir, "raft")) - before
	t.Logf("64 empty partitions: %d KB of Raft log store, %d KB after a restart", grew>>10, again>>10)
	if grew > 16<<20 || again > 16<<20 {
		t.Fatalf("64 empty partitions took %d MB of Raft log store, %d MB after a restart", grew>>20, again>>20)
	}
}

// TestProduceConsumeIn256MB runs a node inside a 256 MB memory limit,
// writes 100,000 records of 1 KiB across 64 partitions over 8 connections
// and reads every one back. The limit is a memory cgroup where this
// machine lets the test make one: the kernel kills the node if it goes
// over, and the node sets its own soft limit from the cgroup's. Elsewhere
// the node gets memory_limit 192 MiB and only its peak RSS is checked.
// Either way the peak RSS must stay under 256 MB.
func TestProduceConsumeIn256MB(t *testing.T) {
	const limit = 256 << 20
	p := newProc(t)
	how := "peak RSS only, memory_limit 192 MiB: no memory cgroup could be made here"
	if cg := memoryCgroup(t, limit); cg != "" {
		p.wrap = []string{"sh", "-c", `echo $$ > "$EDDY_CGROUP/cgroup.procs" && exec "$0" "$@"`}
		p.env = append(p.env, "EDDY_CGROUP="+cg)
		how = "a memory cgroup " + cg
	} else {
		p.env = append(p.env, fmt.Sprintf("EDDY_MEMORY_LIMIT=%d", 192<<20))
	}
	p.start()
	p.mustCreateTopic("load", 64)
	const clients, batches, perBatch = 8, 125, 100
	if err := appendKiBRecords(p, "load", clients, batches, perBatch); err != nil {
		t.Fatalf("%v\n%s", err, p.log)
	}
	got := 0
	for part := range 64 {
		got += len(p.readPartition("load", part))
	}
	peak := peakRSS(t, p)
	if !p.alive() {
		t.Fatalf("the node died (%s)\n%s", how, p.log)
	}
	if got != clients*batches*perBatch {
		t.Fatalf("read %d records, wrote %d", got, clients*batches*perBatch)
	}
	t.Logf("%d records of 1 KiB over 64 partitions written and read back; peak RSS %d MB (%s)", got, peak>>20, how)
	if !strings.Contains(p.log.String(), "soft memory limit set") {
		t.Errorf("the node set no soft memory limit (%s)", how)
	}
	if peak > limit {
		t.Fatalf("peak RSS %d MB, over 256 MB", peak>>20)
	}
}

// memoryCgroup makes a memory cgroup (v2, or v1's memory controller) of
// limit bytes and returns its directory, or "" if this machine does not
// let the test make one.
func memoryCgroup(t *testing.T, limit int64) string {
	for _, c := range []struct{ parent, file string }{
		{"/sys/fs/cgroup", "memory.max"},
		{"/sys/fs/cgroup/memory", "memory.limit_in_bytes"},
	} {
		if _, err := os.Stat(filepath.Join(c.parent, c.file)); err != nil && c.file == "memory.max" {
			// cgroup v2 puts memory.max in children only.
			if b, err := os.ReadFile(filepath.Join(c.parent, "cgroup.subtree_control")); err != nil || !strings.Contains(string(b), "memory") {
				continue
			}
		}
		dir := filepath.Join(c.parent, fmt.Sprintf("eddy-e2e-%d", os.Getpid()))
		if err := os.Mkdir(dir, 0o755); err != nil {
			continue
		}
		if err := os.WriteFile(filepath.Join(dir, c.file), []byte(fmt.Sprint(limit)), 0o644); err != nil {
			os.Remove(dir)
			continue
		}
		t.Cleanup(func() {
			for i := 0; i < 50 && os.Remove(dir) != nil; i++ {
				time.Sleep(100 * time.Millisecond) // until the node has left it
			}
		})
		return dir
	}
	return ""
}

// peakRSS is the node's peak resident set (VmHWM).
func peakRSS(t *testing.T, p *proc) int64 { return procStatusBytes(t, p.cmd.Process.Pid, "VmHWM") }
