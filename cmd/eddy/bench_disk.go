package main

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
)

// diskResult is what bench disk prints: the time to write a block and
// make it durable, the floor under every acknowledged write (each Raft log
// save is one such write and sync). Appending, each sync also commits the
// file's new length to the filesystem's journal; overwriting a file
// written before, it carries the data alone (the Raft log store reuses
// its files so, once it has rotated through them).
type diskResult struct {
	Dir             string  `json:"dir"`
	Size            int     `json:"size"`
	Syncs           int     `json:"syncs"`
	AppendP50Ms     float64 `json:"append_p50_ms"`
	AppendP99Ms     float64 `json:"append_p99_ms"`
	AppendPerSec    float64 `json:"append_per_sec"`
	OverwriteP50Ms  float64 `json:"overwrite_p50_ms"`
	OverwriteP99Ms  float64 `json:"overwrite_p99_ms"`
	OverwritePerSec float64 `json:"overwrite_per_sec"`
}

func newBenchDisk() *cobra.Command {
	var dir string
	var size, count int
	var out benchOut
	cmd := &cobra.Command{
		Use:   "disk",
		Short: "Time a write and fdatasync of --size bytes in --dir, appending and overwriting (the floor of a durable write; no node needed)",
		RunE: func(cmd *cobra.Command, args []string) error {
			res, err := benchDisk(dir, size, count)
			if err != nil {
				return err
			}
			return out.print(res, func() {
				fmt.Printf("disk at %s, %d-byte writes each followed by fdatasync (%d of each):\n  appending:   p50 %.3f ms, p99 %.3f ms, %.0f syncs/s\n  overwriting: p50 %.3f ms, p99 %.3f ms, %.0f syncs/s\n",
					res.Dir, res.Size, res.Syncs, res.AppendP50Ms, res.AppendP99Ms, res.AppendPerSec, res.OverwriteP50Ms, res.OverwriteP99Ms, res.OverwritePerSec)
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&dir, "dir", ".", "directory on the disk to measure (the node's data directory); a scratch file is made and removed there")
	f.IntVar(&size, "size", 4096, "bytes per write")
	f.IntVar(&count, "count", 1000, "writes of each kind")
	out.flags(cmd)
	return cmd
}

// benchDisk appends count blocks of size bytes to a new file in dir, each
// synced, then overwrites them in place, each synced, and removes the
// file.
func benchDisk(dir string, size, count int) (*diskResult, error) {
	if size < 1 || size > 16<<20 || count < 1 || count > 1_000_000 {
		return nil, fmt.Errorf("--size 1 to 16 MiB and --count 1 to 1,000,000")
	}
	f, err := os.CreateTemp(dir, ".eddy-bench-disk-*")
	if err != nil {
		return nil, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	abs, _ := filepath.Abs(dir)
	res := &diskResult{Dir: abs, Size: size, Syncs: count}
	block := make([]byte, size)
	for i := range block {
		block[i] = byte('a' + i%26)
	}
	pass := func(p50, p99, perSec *float64) error {
		l := latencies{d: make([]time.Duration, 0, count)}
		start := time.Now()
		for i := range count {
			t := time.Now()
			if _, err := f.WriteAt(block, int64(i)*int64(size)); err != nil {
				return err
			}
			if err := datasync(f); err != nil {
				return err
			}
			l.d = append(l.d, time.Since(t))
		}
		*perSec = float64(count) / time.Since(start).Seconds()
		l.sort()
		*p50, *p99 = l.pct(0.5), l.pct(0.99)
		return nil
	}
	if err := pass(&res.AppendP50Ms, &res.AppendP99Ms, &res.AppendPerSec); err != nil {
		return nil, err
	}
	if err := pass(&res.OverwriteP50Ms, &res.OverwriteP99Ms, &res.OverwritePerSec); err != nil {
		return nil, err
	}
	return res, nil
}
