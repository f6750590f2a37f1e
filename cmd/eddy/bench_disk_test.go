package main

import (
	"os"
	"testing"
)

// bench disk times real syncs in the directory it is given and leaves
// nothing behind there.
func TestBenchDisk(t *testing.T) {
	dir := t.TempDir()
	res, err := benchDisk(dir, 4096, 20)
	if err != nil {
		t.Fatal(err)
	}
	if res.Syncs != 20 || res.Size != 4096 || res.AppendP50Ms <= 0 || res.OverwriteP50Ms <= 0 ||
		res.AppendP99Ms < res.AppendP50Ms || res.OverwriteP99Ms < res.OverwriteP50Ms || res.AppendPerSec <= 0 || res.OverwritePerSec <= 0 {
		t.Fatalf("result: %+v", res)
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Fatalf("left behind: %v", left)
	}
	for _, c := range []struct{ size, count int }{{0, 10}, {4096, 0}, {32 << 20, 10}} {
		if _, err := benchDisk(dir, c.size, c.count); err == nil {
			t.Errorf("size %d, count %d: no refusal", c.size, c.count)
		}
	}
	if _, err := benchDisk(dir+"/missing", 4096, 10); err == nil {
		t.Error("a missing directory: no error")
	}
}
