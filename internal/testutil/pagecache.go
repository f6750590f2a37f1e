package testutil

import (
	"os"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// DiskDir is a new directory on a disk's file system (t.TempDir may be
// tmpfs, whose files are their page cache; /var/tmp is on a disk),
// removed after the test: for tests of what the page cache holds.
func DiskDir(tb testing.TB) string {
	tb.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs("/var/tmp", &st); err != nil || st.Type == unix.TMPFS_MAGIC {
		tb.Fatalf("/var/tmp: %v, file system %#x: this test needs a disk's file system there", err, st.Type)
	}
	dir, err := os.MkdirTemp("/var/tmp", "eddy-test-")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// ResidentPages counts the pages holding any of [from, to) of f, a file
// of size bytes, that are in the page cache (mincore over a mapping of
// it), and all of them.
func ResidentPages(tb testing.TB, f *os.File, size, from, to int64) (in, all int) {
	tb.Helper()
	if size == 0 {
		tb.Fatal("nothing written to the file")
	}
	m, err := unix.Mmap(int(f.Fd()), 0, int(size), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		tb.Fatal(err)
	}
	defer unix.Munmap(m)
	page := int64(os.Getpagesize())
	vec := make([]byte, (size+page-1)/page)
	if _, _, e := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&vec[0]))); e != 0 {
		tb.Fatal(e)
	}
	for p := from / page; p < min((to+page-1)/page, int64(len(vec))); p++ {
		all++
		in += int(vec[p] & 1)
	}
	return in, all
}
