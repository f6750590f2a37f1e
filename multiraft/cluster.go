package multiraft

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net"
	"sync"
	"time"

	"github.com/eddy-broker/eddy"
	"github.com/eddy-broker/eddy/multiraft/segment"
)

// NodeStatus is a node as GET /v1/cluster shows it.
type NodeStatus struct {
	NodeMeta
	Alive     bool `json:"alive"`
	Leads     int  `json:"partitions_led"`
	Hosts     int  `json:"partitions_hosted"`
	This      bool `json:"this_node"`
	LeadsCtrl bool `json:"controller_leader"`
}

// liveness remembers when each node's Raft port last accepted a connection.
type liveness struct {
	mu      sync.Mutex
	seen    map[uint64]time.Time
	started time.Time // first mark: before probes ran, peers count as alive
}

func (h *Host) probePeers() {
	for _, n := range h.Nodes() {
		if n.ID == h.cfg.NodeID {
			h.live.mark(n.ID)
			continue
		}
		c, err := net.DialTimeout("tcp", n.RaftAddr, 500*time.Millisecond)
		if err == nil {
			c.Close()
			h.live.mark(n.ID)
		}
	}
}

func (l *liveness) mark(id uint64) {
	l.mu.Lock()
	if l.seen == nil {
		l.seen = map[uint64]time.Time{}
		l.started = time.Now()
	}
	l.seen[id] = time.Now()
	l.mu.Unlock()
}

func (l *liveness) alive(id uint64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	seen, ok := l.seen[id]
	if !ok {
		// Not probed yet: unknown, so assume alive until probes had time.
		return l.started.IsZero() || time.Since(l.started) < 5*time.Second
	}
	return time.Since(seen) < 5*time.Second
}

// Cluster describes every node: address, liveness, and how many partition
// replicas it hosts and leads (leaders as this node knows them).
func (h *Host) Cluster() []NodeStatus {
	var out []NodeStatus
	hosted := map[uint64]int{}
	var shards []uint64
	h.ctrl.view(func(st *controllerState) {
		for _, id := range st.sortedNodeIDs() {
			out = append(out, NodeStatus{NodeMeta: *st.Nodes[id]})
		}
		for _, t := range st.Topics {
			for p := range t.Shards {
				shards = append(shards, t.Shards[p])
				for _, r := range t.Replicas[p] {
					hosted[r]++
				}
			}
		}
	})
	led := map[uint64]int{}
	for _, s := range shards {
		if id, _, ok, _ := h.nh.GetLeaderID(s); ok {
			led[id]++
		}
	}
	ctrlLeader, _, _, _ := h.nh.GetLeaderID(ControllerShardID)
	for i := range out {
		n := &out[i]
		n.Alive = h.live.alive(n.ID)
		n.Hosts, n.Leads = hosted[n.ID], led[n.ID]
		n.This = n.ID == h.cfg.NodeID
		n.LeadsCtrl = n.ID == ctrlLeader
	}
	return out
}

// Checksum is a digest of a partition replica's stored batches.
type Checksum struct {
	Partition eddy.Partition `json:"partition"`
	Node      uint64         `json:"node"`
	LogStart  int64          `json:"log_start_offset"`
	Upto      int64          `json:"upto"`
	Bytes     int64          `json:"bytes"`
	SHA256    string         `json:"sha256"`
}

// Checksum hashes the stored bytes of every batch from the log start up to
// (not including) upto, on this node's replica. Replicas hold identical
// bytes, so equal upto gives equal digests. upto must be a batch boundary
// at or below the high watermark (0: the high watermark).
func (h *Host) Checksum(ref eddy.TopicRef, p eddy.Partition, upto int64) (*Checksum, error) {
	meta, err := h.Topic(ref)
	if err != nil {
		return nil, err
	}
	lp, err := h.local(meta, p)
	if err != nil {
		return nil, err
	}
	lg, err := lp.sm.log()
	if err != nil {
		return nil, err
	}
	start, hw := lg.Offsets()
	if upto == 0 {
		upto = hw
	}
	if upto > hw || upto < start {
		return nil, eddy.Errorf(eddy.CodeOffsetOutOfRange, "upto %d is outside [%d, %d] on node %d", upto, start, hw, h.cfg.NodeID)
	}
	sum := sha256.New()
	c := &Checksum{Partition: p, Node: h.cfg.NodeID, LogStart: start, Upto: upto}
	for off := start; off < upto; {
		rr, err := lg.Read(off, 4<<20)
		if err != nil {
			return nil, err
		}
		next := off
		err = segment.SplitVerified(rr.Batches, func(bh segment.BatchHeader, b []byte) error {
			if bh.LastOffset() >= upto {
				if bh.FirstOffset < upto {
					return eddy.Errorf(eddy.CodeInvalid, "upto %d is inside the batch [%d, %d]", upto, bh.FirstOffset, bh.LastOffset())
				}
				return nil
			}
			sum.Write(b)
			c.Bytes += int64(len(b))
			next = bh.LastOffset() + 1
			return nil
		})
		if err != nil {
			return nil, err
		}
		if next == off {
			break
		}
		off = next
	}
	c.SHA256 = hex.EncodeToString(sum.Sum(nil))
	return c, nil
}

// transferLeadership hands every shard this node leads to another replica
// and waits (bounded) for the hand-offs, so a planned shutdown costs no
// election timeout. dragonboat's Close does not do this.
func (h *Host) transferLeadership(ctx context.Context) {
	members := map[uint64][]uint64{} // shard -> other replicas
	h.ctrl.view(func(st *controllerState) {
		var others []uint64
		for _, id := range st.sortedNodeIDs() {
			if id != h.cfg.NodeID {
				others = append(others, id)
			}
		}
		if _, ok := h.cfg.Peers[h.cfg.NodeID]; ok && len(others) > 0 {
			var ctrlOthers []uint64
			for id := range h.cfg.Peers {
				if id != h.cfg.NodeID {
					ctrlOthers = append(ctrlOthers, id)
				}
			}
			members[ControllerShardID] = ctrlOthers
		}
		for _, t := range st.Topics {
			for p, s := range t.Shards {
				for _, r := range t.Replicas[p] {
					if r != h.cfg.NodeID {
						members[s] = append(members[s], r)
					}
				}
			}
		}
	})
	var pending []uint64
	for shard, others := range members {
		if len(others) == 0 {
			continue
		}
		if id, _, ok, _ := h.nh.GetLeaderID(shard); !ok || id != h.cfg.NodeID {
			continue
		}
		// Prefer a replica that is alive.
		target := others[0]
		for _, o := range others {
			if h.live.alive(o) {
				target = o
				break
			}
		}
		if err := h.nh.RequestLeaderTransfer(shard, target); err == nil {
			pending = append(pending, shard)
		}
	}
	for len(pending) > 0 && ctx.Err() == nil {
		still := pending[:0]
		for _, s := range pending {
			if id, _, ok, _ := h.nh.GetLeaderID(s); ok && id == h.cfg.NodeID {
				still = append(still, s)
			}
		}
		pending = still
		if len(pending) > 0 {
			time.Sleep(10 * time.Millisecond)
		}
	}
	if len(pending) > 0 {
		h.log.Warn("leadership not handed off before shutdown", "shards", len(pending))
	}
}

// balanceLeaders moves leadership so no node leads much more than its share:
// if this node leads more than ceil(shards/alive nodes) of the partition
// shards it hosts, it hands its excess to alive replicas that lead fewer
// than that share (counted as it goes, so one call does not overshoot). Each node balances only
// what it leads, so nodes never fight over a shard.
func (h *Host) balanceLeaders() {
	type shardInfo struct {
		id       uint64
		replicas []uint64
	}
	var shards []shardInfo
	h.ctrl.view(func(st *controllerState) {
		for _, t := range st.Topics {
			for p, s := range t.Shards {
				if len(t.Replicas[p]) > 1 {
					shards = append(shards, shardInfo{s, t.Replicas[p]})
				}
			}
		}
	})
	leads := map[uint64]int{}
	var mine []shardInfo
	known := 0
	for _, s := range shards {
		id, _, ok, _ := h.nh.GetLeaderID(s.id)
		if !ok {
			continue
		}
		known++
		leads[id]++
		if id == h.cfg.NodeID {
			mine = append(mine, s)
		}
	}
	alive := 0
	for _, n := range h.Nodes() {
		if h.live.alive(n.ID) {
			alive++
		}
	}
	if alive < 2 || known == 0 {
		return
	}
	share := (known + alive - 1) / alive
	if leads[h.cfg.NodeID] <= share {
		return
	}
	for _, s := range mine {
		if leads[h.cfg.NodeID] <= share {
			return
		}
		for _, r := range s.replicas {
			if r != h.cfg.NodeID && h.live.alive(r) && leads[r] < share {
				if err := h.nh.RequestLeaderTransfer(s.id, r); err == nil {
					leads[h.cfg.NodeID]--
					leads[r]++
					h.log.Debug("leadership balanced", "shard_id", s.id, "to", r)
				}
				break
			}
		}
	}
}
