package main

import (
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"
)

// diskResult is what bench disk prints: the time to write a block and
// make it durable, the floor under every acknowledged write (each Raft log
// save is one such write and sync). Appending, each sync also commits the
// file's new length to the filesystem's journal; overwriting a file
// written before, it carries the data alone (the Raft log store reuses
// its files so, once it has rotated through them). With several writers,
// each writes a file of its own at the same time, as the Raft log stores
// of nodes sharing one disk do: the bytes per second are then the disk's
// ceiling for them together. The CPU a sync costs is this process's user
// and system time over a pass, a sync's share of it: on a virtual machine
// a write and fdatasync can cost tens of microseconds of CPU, which a node
// pays once per Raft log save (per group commit, not per record).
type diskResult struct {
	Dir               string  `json:"dir"`
	Size              int     `json:"size"`
	Writers           int     `json:"writers"`
	Syncs             int     `json:"syncs"`
	AppendP50Ms       float64 `json:"append_p50_ms"`
	AppendP99Ms       float64 `json:"append_p99_ms"`
	AppendPerSec      float64 `json:"append_per_sec"`
	AppendMBPerSec    float64 `json:"append_mb_per_sec"`
	AppendCPUUs       float64 `json:"append_cpu_us_per_sync"`
	OverwriteP50Ms    float64 `json:"overwrite_p50_ms"`
	OverwriteP99Ms    float64 `json:"overwrite_p99_ms"`
	OverwritePerSec   float64 `json:"overwrite_per_sec"`
	OverwriteMBPerSec float64 `json:"overwrite_mb_per_sec"`
	OverwriteCPUUs    float64 `json:"overwrite_cpu_us_per_sync"`
}

func newBenchDisk() *cobra.Command {
	var dir string
	var size, count, writers int
	var out benchOut
	cmd := &cobra.Command{
		Use:   "disk",
		Short: "Time a write and fdatasync of --size bytes in --dir, appending and overwriting, from --writers at once (the floor of a durable write; no node needed)",
		RunE: func(cmd *cobra.Command, args []string) error {
			res, err := benchDisk(dir, size, count, writers)
			if err != nil {
				return err
			}
			return out.print(res, func() {
				fmt.Printf("disk at %s, %d-byte writes each followed by fdatasync (%d of each, %d writer(s) at once):\n"+
					"  appending:   p50 %.3f ms, p99 %.3f ms, %.0f syncs/s, %.1f MB/s, %.0f us of CPU a sync\n"+
					"  overwriting: p50 %.3f ms, p99 %.3f ms, %.0f syncs/s, %.1f MB/s, %.0f us of CPU a sync\n",
					res.Dir, res.Size, res.Syncs, res.Writers,
					res.AppendP50Ms, res.AppendP99Ms, res.AppendPerSec, res.AppendMBPerSec, res.AppendCPUUs,
					res.OverwriteP50Ms, res.OverwriteP99Ms, res.OverwritePerSec, res.OverwriteMBPerSec, res.OverwriteCPUUs)
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&dir, "dir", ".", "directory on the disk to measure (the node's data directory); scratch files are made and removed there")
	f.IntVar(&size, "size", 4096, "bytes per write")
	f.IntVar(&count, "count", 1000, "writes of each kind, in all")
	f.IntVar(&writers, "writers", 1, "files written at once, each by its own writer (nodes sharing the disk: 3)")
	out.flags(cmd)
	return cmd
}

// benchDisk has writers each append their share of count blocks of size
// bytes to a new file in dir, each synced, all at once; then overwrite
// them in place, each synced; and removes the files.
func benchDisk(dir string, size, count, writers int) (*diskResult, error) {
	if size < 1 || size > 16<<20 || count < 1 || count > 1_000_000 || writers < 1 || writers > 64 || writers > count {
		return nil, fmt.Errorf("--size 1 to 16 MiB, --count 1 to 1,000,000 and --writers 1 to 64, at most --count")
	}
	files := make([]*os.File, writers)
	defer func() {
		for _, f := range files {
			if f != nil {
				f.Close()
				os.Remove(f.Name())
			}
		}
	}()
	for i := range files {
		f, err := os.CreateTemp(dir, ".eddy-bench-disk-*")
		if err != nil {
			return nil, err
		}
		files[i] = f
	}
	abs, _ := filepath.Abs(dir)
	res := &diskResult{Dir: abs, Size: size, Writers: writers, Syncs: count}
	// Random bytes: a disk or a host under it that compresses or
	// deduplicates would make a repeated pattern cheap to write.
	block := make([]byte, size)
	rand.Read(block)
	// pass writes every file's share at once and times each write.
	pass := func(p50, p99, perSec, mbPerSec, cpuUs *float64) error {
		l := latencies{d: make([]time.Duration, 0, count)}
		errs := make([]error, writers)
		var wg sync.WaitGroup
		cpu0 := processCPU()
		start := time.Now()
		for w, f := range files {
			n := count / writers
			if w < count%writers {
				n++
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range n {
					t := time.Now()
					if _, err := f.WriteAt(block, int64(i)*int64(size)); err != nil {
						errs[w] = err
						return
					}
					if err := datasync(f); err != nil {
						errs[w] = err
						return
					}
					l.add(time.Since(t))
				}
			}()
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return err
		}
		secs := time.Since(start).Seconds()
		*cpuUs = float64((processCPU() - cpu0).Microseconds()) / float64(count)
		*perSec = float64(count) / secs
		*mbPerSec = float64(count) * float64(size) / secs / 1e6
		l.sort()
		*p50, *p99 = l.pct(0.5), l.pct(0.99)
		return nil
	}
	if err := pass(&res.AppendP50Ms, &res.AppendP99Ms, &res.AppendPerSec, &res.AppendMBPerSec, &res.AppendCPUUs); err != nil {
		return nil, err
	}
	if err := pass(&res.OverwriteP50Ms, &res.OverwriteP99Ms, &res.OverwritePerSec, &res.OverwriteMBPerSec, &res.OverwriteCPUUs); err != nil {
		return nil, err
	}
	return res, nil
}

// processCPU is the CPU this process used so far, user and system.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
