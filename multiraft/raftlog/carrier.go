package raftlog

import (
	"math/rand/v2"
	"slices"

	"github.com/eddy-broker/eddy/internal/bufpool"
)

// The carrier moves an idle replica's entries that pin the log's oldest
// file forward when there are many of them (a replicated partition keeps
// raft_log_retain_bytes, 32 MiB, behind its last sync for lagging
// followers). Carried whole under the writer lock, as small ones are,
// they stopped every save of the node for as long as it took to read
// them back (their pages are not cached), write and sync them: 0.75-2.1
// s under Kafka produce on three nodes sharing a disk, long enough for
// followers to call elections.
//
// The carrier reads them without a lock and writes them in pieces of an
// eighth of a file, each its own save (kindCarried: staged, not yet the
// replica's entries), and the last piece with a kindCarryDone that puts
// the copies in place of the originals. Any change to the replica's
// entries meanwhile (an append, a compaction, a snapshot from the
// leader) voids the staging, in the index as the log is read back as
// when it is written, and the carrier gives up until a later roll. So the
// writer lock is held for a piece's copy, and each piece is synced on its
// own, as any save.

// carryLater queues k for the carrier. The writer lock is held.
func (s *Store) carryLater(k nodeKey) {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	if s.carrying[k] {
		return
	}
	s.carrying[k] = true
	s.carryQ = append(s.carryQ, k)
	select {
	case s.carryC <- struct{}{}:
	default:
	}
}

// isCarrying reports whether k is queued for the carrier or being carried.
func (s *Store) isCarrying(k nodeKey) bool {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	return s.carrying[k]
}

// carrier carries the queued replicas, one at a time, until the store
// closes.
func (s *Store) carrier() {
	defer close(s.carrierDone)
	for {
		select {
		case <-s.stop:
			return
		case <-s.carryC:
		}
		for {
			s.cmu.Lock()
			if len(s.carryQ) == 0 {
				s.cmu.Unlock()
				break
			}
			k := s.carryQ[0]
			s.carryQ = s.carryQ[1:]
			s.cmu.Unlock()
			s.carryOne(k)
			s.cmu.Lock()
			delete(s.carrying, k)
			s.cmu.Unlock()
		}
	}
}

// carryOne carries the entries of k, or gives up when they change under
// it, the store closes, or a read or write fails (a later roll queues it
// again).
func (s *Store) carryOne(k nodeKey) {
	s.mu.RLock()
	n := s.nodes[k]
	if n == nil || len(n.locs) == 0 {
		s.mu.RUnlock()
		return
	}
	version, lo := n.version, n.first
	locs := slices.Clone(n.locs)
	files := make([]*file, len(locs))
	for i, l := range locs {
		files[i] = s.files[l.seq]
	}
	s.mu.RUnlock()
	hi := lo + uint64(len(locs)) - 1
	id := rand.Uint64()
	piece := int(s.opts.FileSize / 8)
	b := s.getBatch()
	defer s.putBatch(b)
	var buf []byte
	defer func() { bufpool.Put(buf) }()
	for i := 0; i < len(locs); {
		select {
		case <-s.stop:
			return
		default:
		}
		b.reset(s.lead())
		for ; i < len(locs) && len(b.buf) < piece; i++ {
			l, fl := locs[i], files[i]
			if fl == nil {
				return
			}
			var payload []byte
			var err error
			if buf, payload, err = readPayload(buf, fl, l, k); err != nil {
				return // retired or reused since: the entries changed
			}
			b.carried(k.shard, k.replica, id, lo+uint64(i), hi, payload)
		}
		if i == len(locs) {
			b.carryDone(k.shard, k.replica, id, lo, hi)
		}
		s.wmu.Lock()
		if s.nodes[k] != n || n.version != version { // the index changes only under the writer lock
			s.wmu.Unlock()
			return
		}
		end, err := s.appendLocked(b)
		s.wmu.Unlock()
		if err != nil {
			return
		}
		if err := s.syncTo(end); err != nil {
			return
		}
		s.carriedBytes.Add(int64(len(b.buf)))
		if s.pieceHook != nil {
			s.pieceHook(len(b.buf))
		}
	}
}

// CarriedBytes is how much the log has written again to move idle
// replicas' entries forward, in all.
func (s *Store) CarriedBytes() int64 { return s.carriedBytes.Load() }
