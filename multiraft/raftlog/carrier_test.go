package raftlog

import (
	"sync/atomic"
	"testing"
	"time"

	pb "github.com/lni/dragonboat/v4/raftpb"
)

// save writes entries [from, to] of size bytes each for a replica.
func save(t *testing.T, s *Store, shard, from, to uint64, size int) {
	t.Helper()
	u := pb.Update{ShardID: shard, ReplicaID: 1, State: pb.State{Term: 1, Vote: 1, Commit: to}}
	for i := from; i <= to; i++ {
		u.EntriesToSave = append(u.EntriesToSave, entry(i, 1, size))
	}
	if err := s.SaveRaftState([]pb.Update{u}, 1); err != nil {
		t.Fatal(err)
	}
}

// readsBack checks that a replica's entries are [from, to], as save wrote
// them.
func readsBack(t *testing.T, s *Store, shard, from, to uint64, size int) {
	t.Helper()
	rs, err := s.ReadRaftState(shard, 1, from-1)
	if err != nil || rs.FirstIndex != from || rs.EntryCount != to-from+1 {
		t.Fatalf("shard %d: %+v, %v; want entries %d-%d", shard, rs, err, from, to)
	}
	ents, _, err := s.IterateEntries(nil, 0, shard, 1, from, to+1, 1<<40)
	if err != nil || uint64(len(ents)) != to-from+1 {
		t.Fatalf("shard %d: read %d entries (%v), want %d", shard, len(ents), err, to-from+1)
	}
	for _, e := range ents {
		if w := entry(e.Index, 1, size); string(e.Cmd) != string(w.Cmd) {
			t.Fatalf("shard %d: entry %d reads %d bytes unlike what was saved", shard, e.Index, len(e.Cmd))
		}
	}
}

// TestCarrierInPieces: an idle replica with many entries pins the oldest
// file while another writes; the carrier moves its entries forward in
// pieces of an eighth of a file, never all in one save, the log stays a
// few files, and the entries read back the same, after a clean stop and
// after a crash.
func TestCarrierInPieces(t *testing.T) {
	dir := t.TempDir()
	const fileSize = 64 << 10
	s := openT(t, dir, fileSize)
	var pieces, largest int
	s.pieceHook = func(n int) { pieces, largest = pieces+1, max(largest, n) }
	for _, shard := range []uint64{1, 2} {
		if err := s.SaveBootstrapInfo(shard, 1, pb.Bootstrap{Type: pb.OnDiskStateMachine}); err != nil {
			t.Fatal(err)
		}
	}
	save(t, s, 1, 1, 60, 2000) // 120 KB: the idle replica, two files
	busy := func(from, to uint64) {
		for i := from; i <= to; i++ {
			save(t, s, 2, i, i, 1000)
			if i%20 == 0 {
				if err := s.RemoveEntriesTo(2, 1, i-2); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	busy(1, 2800)
	waitCarrier(t, s)
	busy(2801, 3000) // three more rolls, which retire what the last carry freed
	s.halt()
	if s.CarriedBytes() < 120_000 || pieces < 120_000/(fileSize/8) {
		t.Fatalf("carried %d bytes in %d pieces; want the idle replica's 120 KB in pieces of at most %d", s.CarriedBytes(), pieces, fileSize/8)
	}
	if largest > fileSize/8+2100 {
		t.Fatalf("a piece of %d bytes; want at most an eighth of a file and an entry", largest)
	}
	seqs, _, err := listFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	// The log spans twice what is live (5 files here), and what was
	// written while a carry ran (the idle replica is carried again each
	// time it is the oldest): 4-9 files in runs here; pinned, 47.
	if len(seqs) > 12 {
		t.Fatalf("%d log files after 3 MB through 64 KiB files with 120 KB live", len(seqs))
	}
	readsBack(t, s, 1, 1, 60, 2000)
	s2 := openT(t, dir, fileSize) // as after a crash: s is dropped unclosed
	readsBack(t, s2, 1, 1, 60, 2000)
	readsBack(t, s2, 2, 2999, 3000, 1000)
	s2.Close()
	s3 := openT(t, dir, fileSize)
	defer s3.Close()
	readsBack(t, s3, 1, 1, 60, 2000)
}

// TestCarryVoided: a change to the replica's entries while a carry runs
// (an append, a compaction, a snapshot from the leader) voids it, and a
// crash halfway leaves its copies staged and unused; the entries read
// back as the changes left them, before and after a reopen.
func TestCarryVoided(t *testing.T) {
	const fileSize = 256 << 10 // pieces of 32 KiB, and no roll: the test runs the carry itself
	for _, c := range []struct {
		name     string
		change   func(t *testing.T, s *Store)
		from, to uint64
	}{
		{"append", func(t *testing.T, s *Store) { save(t, s, 1, 41, 41, 3000) }, 1, 41},
		{"overwrite", func(t *testing.T, s *Store) { save(t, s, 1, 30, 30, 3000) }, 1, 30},
		{"compaction", func(t *testing.T, s *Store) {
			if err := s.RemoveEntriesTo(1, 1, 10); err != nil {
				t.Fatal(err)
			}
		}, 11, 40},
		{"crash", func(t *testing.T, s *Store) { s.halt() }, 1, 40},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			s := openT(t, dir, fileSize)
			if err := s.SaveBootstrapInfo(1, 1, pb.Bootstrap{Type: pb.OnDiskStateMachine}); err != nil {
				t.Fatal(err)
			}
			save(t, s, 1, 1, 40, 3000)
			pieces := 0
			s.pieceHook = func(int) {
				if pieces++; pieces == 2 {
					c.change(t, s)
				}
			}
			s.carryOne(nodeKey{1, 1})
			if pieces != 2 {
				t.Fatalf("%d pieces written; want the carry to stop after the change in the second", pieces)
			}
			check := func(s *Store) {
				ents, _, err := s.IterateEntries(nil, 0, 1, 1, c.from, c.to+1, 1<<40)
				if err != nil || uint64(len(ents)) != c.to-c.from+1 || ents[0].Index != c.from {
					t.Fatalf("read %d entries (%v), want %d-%d", len(ents), err, c.from, c.to)
				}
				for _, e := range ents {
					if w := entry(e.Index, 1, 3000); string(e.Cmd) != string(w.Cmd) {
						t.Fatalf("entry %d reads unlike what was saved", e.Index)
					}
				}
			}
			check(s)
			if c.name != "crash" { // else s is dropped unclosed: the carry's last pieces and its end never written
				s.Close()
			}
			s2 := openT(t, dir, fileSize)
			defer s2.Close()
			check(s2)
		})
	}
}

// TestPinningAsksTheOwner: an idle replica whose entries keep the oldest
// file is first reported to its owner (Options.Pinning), once, and not
// carried while the owner compacts them (as the host does, syncing the
// partition), be they many (for the carrier) or few (carried whole); a
// replica whose owner will not, or does not within the grace, is carried
// as before, and reads back the same; one of a few hundred bytes is
// carried whole without asking.
func TestPinningAsksTheOwner(t *testing.T) {
	const fileSize = 64 << 10 // an eighth: 8 KiB; worth asking: 512 bytes
	for _, c := range []struct {
		name             string
		entries, size    int
		answer, compacts bool // what the owner says, and whether it then compacts the entries
		grace            time.Duration
		asked, carried   bool
	}{
		{"many, owner syncs it", 60, 2000, true, true, time.Hour, true, false},
		{"many, owner will not", 60, 2000, false, false, time.Hour, true, true},
		{"many, owner does not in time", 60, 2000, true, false, 0, true, true},
		{"few, owner syncs it", 6, 1000, true, true, time.Hour, true, false},
		{"few, owner does not in time", 6, 1000, true, false, 0, true, true},
		{"a few hundred bytes", 2, 100, true, true, time.Hour, false, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := openT(t, t.TempDir(), fileSize)
			defer s.Close()
			s.grace = c.grace
			var asked atomic.Int32
			s.opts.Pinning = func(shard, replica uint64) bool {
				if shard == 2 && replica == 1 {
					// The busy replica, when the carrier wrote a file's
					// worth between two of its saves (grace 0: carried at
					// once, beside the loop below), is idle as far as the
					// store can tell (no save in the last file). Its owner
					// here will not sync it: it is carried, as before
					// owners were asked.
					return false
				}
				if shard != 1 || replica != 1 {
					t.Errorf("asked about shard %d replica %d; only shards 1 and 2 exist", shard, replica)
				}
				asked.Add(1)
				return c.answer
			}
			for _, shard := range []uint64{1, 2} {
				if err := s.SaveBootstrapInfo(shard, 1, pb.Bootstrap{Type: pb.OnDiskStateMachine}); err != nil {
					t.Fatal(err)
				}
			}
			last := uint64(c.entries)
			save(t, s, 1, 1, last, c.size) // the idle replica
			compacted := false
			for i := uint64(1); i <= 1500; i++ {
				save(t, s, 2, i, i, 1000)
				if i%20 == 0 {
					if err := s.RemoveEntriesTo(2, 1, i-2); err != nil {
						t.Fatal(err)
					}
				}
				if c.compacts && !compacted && asked.Load() > 0 {
					if err := s.RemoveEntriesTo(1, 1, last); err != nil { // the owner's sync, a moment later
						t.Fatal(err)
					}
					compacted = true
				}
			}
			waitCarrier(t, s)
			switch n := asked.Load(); {
			case (n > 0) != c.asked:
				t.Fatalf("the owner was asked %d times; want asked: %v", n, c.asked)
			case c.compacts && c.asked && n != 1:
				t.Fatalf("the owner was asked %d times; want once, the entries gone after", n)
			}
			bytes := int64(c.entries * c.size)
			if carried := s.CarriedBytes() >= bytes; carried != c.carried {
				t.Fatalf("carried %d bytes; want the idle replica's %d carried: %v", s.CarriedBytes(), bytes, c.carried)
			}
			if !compacted {
				readsBack(t, s, 1, 1, last, c.size)
			}
			seqs, _, err := listFiles(s.dir)
			if err != nil {
				t.Fatal(err)
			}
			if len(seqs) > 12 {
				t.Fatalf("%d log files after 1.5 MB through 64 KiB files", len(seqs))
			}
		})
	}
}
