package raftlog

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lni/dragonboat/v4/raftio"
	pb "github.com/lni/dragonboat/v4/raftpb"
)

// model is what a replica's log must read back as.
type model struct {
	bs      *pb.Bootstrap
	state   pb.State
	snap    pb.Snapshot
	entries map[uint64]pb.Entry // live ones: index > removed
	removed uint64
	last    uint64
	synced  int // the step of its last sync, or of its making
}

// liveBytes is what the replica's live entries hold: Eddy syncs a
// partition (and compacts its log) every sync_bytes, half a file.
func (m *model) liveBytes() int {
	n := 0
	for _, e := range m.entries {
		n += len(e.Cmd)
	}
	return n
}

func entry(index, term uint64, size int) pb.Entry {
	cmd := make([]byte, size)
	for i := range cmd {
		cmd[i] = byte(index + uint64(i))
	}
	return pb.Entry{Index: index, Term: term, Cmd: cmd}
}

func openT(t *testing.T, dir string, size int64) *Store {
	t.Helper()
	s, err := Open(Options{Dir: dir, FileSize: size})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestModel drives the store with random saves, compactions, snapshots
// and node removals across many small files, reopening it now and then
// as after a clean stop and as after a crash, and checks that every
// replica reads back as the model says and that the files stay few.
func TestModel(t *testing.T) {
	dir := t.TempDir()
	const fileSize = 16 << 10
	// The owner syncs a replica the store says pins its oldest file at
	// the replica's next step, as the host does at its sync loop's next
	// round; the store carries it if it has not by the next roll.
	var amu sync.Mutex
	asked := map[uint64]bool{}
	open := func() *Store {
		s, err := Open(Options{Dir: dir, FileSize: fileSize, Pinning: func(shard, _ uint64) bool {
			amu.Lock()
			defer amu.Unlock()
			asked[shard] = true
			return true
		}})
		if err != nil {
			t.Fatal(err)
		}
		s.grace = 0
		return s
	}
	s := open()
	defer func() { s.Close() }()
	seed := time.Now().UnixNano()
	if v, err := strconv.ParseInt(os.Getenv("SEED"), 10, 64); err == nil {
		seed = v
	}
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewSource(seed))
	models := map[nodeKey]*model{}
	const shards = 12
	var peak int64
	for step := 0; step < 6000; step++ {
		k := nodeKey{uint64(1 + rng.Intn(shards)), 1}
		amu.Lock()
		for shard := range asked { // the owner's sync comes first
			if models[nodeKey{shard, 1}] != nil && shard < k.shard {
				k.shard = shard
			}
		}
		amu.Unlock()
		m := models[k]
		if m == nil {
			m = &model{entries: map[uint64]pb.Entry{}, synced: step}
			bs := pb.Bootstrap{Addresses: map[uint64]string{1: "a"}, Type: pb.OnDiskStateMachine}
			if err := s.SaveBootstrapInfo(k.shard, k.replica, bs); err != nil {
				t.Fatal(err)
			}
			m.bs = &bs
			models[k] = m
		}
		busy := k.shard <= 3 // the others stay mostly idle and pin old files
		// Eddy syncs a partition once it holds sync_bytes or its oldest
		// entry is sync_interval old (here, steps), whatever else arrives
		// meanwhile, and at random times besides (an idle partition, the
		// log's asking).
		amu.Lock()
		due := m.liveBytes() > fileSize/4 || (len(m.entries) > 0 && step-m.synced > 100) || asked[k.shard]
		amu.Unlock()
		switch r := rng.Intn(100); {
		case r < 60 && (busy || r < 6) && !due:
			u := pb.Update{ShardID: k.shard, ReplicaID: k.replica}
			from := m.last + 1
			if m.last > m.removed+2 && rng.Intn(10) == 0 {
				from = m.last - uint64(rng.Intn(2)) // overwrite a suffix
			}
			term := m.state.Term
			if rng.Intn(20) == 0 {
				term++
			}
			for i := 0; i < 1+rng.Intn(4); i++ {
				e := entry(from+uint64(i), term, rng.Intn(900))
				u.EntriesToSave = append(u.EntriesToSave, e)
			}
			for i := from; i <= m.last; i++ {
				delete(m.entries, i)
			}
			for _, e := range u.EntriesToSave {
				m.entries[e.Index] = e
				m.last = e.Index
			}
			u.State = pb.State{Term: term, Vote: 1, Commit: m.last}
			m.state = u.State
			if err := s.SaveRaftState([]pb.Update{u}, 1); err != nil {
				t.Fatal(err)
			}
		case (r < 70 || due) && m.last > m.removed:
			// A sync: Eddy compacts to a couple of entries behind the
			// last.
			to := max(m.removed+1, m.last-min(m.last, uint64(rng.Intn(3))))
			ss := pb.Snapshot{ShardID: k.shard, Index: to, Term: m.state.Term, Type: pb.OnDiskStateMachine}
			if err := s.SaveSnapshots([]pb.Update{{ShardID: k.shard, ReplicaID: k.replica, Snapshot: ss}}); err != nil {
				t.Fatal(err)
			}
			m.snap = ss
			if err := s.RemoveEntriesTo(k.shard, k.replica, to); err != nil {
				t.Fatal(err)
			}
			for i := m.removed; i <= to; i++ {
				delete(m.entries, i)
			}
			m.removed, m.synced = to, step
			amu.Lock()
			delete(asked, k.shard)
			amu.Unlock()
		case r < 72:
			// A snapshot from the leader: the log restarts after it.
			ss := pb.Snapshot{ShardID: k.shard, Index: m.last + 5, Term: m.state.Term + 1, Type: pb.OnDiskStateMachine}
			st := pb.State{Term: ss.Term, Commit: ss.Index}
			if err := s.SaveRaftState([]pb.Update{{ShardID: k.shard, ReplicaID: k.replica, Snapshot: ss, State: st}}, 2); err != nil {
				t.Fatal(err)
			}
			m.snap, m.state, m.entries, m.removed, m.last, m.synced = ss, st, map[uint64]pb.Entry{}, ss.Index, ss.Index, step
		case r < 73:
			if err := s.RemoveNodeData(k.shard, k.replica); err != nil {
				t.Fatal(err)
			}
			delete(models, k)
		case r < 75:
			if rng.Intn(2) == 0 {
				s.Close()
			} else { // as after a crash: the old store is dropped unclosed
				s.halt()
			}
			s = open()
		}
		var live int64
		s.mu.RLock() // the carrier changes it
		for _, n := range s.nodes {
			live += n.entryBytes + 256
		}
		s.mu.RUnlock()
		peak = max(peak, live)
		if step%500 == 499 {
			waitCarrier(t, s)
			check(t, s, models)
			seqs, free, err := listFiles(dir)
			if err != nil {
				t.Fatal(err)
			}
			// The log spans about twice what was live when it last
			// rolled, or minSpan files; a busy replica with many entries
			// may keep a few more until it is compacted.
			if limit := 2*peak/fileSize + minSpan + 4; int64(len(seqs)) > limit || int64(len(free)) > limit {
				for k, n := range s.nodes {
					t.Logf("shard %d: min %d meta %d entries %d bytes %d from %d", k.shard, n.minSeq(), n.metaSeq(), len(n.locs), n.entryBytes, n.first)
				}
				t.Logf("files %v cur %d", seqs, s.tail.Load().seq)
				t.Fatalf("step %d: %d log files and %d free ones for %d bytes live at most", step, len(seqs), len(free), peak)
			}
			peak = live
		}
	}
	s.Close()
	s = open()
	check(t, s, models)
}

// waitCarrier waits until the carrier has carried what was queued.
func waitCarrier(t *testing.T, s *Store) {
	t.Helper()
	for range 500 {
		s.cmu.Lock()
		n := len(s.carrying)
		s.cmu.Unlock()
		if n == 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("the carrier still busy after 5 s")
}

func check(t *testing.T, s *Store, models map[nodeKey]*model) {
	t.Helper()
	infos, err := s.ListNodeInfo()
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) != len(models) {
		t.Fatalf("ListNodeInfo lists %d replicas, want %d", len(infos), len(models))
	}
	for k, m := range models {
		if _, err := s.GetBootstrapInfo(k.shard, k.replica); err != nil {
			t.Fatalf("shard %d: bootstrap: %v", k.shard, err)
		}
		ss, err := s.GetSnapshot(k.shard, k.replica)
		if err != nil || ss.Index != m.snap.Index || ss.Term != m.snap.Term {
			t.Fatalf("shard %d: snapshot %d/%d (%v), want %d/%d", k.shard, ss.Index, ss.Term, err, m.snap.Index, m.snap.Term)
		}
		rs, err := s.ReadRaftState(k.shard, k.replica, m.snap.Index)
		if errors.Is(err, raftio.ErrNoSavedLog) && pb.IsEmptyState(m.state) {
			continue
		}
		if err != nil {
			t.Fatalf("shard %d: %v", k.shard, err)
		}
		if rs.State != m.state {
			t.Fatalf("shard %d: state %+v, want %+v", k.shard, rs.State, m.state)
		}
		want := uint64(0)
		if m.last > m.snap.Index {
			want = m.last - m.snap.Index
		}
		if rs.EntryCount != want || (want > 0 && rs.FirstIndex != m.snap.Index+1) {
			t.Fatalf("shard %d: entries from %d, %d of them; want from %d, %d", k.shard, rs.FirstIndex, rs.EntryCount, m.snap.Index+1, want)
		}
		if want == 0 {
			continue
		}
		ents, _, err := s.IterateEntries(nil, 0, k.shard, k.replica, rs.FirstIndex, m.last+1, 1<<40)
		if err != nil {
			t.Fatalf("shard %d: %v", k.shard, err)
		}
		if uint64(len(ents)) != want {
			t.Fatalf("shard %d: read %d entries, want %d", k.shard, len(ents), want)
		}
		for _, e := range ents {
			w := m.entries[e.Index]
			if e.Term != w.Term || string(e.Cmd) != string(w.Cmd) {
				t.Fatalf("shard %d: entry %d reads term %d, %d bytes; want term %d, %d bytes", k.shard, e.Index, e.Term, len(e.Cmd), w.Term, len(w.Cmd))
			}
		}
	}
}

// TestTornTail: whatever follows the last sync may be lost or torn by a
// crash; what was synced reads back, and writing goes on.
func TestTornTail(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir, 1<<20)
	u := pb.Update{ShardID: 5, ReplicaID: 1, State: pb.State{Term: 1, Vote: 1, Commit: 2}}
	u.EntriesToSave = []pb.Entry{entry(1, 1, 100), entry(2, 1, 100)}
	if err := s.SaveBootstrapInfo(5, 1, pb.Bootstrap{Type: pb.OnDiskStateMachine}); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveRaftState([]pb.Update{u}, 1); err != nil {
		t.Fatal(err)
	}
	end := s.tail.Load()
	// A third entry, written but never synced, torn in its middle.
	b := s.getBatch()
	e3 := entry(3, 1, 100)
	b.entry(5, 1, &e3)
	b.seal(end.seq)
	half := b.buf[:len(b.buf)/2]
	if _, err := end.f.WriteAt(half, end.off); err != nil {
		t.Fatal(err)
	}
	s2 := openT(t, dir, 1<<20)
	defer s2.Close()
	rs, err := s2.ReadRaftState(5, 1, 0)
	if err != nil || rs.EntryCount != 2 || rs.FirstIndex != 1 || rs.State.Commit != 2 {
		t.Fatalf("after the crash: %+v, %v; want entries 1-2, commit 2", rs, err)
	}
	u2 := pb.Update{ShardID: 5, ReplicaID: 1, EntriesToSave: []pb.Entry{entry(3, 1, 10)}, State: pb.State{Term: 1, Vote: 1, Commit: 3}}
	if err := s2.SaveRaftState([]pb.Update{u2}, 1); err != nil {
		t.Fatal(err)
	}
	ents, _, err := s2.IterateEntries(nil, 0, 5, 1, 1, 4, 1<<20)
	if err != nil || len(ents) != 3 || len(ents[2].Cmd) != 10 {
		t.Fatalf("read %d entries (%v), want 3 with the new third", len(ents), err)
	}
}

// TestIdleReplicasDoNotPinFiles: many idle replicas with a few entries
// each, and one busy one writing many files' worth: the log keeps a few
// files, not every file since the idle ones last wrote.
func TestIdleReplicasDoNotPinFiles(t *testing.T) {
	dir := t.TempDir()
	const fileSize = 64 << 10
	s := openT(t, dir, fileSize)
	defer s.Close()
	for shard := uint64(2); shard < 66; shard++ {
		u := pb.Update{ShardID: shard, ReplicaID: 1, State: pb.State{Term: 1, Vote: 1, Commit: 1}, EntriesToSave: []pb.Entry{entry(1, 1, 8)}}
		if err := s.SaveBootstrapInfo(shard, 1, pb.Bootstrap{Type: pb.OnDiskStateMachine}); err != nil {
			t.Fatal(err)
		}
		if err := s.SaveRaftState([]pb.Update{u}, 1); err != nil {
			t.Fatal(err)
		}
	}
	for i := uint64(1); i <= 2000; i++ {
		u := pb.Update{ShardID: 1, ReplicaID: 1, State: pb.State{Term: 1, Vote: 1, Commit: i}, EntriesToSave: []pb.Entry{entry(i, 1, 1000)}}
		if err := s.SaveRaftState([]pb.Update{u}, 1); err != nil {
			t.Fatal(err)
		}
		if i%50 == 0 {
			if err := s.RemoveEntriesTo(1, 1, i-2); err != nil {
				t.Fatal(err)
			}
		}
	}
	seqs, free, err := listFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(seqs) > 4 || len(free) > 2 {
		t.Fatalf("%d log files and %d free after 2 MB through 64 KiB files: %v", len(seqs), len(free), seqs)
	}
	var used int64
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		fi, _ := os.Stat(filepath.Join(dir, e.Name()))
		used += fi.Size()
	}
	t.Logf("%d files, %d bytes", len(ents), used)
	s.Close()
	s = openT(t, dir, fileSize)
	for shard := uint64(2); shard < 66; shard++ {
		rs, err := s.ReadRaftState(shard, 1, 0)
		if err != nil || rs.EntryCount != 1 {
			t.Fatalf("idle shard %d: %+v, %v", shard, rs, err)
		}
	}
}

func BenchmarkSaveOne(b *testing.B) {
	for _, size := range []int{1 << 10, 64 << 10} {
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			s, err := Open(Options{Dir: b.TempDir()})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			b.SetBytes(int64(size))
			for i := 0; i < b.N; i++ {
				idx := uint64(i + 1)
				u := pb.Update{ShardID: 1, ReplicaID: 1, State: pb.State{Term: 1, Vote: 1, Commit: idx}, EntriesToSave: []pb.Entry{entry(idx, 1, size)}}
				if err := s.SaveRaftState([]pb.Update{u}, 1); err != nil {
					b.Fatal(err)
				}
				if i%64 == 63 {
					s.RemoveEntriesTo(1, 1, idx-1)
				}
			}
		})
	}
}

// TestWritesOnce: the disk writes what the log writes, about once. Linux
// caches a file in folios as large as the writes that filled it; without
// dropping the pages of a file filled with zeros in 1 MiB writes, each
// 200 KiB record synced dirtied a whole folio, and the disk wrote 6 times
// what the log did.
func TestWritesOnce(t *testing.T) {
	s := openT(t, t.TempDir(), 8<<20)
	defer s.Close()
	before := writeBytes(t)
	var logged int64
	for i := uint64(1); i <= 600; i++ {
		u := pb.Update{ShardID: 1, ReplicaID: 1, State: pb.State{Term: 1, Vote: 1, Commit: i}, EntriesToSave: []pb.Entry{entry(i, 1, 200<<10)}}
		end := s.tail.Load()
		if err := s.SaveRaftState([]pb.Update{u}, 1); err != nil {
			t.Fatal(err)
		}
		if after := s.tail.Load(); after.seq == end.seq {
			logged += after.off - end.off
		} else {
			logged += after.off
		}
		if i%20 == 0 {
			s.RemoveEntriesTo(1, 1, i-2)
		}
	}
	wrote := writeBytes(t) - before
	t.Logf("the log wrote %d MB, the disk %d MB", logged>>20, wrote>>20)
	if wrote > logged*13/10 {
		t.Fatalf("the disk wrote %d MB for %d MB of records", wrote>>20, logged>>20)
	}
}

// writeBytes is what this process made the disk write (/proc/self/io).
func writeBytes(t *testing.T) int64 { return procIO(t, "write_bytes: ") }

// procIO is a counter of /proc/self/io.
func procIO(t *testing.T, name string) int64 {
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, name); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("no %s in /proc/self/io", name)
	return 0
}

// TestSpareFilesWhileBusy: a busy replica's log grows by what arrives
// while its sync runs and shrinks at once after; the files it leaves are
// kept for the next growth instead of made again (zeros, then records:
// twice the writes), and Trim gives them back.
func TestSpareFilesWhileBusy(t *testing.T) {
	dir := t.TempDir()
	const fileSize = 1 << 20
	s := openT(t, dir, fileSize)
	defer s.Close()
	save := func(i uint64) {
		u := pb.Update{ShardID: 1, ReplicaID: 1, State: pb.State{Term: 1, Vote: 1, Commit: i}, EntriesToSave: []pb.Entry{entry(i, 1, 100<<10)}}
		if err := s.SaveRaftState([]pb.Update{u}, 1); err != nil {
			t.Fatal(err)
		}
	}
	// Syncs every 6 MiB: the log spans about 7 files, then 1.
	i := uint64(0)
	cycle := func() {
		for range 60 {
			i++
			save(i)
		}
		if err := s.RemoveEntriesTo(1, 1, i-1); err != nil {
			t.Fatal(err)
		}
	}
	cycle()
	cycle()
	before := writeBytes(t)
	var logged int64
	for range 10 {
		end := s.tail.Load()
		cycle()
		if after := s.tail.Load(); after.seq == end.seq {
			logged += after.off - end.off
		} else { // what this cycle wrote in the last file, and 6 MiB before it
			logged += after.off + int64(after.seq-end.seq-1)*fileSize + fileSize - end.off
		}
	}
	wrote := writeBytes(t) - before
	t.Logf("the log wrote %d MB, the disk %d MB", logged>>20, wrote>>20)
	if wrote > logged*13/10 {
		t.Fatalf("the disk wrote %d MB for %d MB of records: the log made its files again", wrote>>20, logged>>20)
	}
	for range 12 { // a roll: the files the cycle left are retired
		i++
		save(i)
	}
	if n := s.Trim(time.Hour); n != 0 {
		t.Fatalf("Trim gave back %d bytes of a log that rolled just now", n)
	}
	seqs, free, _ := listFiles(dir)
	spare := len(free)
	if inUse, kept := s.Files(); inUse != int64(len(seqs))*fileSize || kept != int64(spare)*fileSize {
		t.Fatalf("Files() = %d, %d with %d files in use and %d free", inUse, kept, len(seqs), spare)
	}
	if n := s.Trim(0); n != int64(spare-2)*fileSize || spare <= 2 {
		t.Fatalf("Trim(0) gave back %d bytes with %d files free and %d in use", n, spare, len(seqs))
	}
	if _, free, _ = listFiles(dir); len(free) != 2 {
		t.Fatalf("%d free files after Trim, want FreeFiles (2)", len(free))
	}
	if _, kept := s.Files(); kept != 2*fileSize {
		t.Fatalf("Files() reports %d bytes free after Trim, want 2 files", kept)
	}
	cycle() // and it reads on
	if rs, err := s.ReadRaftState(1, 1, 0); err != nil || rs.FirstIndex+rs.EntryCount-1 != i {
		t.Fatalf("after Trim: %+v, %v", rs, err)
	}
}

// TestWritesReadNothing: small saves, each synced, into files whose pages
// are not cached make the disk read nothing but a few blocks of metadata
// (writePages writes whole pages; a part of a page not cached is read
// from the disk first: 1,592 KB read without it, 4 KB with it).
func TestWritesReadNothing(t *testing.T) {
	s := openT(t, t.TempDir(), 1<<20)
	defer s.Close()
	before := readBytes(t)
	for i := uint64(1); i <= 1500; i++ {
		u := pb.Update{ShardID: 1, ReplicaID: 1, State: pb.State{Term: 1, Vote: 1, Commit: i}, EntriesToSave: []pb.Entry{entry(i, 1, 1000)}}
		if err := s.SaveRaftState([]pb.Update{u}, 1); err != nil {
			t.Fatal(err)
		}
		if i%10 == 0 {
			s.RemoveEntriesTo(1, 1, i-2)
		}
	}
	if read := readBytes(t) - before; read > 64<<10 {
		t.Fatalf("1,500 saves of 1 KB read %d KB from the disk", read>>10)
	}
}

// readBytes is what this process made the disk read (/proc/self/io).
func readBytes(t *testing.T) int64 { return procIO(t, "read_bytes: ") }

// TestTrimWhileWriting: the node trims from its disk check while the
// step workers write (run with -race).
func TestTrimWhileWriting(t *testing.T) {
	s := openT(t, t.TempDir(), 256<<10)
	defer s.Close()
	stop := make(chan struct{})
	trimmed := make(chan struct{})
	go func() {
		defer close(trimmed)
		for {
			select {
			case <-stop:
				return
			default:
				s.Trim(0)
				time.Sleep(100 * time.Microsecond)
			}
		}
	}()
	for i := uint64(1); i <= 600; i++ {
		u := pb.Update{ShardID: 1, ReplicaID: 1, State: pb.State{Term: 1, Vote: 1, Commit: i}, EntriesToSave: []pb.Entry{entry(i, 1, 20<<10)}}
		if err := s.SaveRaftState([]pb.Update{u}, 1); err != nil {
			t.Fatal(err)
		}
		if i%40 == 0 {
			s.RemoveEntriesTo(1, 1, i-1)
		}
	}
	close(stop)
	<-trimmed
	rs, err := s.ReadRaftState(1, 1, 0)
	if err != nil || rs.FirstIndex+rs.EntryCount-1 != 600 {
		t.Fatalf("after writing beside Trim: %+v, %v", rs, err)
	}
}

// TestNextFileMadeAhead: a roll that leaves no free file has the next one
// made beside the writes, so the roll after it takes a free file instead
// of writing a file of zeros under the writer lock.
func TestNextFileMadeAhead(t *testing.T) {
	const fileSize = 1 << 20
	dir := t.TempDir()
	s := openT(t, dir, fileSize)
	var i uint64
	save := func() {
		i++
		u := pb.Update{ShardID: 1, ReplicaID: 1, State: pb.State{Term: 1, Vote: 1, Commit: i}, EntriesToSave: []pb.Entry{entry(i, 1, 200<<10)}}
		if err := s.SaveRaftState([]pb.Update{u}, 1); err != nil {
			t.Fatal(err)
		}
	}
	for roll := range 6 { // the log grows: nothing is compacted, no file comes free
		seq := s.tail.Load().seq
		for s.tail.Load().seq == seq {
			save()
		}
		deadline := time.Now().Add(10 * time.Second)
		for s.prepared.Load() < int64(roll+1) {
			if time.Now().After(deadline) {
				t.Fatalf("roll %d: %d files made ahead, want %d", roll, s.prepared.Load(), roll+1)
			}
			time.Sleep(time.Millisecond)
		}
		s.wmu.Lock()
		free := len(s.free)
		s.wmu.Unlock()
		if free != 1 {
			t.Fatalf("roll %d: %d free files, want the one made ahead", roll, free)
		}
	}
	if _, free, _ := listFiles(dir); len(free) != 1 {
		t.Fatalf("%d free files on disk, want 1", len(free))
	}
	s.Close()
	s = openT(t, dir, fileSize) // the start's new file is the one made ahead
	defer s.Close()
	if _, free, _ := listFiles(dir); len(free) != 0 || s.prepared.Load() != 0 {
		t.Fatalf("%d free files after a restart (%d made ahead), want 0: an idle log makes none", len(free), s.prepared.Load())
	}
}

// TestRollAllocatesWhenNoneFree: a roll that finds no free file (the
// preparer behind a growing log) allocates the next one instead of
// writing its zeros under the writer lock, and what is written into such
// files reads back after a restart, as from files of written zeros.
func TestRollAllocatesWhenNoneFree(t *testing.T) {
	const fileSize = 1 << 20
	dir := t.TempDir()
	s := openT(t, dir, fileSize)
	var i uint64
	for roll := range 4 {
		for s.prepared.Load() < int64(roll) { // the file the last roll asked for
			time.Sleep(time.Millisecond)
		}
		s.wmu.Lock() // what the preparer made is gone: the next roll finds none
		for _, fr := range s.free {
			fr.f.Close()
			os.Remove(fr.name)
		}
		s.free = nil
		s.wmu.Unlock()
		seq := s.tail.Load().seq
		for s.tail.Load().seq == seq {
			i++
			u := pb.Update{ShardID: 1, ReplicaID: 1, State: pb.State{Term: 1, Vote: 1, Commit: i}, EntriesToSave: []pb.Entry{entry(i, 1, 100<<10)}}
			if err := s.SaveRaftState([]pb.Update{u}, 1); err != nil {
				t.Fatal(err)
			}
		}
	}
	if n := s.allocated.Load(); n != 4 {
		t.Fatalf("%d files allocated by a roll, want 4", n)
	}
	s.Close()
	s = openT(t, dir, fileSize)
	defer s.Close()
	ents, _, err := s.IterateEntries(nil, 0, 1, 1, 1, i+1, math.MaxUint64)
	if err != nil || uint64(len(ents)) != i {
		t.Fatalf("read back %d of %d entries (%v)", len(ents), i, err)
	}
	for j, e := range ents {
		if want := entry(uint64(j+1), 1, 100<<10); e.Index != want.Index || !bytes.Equal(e.Cmd, want.Cmd) {
			t.Fatalf("entry %d reads back as %d, %d bytes", j+1, e.Index, len(e.Cmd))
		}
	}
}

// BenchmarkSaveGrowing: saves of 256 KiB while the log grows (nothing is
// compacted, so every roll needs a new file), paced at 40 MB/s as a busy
// partition's are; reports the slowest save and the 99th percentile,
// which a roll that makes its file under the writer lock sets.
func BenchmarkSaveGrowing(b *testing.B) {
	s, err := Open(Options{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	const size = 256 << 10
	b.SetBytes(size)
	lat := make([]time.Duration, 0, b.N)
	tick := time.NewTicker(size * time.Second / (40 << 20))
	defer tick.Stop()
	for i := 0; i < b.N; i++ {
		<-tick.C
		idx := uint64(i + 1)
		u := pb.Update{ShardID: 1, ReplicaID: 1, State: pb.State{Term: 1, Vote: 1, Commit: idx}, EntriesToSave: []pb.Entry{entry(idx, 1, size)}}
		start := time.Now()
		if err := s.SaveRaftState([]pb.Update{u}, 1); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-us")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds()), "max-us")
}

// TestReadEntryCopiesOnce: reading an entry back allocates its command
// once (Unmarshal's copy), not the record it was read into as well:
// dragonboat reads a whole entry to learn its term at every compaction,
// a Kafka batch of about 1 MiB each time.
func TestReadEntryCopiesOnce(t *testing.T) {
	s := openT(t, t.TempDir(), 8<<20)
	defer s.Close()
	const size = 1 << 20
	u := pb.Update{ShardID: 3, ReplicaID: 1, EntriesToSave: []pb.Entry{entry(1, 1, size)}, State: pb.State{Term: 1, Vote: 1, Commit: 1}}
	if err := s.SaveRaftState([]pb.Update{u}, 1); err != nil {
		t.Fatal(err)
	}
	read := func() {
		ents, _, err := s.IterateEntries(nil, 0, 3, 1, 1, 2, 0)
		if err != nil || len(ents) != 1 || len(ents[0].Cmd) != size {
			t.Fatalf("read %d entries (%v)", len(ents), err)
		}
	}
	// The fewest bytes a read allocated: a pool may drop a buffer (the
	// race detector makes sync.Pool drop some on purpose, a collection
	// empties it), so one read now and then makes a new one.
	least := uint64(1 << 62)
	var before, after runtime.MemStats
	for range 20 {
		runtime.ReadMemStats(&before)
		read()
		runtime.ReadMemStats(&after)
		least = min(least, after.TotalAlloc-before.TotalAlloc)
	}
	if least > size*3/2 {
		t.Fatalf("a read of a 1 MiB entry allocated %d bytes at least, want about 1 MiB (its command's copy)", least)
	}
}

// TestRemovedReplicaGivesBackFiles: a busy replica's entries keep the
// log's oldest files until it syncs; removed (its topic deleted), or
// compacted, it gives them back at once, not at the log's next roll,
// which an idle node may not make for long.
func TestRemovedReplicaGivesBackFiles(t *testing.T) {
	dir := t.TempDir()
	const fileSize = 64 << 10
	s := openT(t, dir, fileSize)
	defer s.Close()
	for i := uint64(1); i <= 40; i++ { // about 5 files, none compacted
		save(t, s, 1, i, i, 8<<10)
		save(t, s, 2, i, i, 8<<10)
	}
	count := func() int {
		seqs, _, err := listFiles(dir)
		if err != nil {
			t.Fatal(err)
		}
		return len(seqs)
	}
	before := count()
	if err := s.RemoveNodeData(1, 1); err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveEntriesTo(2, 1, 39); err != nil {
		t.Fatal(err)
	}
	if after := count(); before < 5 || after > 2 {
		t.Fatalf("%d log files before, %d after the replicas gave them up; want 2 (the one rolled from and the one written)", before, after)
	}
	readsBack(t, s, 2, 40, 40, 8<<10)
	s.Close()
	s = openT(t, dir, fileSize)
	readsBack(t, s, 2, 40, 40, 8<<10)
}
