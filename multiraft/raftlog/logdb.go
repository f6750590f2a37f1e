package raftlog

import (
	"sort"

	"github.com/lni/dragonboat/v4/raftio"
	pb "github.com/lni/dragonboat/v4/raftpb"
)

// The raftio.ILogDB methods, with the semantics of dragonboat's own
// stores (internal/logdb): a snapshot received from the leader restarts
// the log after it; a state that changes only the commit index is written
// but not synced (Raft recovers the commit index), as tan does.

var _ raftio.ILogDB = (*Store)(nil)

func (s *Store) ListNodeInfo() ([]raftio.NodeInfo, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := []raftio.NodeInfo{}
	for k, n := range s.nodes {
		if n.bs != nil {
			out = append(out, raftio.NodeInfo{ShardID: k.shard, ReplicaID: k.replica})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].ShardID < out[j].ShardID || (out[i].ShardID == out[j].ShardID && out[i].ReplicaID < out[j].ReplicaID)
	})
	return out, nil
}

func (s *Store) SaveBootstrapInfo(shardID, replicaID uint64, bs pb.Bootstrap) error {
	b := s.getBatch()
	defer s.putBatch(b)
	b.bootstrap(shardID, replicaID, bs)
	return s.write(b, true)
}

func (s *Store) GetBootstrapInfo(shardID, replicaID uint64) (pb.Bootstrap, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if n := s.nodes[nodeKey{shardID, replicaID}]; n != nil && n.bs != nil {
		var bs pb.Bootstrap
		b, err := n.bs.Marshal()
		if err == nil {
			err = bs.Unmarshal(b)
		}
		return bs, err // a copy: the caller may change its map
	}
	return pb.Bootstrap{}, raftio.ErrNoBootstrapInfo
}

// SaveRaftState writes each update's received snapshot, entries and
// changed state, in that order, and syncs when any of them must be
// durable. Each replica is saved by one step worker, so what is read of
// its node here stays true until the write: the index is read first and
// let go before the records are encoded, which for Kafka's batches is
// megabytes of copying that must not hold up the writer (put takes the
// index's write lock) and every replica behind it.
func (s *Store) SaveRaftState(updates []pb.Update, workerID uint64) error {
	b := s.getBatch()
	defer s.putBatch(b)
	need := 0
	for i := range updates {
		for j := range updates[i].EntriesToSave {
			need += headerSize + updates[i].EntriesToSave[j].SizeUpperLimit()
		}
	}
	b.reserve(need)
	s.mu.RLock()
	for i := range updates {
		u := &updates[i]
		n := s.nodes[nodeKey{u.ShardID, u.ReplicaID}]
		var p savePlan
		if newSnapshot(n, u) {
			p |= saveSnapshot
		}
		if !pb.IsEmptyState(u.State) && (n == nil || !n.hasState || !pb.IsStateEqual(u.State, n.state)) {
			p |= saveState
			if n == nil || u.State.Term != n.state.Term || u.State.Vote != n.state.Vote {
				p |= syncState
			}
		}
		b.plans = append(b.plans, p)
	}
	s.mu.RUnlock()
	sync := false
	for i := range updates {
		u, p := &updates[i], b.plans[i]
		if p&saveSnapshot != 0 {
			b.snapshot(kindSnapshotReset, u.ShardID, u.ReplicaID, u.Snapshot)
		}
		for j := range u.EntriesToSave {
			b.entry(u.ShardID, u.ReplicaID, &u.EntriesToSave[j])
		}
		if p&saveState != 0 {
			b.state(u.ShardID, u.ReplicaID, u.State)
		}
		sync = sync || p&(saveSnapshot|syncState) != 0 || len(u.EntriesToSave) > 0
	}
	return s.write(b, sync)
}

// savePlan is what SaveRaftState writes of one update, decided under the
// index's lock.
type savePlan uint8

const (
	saveSnapshot savePlan = 1 << iota // a received snapshot newer than the replica's
	saveState                         // a changed state
	syncState                         // a changed term or vote: the state must be durable
)

// newSnapshot reports whether u carries a snapshot newer than n's last
// (as dragonboat's stores keep only the newest).
func newSnapshot(n *node, u *pb.Update) bool {
	return !pb.IsEmptySnapshot(u.Snapshot) && (n == nil || u.Snapshot.Index > n.snap.Index)
}

func (s *Store) IterateEntries(ents []pb.Entry, size uint64, shardID, replicaID uint64,
	low, high, maxSize uint64) ([]pb.Entry, uint64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	k := nodeKey{shardID, replicaID}
	n := s.nodes[k]
	if n == nil {
		return ents, size, nil
	}
	return s.readEntries(ents, size, k, n, low, high, maxSize)
}

// ReadRaftState returns the replica's state and its entries after
// lastIndex (its snapshot's index).
func (s *Store) ReadRaftState(shardID, replicaID, lastIndex uint64) (raftio.RaftState, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	n := s.nodes[nodeKey{shardID, replicaID}]
	if n == nil || !n.hasState {
		return raftio.RaftState{}, raftio.ErrNoSavedLog
	}
	rs := raftio.RaftState{State: n.state, FirstIndex: lastIndex}
	if len(n.locs) > 0 && n.last() > lastIndex {
		rs.FirstIndex = max(n.first, lastIndex+1)
		rs.EntryCount = n.last() - rs.FirstIndex + 1
	}
	return rs, nil
}

// RemoveEntriesTo forgets the entries up to index. Not synced: entries
// read back at or below the snapshot are never asked for.
func (s *Store) RemoveEntriesTo(shardID, replicaID, index uint64) error {
	b := s.getBatch()
	defer s.putBatch(b)
	b.removeTo(shardID, replicaID, index)
	return s.write(b, false)
}

// CompactEntriesTo has nothing to do: a file is reused once nothing in it
// is live.
func (s *Store) CompactEntriesTo(shardID, replicaID, index uint64) (<-chan struct{}, error) {
	done := make(chan struct{})
	close(done)
	return done, nil
}

// SaveSnapshots records snapshots made here, each if it is newer than the
// replica's last.
func (s *Store) SaveSnapshots(updates []pb.Update) error {
	b := s.getBatch()
	defer s.putBatch(b)
	s.mu.RLock()
	for i := range updates {
		u := &updates[i]
		if newSnapshot(s.nodes[nodeKey{u.ShardID, u.ReplicaID}], u) {
			b.snapshot(kindSnapshot, u.ShardID, u.ReplicaID, u.Snapshot)
		}
	}
	s.mu.RUnlock()
	return s.write(b, true)
}

func (s *Store) GetSnapshot(shardID, replicaID uint64) (pb.Snapshot, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if n := s.nodes[nodeKey{shardID, replicaID}]; n != nil && n.snap.Index != 0 {
		var ss pb.Snapshot
		b, err := n.snap.Marshal()
		if err == nil {
			err = ss.Unmarshal(b)
		}
		return ss, err // a copy: the caller may change its maps and slices
	}
	return pb.Snapshot{}, nil
}

func (s *Store) RemoveNodeData(shardID, replicaID uint64) error {
	b := s.getBatch()
	defer s.putBatch(b)
	b.removeNode(shardID, replicaID)
	return s.write(b, true)
}

// ImportSnapshot makes the replica one that joins from the snapshot, as
// dragonboat's tools import one.
func (s *Store) ImportSnapshot(ss pb.Snapshot, replicaID uint64) error {
	if ss.Type == pb.UnknownStateMachine {
		panic("raftlog: import of a snapshot of an unknown state machine type")
	}
	b := s.getBatch()
	defer s.putBatch(b)
	b.removeNode(ss.ShardID, replicaID)
	b.bootstrap(ss.ShardID, replicaID, pb.Bootstrap{Join: true, Type: ss.Type})
	b.state(ss.ShardID, replicaID, pb.State{Term: ss.Term, Commit: ss.Index})
	b.snapshot(kindSnapshotReset, ss.ShardID, replicaID, ss)
	return s.write(b, true)
}
