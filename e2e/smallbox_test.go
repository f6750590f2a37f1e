package e2e

import (
	"io/fs"
	"path/filepath"
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
