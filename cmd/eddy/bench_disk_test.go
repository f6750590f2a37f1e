package main

import (
	"os"
	"testing"
)

// bench disk times real syncs in the directory it is given and leaves
// nothing behind there.
func TestBenchDisk(t *testing.T) {
	dir := t.TempDir()
	for _, writers := range []int{1, 3} {
		res, err := benchDisk(dir, 4096, 20, writers)
		if err != nil {
			t.Fatal(err)
		}
		if res.Syncs != 20 || res.Size != 4096 || res.Writers != writers || res.AppendP50Ms <= 0 || res.OverwriteP50Ms <= 0 ||
			res.AppendP99Ms < res.AppendP50Ms || res.OverwriteP99Ms < res.OverwriteP50Ms || res.AppendPerSec <= 0 || res.OverwritePerSec <= 0 ||
			res.AppendCPUUs <= 0 || res.OverwriteCPUUs <= 0 {
			t.Fatalf("result: %+v", res)
		}
		// The bytes per second are the syncs' bytes over the same time.
		if mb := res.AppendPerSec * 4096 / 1e6; res.AppendMBPerSec < 0.99*mb || res.AppendMBPerSec > 1.01*mb {
			t.Fatalf("appending %.3f MB/s, %.0f syncs/s of 4096 bytes", res.AppendMBPerSec, res.AppendPerSec)
		}
		if left, _ := os.ReadDir(dir); len(left) != 0 {
			t.Fatalf("left behind: %v", left)
		}
	}
	for _, c := range []struct{ size, count, writers int }{{0, 10, 1}, {4096, 0, 1}, {32 << 20, 10, 1}, {4096, 10, 0}, {4096, 10, 11}, {4096, 100, 65}} {
		if _, err := benchDisk(dir, c.size, c.count, c.writers); err == nil {
			t.Errorf("size %d, count %d, writers %d: no refusal", c.size, c.count, c.writers)
		}
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Fatalf("left behind after refusals: %v", left)
	}
	if _, err := benchDisk(dir+"/missing", 4096, 10, 1); err == nil {
		t.Error("a missing directory: no error")
	}
}
