package multiraft

// Health is what this node reports of the cluster's partitions, for
// /metrics: summed over the nodes, each partition is counted once.
type Health struct {
	// Leaderless: partitions none of whose replicas knows a leader,
	// counted by the partition's lowest-numbered live replica holder.
	Leaderless int
	// UnderReplicated: partitions this node leads with a replica on a
	// node that is not alive.
	UnderReplicated int
	// FreeBytes is the data disk's free space; Headroom what may still
	// be written before writes are refused (storage_full).
	FreeBytes, Headroom int64
	// RaftLogBytes and RaftLogSpareBytes are the files of Eddy's Raft log
	// store in use, and the free ones it keeps for reuse (raftlog.Store.Trim).
	RaftLogBytes, RaftLogSpareBytes int64
	// RaftLogCarriedBytes is what the log wrote again to move idle
	// replicas' records forward (raftlog.Store.CarriedBytes).
	RaftLogCarriedBytes int64
}

// Health looks at the partitions this node holds replicas of and at its
// disk.
func (h *Host) Health() Health {
	var out Health
	self := h.cfg.NodeID
	for _, s := range h.partitionShards() {
		if h.localReplicaID(s.id) == 0 {
			continue
		}
		leader, ok := h.leaderNode(s)
		switch {
		case !ok:
			lowest := true
			for _, r := range s.voters {
				if r.node < self && h.live.alive(r.node) {
					lowest = false
				}
			}
			if lowest {
				out.Leaderless++
			}
		case leader == self:
			for _, r := range s.voters {
				if r.node != self && !h.live.alive(r.node) {
					out.UnderReplicated++
					break
				}
			}
		}
	}
	if free, ok := h.freeBytes(); ok {
		out.FreeBytes = int64(free)
		out.Headroom = int64(free) - int64(h.keepFree())
	}
	if st := h.raftLog.Load(); st != nil {
		out.RaftLogBytes, out.RaftLogSpareBytes = st.Files()
		out.RaftLogCarriedBytes = st.CarriedBytes()
	}
	return out
}
