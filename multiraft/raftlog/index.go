package raftlog

import (
	pb "github.com/lni/dragonboat/v4/raftpb"
)

type nodeKey struct{ shard, replica uint64 }

// loc is where a record lies: its file, offset and length.
type loc struct {
	seq uint64
	off int64
	n   uint32
}

// node is what the log holds of one replica, with the file of each
// record the index points at (the files a reclaim must keep).
type node struct {
	bs                       *pb.Bootstrap
	state                    pb.State
	hasState                 bool
	snap                     pb.Snapshot
	bsSeq, stateSeq, snapSeq uint64
	lastSeq                  uint64 // the newest file written for it
	first                    uint64 // the index of locs[0]
	locs                     []loc  // the live entries, contiguous
	entryBytes               int64
	version                  uint64   // counts the changes to its entries (a carry checks it)
	staging                  *staging // a carry under way (carrier.go)
	pinnedAt                 int64    // since when its owner knows it keeps the oldest file (carryNow); 0 when it does not keep it
}

// staging is the copies a carry has written so far, the entries [lo,
// lo+len(locs)) of the carry of [lo, hi].
type staging struct {
	id, lo, hi uint64
	locs       []loc
	bytes      int64
}

func (n *node) last() uint64 { return n.first + uint64(len(n.locs)) - 1 }

// minSeq is the oldest file this replica needs, or 0 when it needs none.
func (n *node) minSeq() uint64 {
	m := n.metaSeq()
	if len(n.locs) > 0 && (m == 0 || n.locs[0].seq < m) {
		m = n.locs[0].seq // appends go to the newest file, so locs[0] is the oldest
	}
	return m
}

// metaSeq is the oldest file holding this replica's bootstrap, state or
// snapshot record, or 0.
func (n *node) metaSeq() uint64 {
	m := uint64(0)
	take := func(held bool, s uint64) {
		if held && s != 0 && (m == 0 || s < m) {
			m = s
		}
	}
	take(n.bs != nil, n.bsSeq)
	take(n.hasState, n.stateSeq)
	take(n.snap.Index != 0, n.snapSeq)
	return m
}

// appendEntry records an entry; one at or below the last replaces it and
// everything after it (Raft overwrote a conflicting suffix).
func (n *node) appendEntry(index uint64, l loc) {
	switch {
	case len(n.locs) == 0 || index < n.first || index > n.last()+1:
		n.locs, n.entryBytes, n.first = n.locs[:0], 0, index
	case index <= n.last():
		for _, d := range n.locs[index-n.first:] {
			n.entryBytes -= int64(d.n)
		}
		n.locs = n.locs[:index-n.first]
	}
	n.locs = append(n.locs, l)
	n.entryBytes += int64(l.n)
}

// removeTo forgets the entries up to index.
func (n *node) removeTo(index uint64) {
	if len(n.locs) == 0 || index < n.first {
		return
	}
	if index >= n.last() {
		n.locs, n.entryBytes, n.first = nil, 0, index+1
		return
	}
	k := index - n.first + 1
	for _, d := range n.locs[:k] {
		n.entryBytes -= int64(d.n)
	}
	n.locs = append([]loc(nil), n.locs[k:]...)
	n.first = index + 1
}

// apply is the one place a record changes the index, when it is written
// and when the log is read back at start.
func (s *Store) apply(o *op, l loc) {
	k := nodeKey{o.shard, o.replica}
	n := s.nodes[k]
	if n != nil && s.oldest != 0 && s.oldest+1 < s.tail.Load().seq && n.minSeq() == s.oldest {
		defer func() {
			if n := s.nodes[k]; n == nil || n.minSeq() != s.oldest {
				s.oldestFreed = true
			}
		}()
	}
	if o.kind == kindRemoveNode {
		delete(s.nodes, k)
		return
	}
	if n == nil {
		n = &node{}
		s.nodes[k] = n
	}
	n.lastSeq = l.seq
	switch o.kind {
	case kindEntry:
		n.changed()
		n.appendEntry(o.index, l)
	case kindState:
		n.state, n.hasState, n.stateSeq = o.state, true, l.seq
	case kindSnapshot, kindSnapshotReset:
		if o.snap.Index < n.snap.Index {
			return
		}
		n.snap, n.snapSeq = o.snap, l.seq
		if o.kind == kindSnapshotReset {
			n.changed()
			n.locs, n.entryBytes, n.first = nil, 0, o.snap.Index+1
		}
	case kindBootstrap:
		bs := o.bs
		n.bs, n.bsSeq = &bs, l.seq
	case kindRemoveTo:
		n.changed()
		n.removeTo(o.index)
	case kindCarried:
		n.stage(o, l)
	case kindCarryDone:
		n.carryDone(o)
	}
}

// changed notes a change to n's entries: a carry under way is void.
func (n *node) changed() { n.version, n.staging = n.version+1, nil }

// stage records a carried copy: the next of the carry under way, or the
// first of a new one.
func (n *node) stage(o *op, l loc) {
	st := n.staging
	if st == nil || st.id != o.carryID || o.index != st.lo+uint64(len(st.locs)) {
		st = &staging{id: o.carryID, lo: o.index, hi: o.hi}
		n.staging = st
	}
	st.locs = append(st.locs, l)
	st.bytes += int64(l.n)
}

// carryDone puts the copies of a finished carry in place of the entries
// they copied. Nothing else changed the replica's entries while it ran
// (that voids the staging), so they are the whole of its entries: the
// same [first, last] when it is written; when the log is read back,
// those, some of them or none (the originals' files are retired once it
// ran, the first copies' files too once the entries in them were
// compacted, so the staging may begin past lo).
func (n *node) carryDone(o *op) {
	st := n.staging
	n.staging = nil
	if st == nil || st.id != o.carryID || st.lo+uint64(len(st.locs)) != o.hi+1 {
		return
	}
	if len(n.locs) > 0 && (n.first < o.index || n.last() > o.hi) {
		return
	}
	n.locs, n.first, n.entryBytes = st.locs, st.lo, st.bytes
}
