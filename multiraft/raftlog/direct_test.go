package raftlog

import (
	"bytes"
	"os"
	"testing"
	"unsafe"

	pb "github.com/lni/dragonboat/v4/raftpb"

	"github.com/eddy-broker/eddy/internal/testutil"
)

// saveAndReopen saves n entries of size bytes to shard 1 of a store in
// dir (made ready by setup, if not nil), counts the tail file's pages in
// the page cache, reopens the store and checks every entry reads back.
// The store returned is the reopened one, its dio.off the first one's.
func saveAndReopen(t *testing.T, dir string, n, size int, setup func(*Store)) (s *Store, cached int) {
	t.Helper()
	s = openT(t, dir, 8<<20)
	if setup != nil {
		setup(s)
	}
	for i := uint64(1); i <= uint64(n); i++ {
		u := pb.Update{ShardID: 1, ReplicaID: 1, State: pb.State{Term: 1, Vote: 1, Commit: i}, EntriesToSave: []pb.Entry{entry(i, 1, size)}}
		if err := s.SaveRaftState([]pb.Update{u}, 1); err != nil {
			t.Fatal(err)
		}
	}
	tl := s.tail.Load()
	cached, _ = testutil.ResidentPages(t, tl.f, tl.off, 0, tl.off)
	direct := !s.dio.off
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openT(t, dir, 8<<20)
	ents, _, err := s.IterateEntries(nil, 0, 1, 1, 1, uint64(n)+1, 1<<40)
	if err != nil || len(ents) != n {
		t.Fatalf("read back %d of %d entries: %v", len(ents), n, err)
	}
	for _, e := range ents {
		if want := entry(e.Index, 1, size); !bytes.Equal(e.Cmd, want.Cmd) {
			t.Fatalf("entry %d reads back wrong", e.Index)
		}
	}
	s.dio.off = !direct // what the first store did, for the caller
	return s, cached
}

// TestSavesBypassPageCache: on a disk's file system a save is written
// around the page cache (direct.go), small and Kafka-sized alike (one
// larger than a direct write's buffer too), and reads back the same after
// a reopen; written through the page cache, the same saves stay cached.
func TestSavesBypassPageCache(t *testing.T) {
	for _, c := range []struct{ n, size int }{{300, 1000}, {6, 1 << 20}, {3, 3 << 20}} {
		s, cached := saveAndReopen(t, testutil.DiskDir(t), c.n, c.size, nil)
		s.Close()
		if s.dio.off {
			t.Fatalf("%d saves of %d bytes: written through the page cache on a disk", c.n, c.size)
		}
		if cached > 0 {
			t.Fatalf("%d saves of %d bytes: %d pages of the log in the page cache", c.n, c.size, cached)
		}
		s, cached = saveAndReopen(t, testutil.DiskDir(t), c.n, c.size, func(s *Store) { s.dio.off = true })
		s.Close()
		if cached == 0 {
			t.Fatalf("%d saves of %d bytes through the page cache: none of it cached (the count is wrong)", c.n, c.size)
		}
	}
}

// TestDirectRefusedFallsBack: a direct write the file system refuses
// (EINVAL; here from a buffer off the alignment it asks) is written
// through the page cache instead, then and after, and reads back the same.
func TestDirectRefusedFallsBack(t *testing.T) {
	s, _ := saveAndReopen(t, testutil.DiskDir(t), 20, 300<<10, func(s *Store) {
		s.dio.copyOnly = true
		raw := make([]byte, maxDirectChunk+int(pageSize)+1)
		a := int(-uintptr(unsafe.Pointer(&raw[0])) & uintptr(pageSize-1))
		s.dio.buf = raw[a+1 : a+1+maxDirectChunk]
	})
	s.Close()
	if !s.dio.off {
		t.Fatal("a misaligned buffer's writes went through as direct I/O")
	}
}

// TestSavesWrittenInPlace: a save encoded after room for the page the
// log ends in is written from its own buffer, without the copy into the
// direct writer's (which stays unmade), whatever the log's end in its
// page (entries of odd sizes move it), and reads back the same; a save
// that finds the log's end moved since it began (another write came
// first) is written from a copy, and reads back the same too.
func TestSavesWrittenInPlace(t *testing.T) {
	for _, size := range []int{100 << 10, 1<<20 + 777} {
		s, _ := saveAndReopen(t, testutil.DiskDir(t), 7, size, nil)
		s.Close()
		if s.dio.off {
			t.Fatalf("saves of %d bytes: written through the page cache on a disk", size)
		}
	}
	dir := testutil.DiskDir(t)
	s := openT(t, dir, 8<<20)
	for i := uint64(1); i <= 5; i++ {
		u := pb.Update{ShardID: 1, ReplicaID: 1, State: pb.State{Term: 1, Vote: 1, Commit: i}, EntriesToSave: []pb.Entry{entry(i, 1, 200<<10+int(i))}}
		if err := s.SaveRaftState([]pb.Update{u}, 1); err != nil {
			t.Fatal(err)
		}
	}
	if s.dio.buf != nil {
		t.Fatalf("saves of 200 KiB were copied into the direct writer's buffer (%d bytes)", len(s.dio.buf))
	}
	// A batch begun before another write: its room is for the old end.
	b := s.getBatch()
	e := entry(6, 1, 300<<10)
	b.entry(1, 1, &e)
	u := pb.Update{ShardID: 2, ReplicaID: 1, State: pb.State{Term: 1, Vote: 1, Commit: 1}, EntriesToSave: []pb.Entry{entry(1, 1, 5000)}}
	if err := s.SaveRaftState([]pb.Update{u}, 2); err != nil {
		t.Fatal(err)
	}
	if b.lead == s.lead() {
		t.Fatal("the other write left the log's end where it was in its page; the test needs it moved")
	}
	b.state(1, 1, pb.State{Term: 1, Vote: 1, Commit: 6})
	if err := s.write(b, true); err != nil {
		t.Fatal(err)
	}
	if s.dio.buf == nil {
		t.Fatal("a batch whose room no longer fit the log's end was not written from a copy")
	}
	s.putBatch(b)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openT(t, dir, 8<<20)
	defer s.Close()
	for shard, n := range map[uint64]uint64{1: 6, 2: 1} {
		ents, _, err := s.IterateEntries(nil, 0, shard, 1, 1, n+1, 1<<40)
		if err != nil || uint64(len(ents)) != n {
			t.Fatalf("shard %d: read back %d of %d entries: %v", shard, len(ents), n, err)
		}
		for _, got := range ents {
			size := 200<<10 + int(got.Index)
			if shard == 1 && got.Index == 6 {
				size = 300 << 10
			} else if shard == 2 {
				size = 5000
			}
			if want := entry(got.Index, 1, size); !bytes.Equal(got.Cmd, want.Cmd) {
				t.Fatalf("shard %d entry %d reads back wrong", shard, got.Index)
			}
		}
	}
}

// TestTmpfsSaves: on tmpfs (the CI's small volumes for full disks), with
// direct I/O or without (Linux 6.6 gave tmpfs a direct I/O that is the
// page cache), saves read back the same.
func TestTmpfsSaves(t *testing.T) {
	dir, err := os.MkdirTemp("/dev/shm", "eddy-raftlog-test-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	s, _ := saveAndReopen(t, dir, 50, 100<<10, nil)
	s.Close()
}
