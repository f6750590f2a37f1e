package node

import (
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// pageOutBinary tells the kernel that the pages of the node's own
// executable mapped now may go (MADV_PAGEOUT, Linux 5.4+): they are clean
// copies of the file, most of them touched only to start (package
// initialisation, configuration, recovery), and the kernel would take
// them back only under memory pressure, so a quiet node's RSS would carry
// them for good. What the node runs afterwards is mapped again on its
// first use, from the page cache or the file. It returns the bytes of the
// mappings advised.
func pageOutBinary() int64 {
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return 0
	}
	// A binary written moments ago (copied onto the box, just built) is
	// still dirty in the page cache, and the kernel pages out only clean
	// pages: write it back first (a no-op for one long installed).
	if f, err := os.Open(exe); err == nil {
		f.Sync()
		f.Close()
	}
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return 0
	}
	var advised int64
	for _, line := range strings.Split(string(maps), "\n") {
		start, end, ok := exeMapping(line, exe)
		if !ok {
			continue
		}
		if _, _, errno := unix.Syscall(unix.SYS_MADVISE, uintptr(start), uintptr(end-start), unix.MADV_PAGEOUT); errno == 0 {
			advised += int64(end - start)
		}
	}
	return advised
}

// exeMapping parses a line of /proc/PID/maps (or a mapping's first line in
// smaps): ok when it is a read-only mapping of the file exe (a writable
// one, the data, is the process's own), with its address range.
func exeMapping(line, exe string) (start, end uint64, ok bool) {
	// start-end perms offset dev inode path
	f := strings.Fields(line)
	if len(f) < 6 || f[5] != exe || len(f[1]) < 2 || f[1][1] == 'w' {
		return 0, 0, false
	}
	lo, hi, ok := strings.Cut(f[0], "-")
	if !ok {
		return 0, 0, false
	}
	start, err1 := strconv.ParseUint(lo, 16, 64)
	end, err2 := strconv.ParseUint(hi, 16, 64)
	return start, end, err1 == nil && err2 == nil && end > start
}
