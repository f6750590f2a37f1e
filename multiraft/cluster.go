package multiraft

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/eddy-broker/eddy"
	"github.com/eddy-broker/eddy/batch"
	"github.com/eddy-broker/eddy/internal/logkey"
	"github.com/eddy-broker/eddy/multiraft/catalog"
	"github.com/eddy-broker/eddy/multiraft/segment"
)

// NodeStatus is a node as GET /v1/cluster shows it.
type NodeStatus struct {
	catalog.NodeMeta
	Alive     bool `json:"alive"`
	Leads     int  `json:"partitions_led"`
	Hosts     int  `json:"partitions_hosted"`
	This      bool `json:"this_node"`
	LeadsCtrl bool `json:"controller_leader"`
	// Voter: a voting member of the controller shard (as this node's
	// replica of it knows).
	Voter bool `json:"controller_voter"`
	// This node's disk (only its own is known here): free bytes, the
	// bytes kept free (writes are refused below), and whether they are.
	DiskFree     uint64 `json:"disk_free_bytes,omitempty"`
	DiskKeepFree uint64 `json:"disk_keep_free_bytes,omitempty"`
	StorageFull  bool   `json:"storage_full,omitempty"`
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

// Cluster describes every node: address, state, liveness, and how many
// partition replicas it hosts and leads (leaders as this node knows them).
func (h *Host) Cluster() []NodeStatus {
	var out []NodeStatus
	hosted := map[uint64]int{}
	shards := h.partitionShards()
	h.ctrl.view(func(st *catalog.State) {
		for _, id := range st.NodeIDs() {
			n := NodeStatus{NodeMeta: *st.Nodes[id]}
			if n.State == "" {
				n.State = catalog.NodeActive
			}
			out = append(out, n)
		}
	})
	led := map[uint64]int{}
	for _, s := range shards {
		for _, r := range s.voters {
			hosted[r.node]++
		}
		if n, ok := h.leaderNode(s); ok {
			led[n]++
		}
	}
	ctrlLeader, _, _, _ := h.nh.GetLeaderID(ControllerShardID)
	ctrl := h.shardInfos()[ControllerShardID]
	for i := range out {
		n := &out[i]
		n.Alive = h.live.alive(n.ID)
		n.Hosts, n.Leads = hosted[n.ID], led[n.ID]
		n.This = n.ID == h.cfg.NodeID
		if n.This {
			n.DiskFree, _ = h.freeBytes()
			n.DiskKeepFree, n.StorageFull = h.keepFree(), h.diskFull.Load()
		}
		n.LeadsCtrl = n.ID == ctrlLeader
		_, n.Voter = ctrl.Replicas[n.ID]
	}
	return out
}

// shardView is a partition shard with its voting replicas.
type shardView struct {
	id     uint64
	voters []replicaRef
}

type replicaRef struct{ node, replicaID uint64 }

// partitionShards lists every partition shard with its voters.
func (h *Host) partitionShards() []shardView {
	var out []shardView
	h.ctrl.view(func(st *catalog.State) {
		for _, t := range st.Topics {
			for p, s := range t.Shards {
				v := shardView{id: s}
				for _, n := range t.Replicas[p] {
					v.voters = append(v.voters, replicaRef{n, t.ReplicaID(p, n)})
				}
				out = append(out, v)
			}
		}
	})
	return out
}

// leaderNode is the node whose replica leads the shard, as known here.
func (h *Host) leaderNode(s shardView) (uint64, bool) {
	id, _, ok, _ := h.nh.GetLeaderID(s.id)
	if !ok {
		return 0, false
	}
	for _, r := range s.voters {
		if r.replicaID == id {
			return r.node, true
		}
	}
	return 0, false
}

// localReplicaID is this node's ReplicaID in a partition shard (0: none).
func (h *Host) localReplicaID(shard uint64) uint64 {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if lp, ok := h.parts[shard]; ok {
		return lp.replicaID
	}
	return 0
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
//
// It reads the replica a piece at a time, each read taking room (see
// ReadRoom) for what it returns: at most checksumRead, or the stored
// batch it starts in when larger, since a batch is read whole. (It took
// none: 60 concurrent checksums of a partition in 8 MB batches grew a
// node by 770 MB.) It stops when ctx is done.
func (h *Host) Checksum(ctx context.Context, ref eddy.TopicRef, p eddy.Partition, upto int64, room ReadRoom) (*Checksum, error) {
	meta, err := h.Topic(ref)
	if err != nil {
		return nil, err
	}
	lg, err := h.replicaLog(meta, p)
	if err != nil {
		return nil, err
	}
	return logChecksum(ctx, lg, p, h.cfg.NodeID, upto, room)
}

// ReadRoom takes n bytes of the caller's memory budget for a read that
// returns that much, or refuses (the error is the answer, as a 429);
// release gives them back once what was read is let go.
type ReadRoom func(n int) (release func(), err error)

// checksumRead is what one read of a checksum asks for.
const checksumRead = 4 << 20

// logChecksum digests lg's batches from its log start to upto (0: the
// high watermark). Retention may move the log start while the digest is
// taken; then it starts again from the new start (its LogStart says which).
func logChecksum(ctx context.Context, lg *segment.Log, p eddy.Partition, node uint64, upto int64, room ReadRoom) (*Checksum, error) {
	for attempt := 0; ; attempt++ {
		c, err := checksumFrom(ctx, lg, p, node, upto, room)
		if err == nil {
			return c, nil
		}
		if attempt == 50 || eddy.AsError(err).Code != eddy.CodeOffsetOutOfRange {
			return nil, err
		}
		if start, _ := lg.Offsets(); c == nil || start <= c.LogStart {
			return nil, err // not retention: upto is out of range
		}
	}
}

// checksumFrom digests lg from its log start to upto. When a read falls
// below a log start that moved meanwhile, it returns the Checksum begun
// (its LogStart says where) with the read's error.
func checksumFrom(ctx context.Context, lg *segment.Log, p eddy.Partition, node uint64, upto int64, room ReadRoom) (*Checksum, error) {
	start, hw := lg.Offsets()
	if upto == 0 {
		upto = hw
	}
	if upto > hw || upto < start {
		return nil, eddy.Errorf(eddy.CodeOffsetOutOfRange, "upto %d is outside [%d, %d] on node %d", upto, start, hw, node)
	}
	sum := sha256.New()
	c := &Checksum{Partition: p, Node: node, LogStart: start, Upto: upto}
	for off := start; off < upto; {
		if err := ctx.Err(); err != nil {
			return nil, eddy.Errorf(eddy.CodeTimeout, "checksum stopped at offset %d: %v", off, err)
		}
		next, err := digestRead(lg, off, upto, sum, c, room)
		if err != nil {
			return c, err
		}
		if next == off {
			break
		}
		off = next
	}
	c.SHA256 = hex.EncodeToString(sum.Sum(nil))
	return c, nil
}

// digestRead reads lg from off, with room for it, and adds the batches
// below upto to sum and c. It reports the offset after them.
func digestRead(lg *segment.Log, off, upto int64, sum hash.Hash, c *Checksum, room ReadRoom) (int64, error) {
	release, err := room(max(checksumRead, lg.BatchBytesAt(off)))
	if err != nil {
		return off, err
	}
	defer release()
	rr, err := lg.Read(off, checksumRead)
	if err != nil {
		return off, err
	}
	next := off
	err = batch.SplitVerified(rr.Batches, func(bh batch.Header, b []byte) error {
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
	return next, err
}

// transferLeadership hands every shard this node leads to another replica
// and waits (bounded) for the hand-offs, so a planned shutdown costs no
// election timeout. dragonboat's Close does not do this.
func (h *Host) transferLeadership(ctx context.Context) {
	type handoff struct {
		shard, self uint64
		others      []replicaRef
	}
	var work []handoff
	mctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	m, err := h.nh.SyncGetShardMembership(mctx, ControllerShardID)
	cancel()
	if err == nil {
		hc := handoff{shard: ControllerShardID, self: h.cfg.NodeID}
		for id := range m.Nodes {
			if id != h.cfg.NodeID {
				hc.others = append(hc.others, replicaRef{id, id})
			}
		}
		work = append(work, hc)
	}
	for _, s := range h.partitionShards() {
		hs := handoff{shard: s.id, self: h.localReplicaID(s.id)}
		for _, r := range s.voters {
			if r.node != h.cfg.NodeID {
				hs.others = append(hs.others, r)
			}
		}
		work = append(work, hs)
	}
	type waiting struct {
		shard, self uint64
		others      []replicaRef
		to          replicaRef
		asked       time.Time
	}
	var pending []*waiting
	start := time.Now()
	for _, w := range work {
		if len(w.others) == 0 || w.self == 0 {
			continue
		}
		if id, _, ok, _ := h.nh.GetLeaderID(w.shard); !ok || id != w.self {
			continue
		}
		target := h.handoffTarget(w.others, 0)
		if err := h.nh.RequestLeaderTransfer(w.shard, target.replicaID); err == nil {
			pending = append(pending, &waiting{w.shard, w.self, w.others, target, time.Now()})
		}
	}
	for len(pending) > 0 && ctx.Err() == nil {
		still := pending[:0]
		for _, w := range pending {
			id, _, ok, _ := h.nh.GetLeaderID(w.shard)
			switch {
			case !ok || id != w.self:
				h.log.Info("leadership handed off", logkey.Shard, w.shard, "to", w.to.node, "took", time.Since(start).Round(time.Millisecond))
			case time.Since(w.asked) > h.cfg.RTT*12:
				// dragonboat abandons a transfer after an election timeout
				// (its target did not catch up, or runs no replica yet):
				// ask another replica.
				w.to = h.handoffTarget(w.others, w.to.node)
				w.asked = time.Now()
				h.nh.RequestLeaderTransfer(w.shard, w.to.replicaID)
				still = append(still, w)
			default:
				still = append(still, w)
			}
		}
		pending = still
		if len(pending) > 0 {
			time.Sleep(10 * time.Millisecond)
		}
	}
	for _, w := range pending {
		h.log.Warn("leadership not handed off before shutdown", logkey.Shard, w.shard, "to", w.to.node)
	}
}

// handoffTarget picks who takes over a shard: an alive replica, the one
// whose node has run longest. A node that has just restarted may still be
// applying the log it missed; as leader it would hold every write until it
// has, which is the stall a rolling restart must not have.
//
// not is a node to avoid (one that did not take over when asked), unless it
// is the only choice.
func (h *Host) handoffTarget(others []replicaRef, not uint64) replicaRef {
	started := map[uint64]int64{}
	h.ctrl.view(func(st *catalog.State) {
		for _, o := range others {
			if n, ok := st.Nodes[o.node]; ok {
				started[o.node] = n.StartedMs
			}
		}
	})
	best, found := others[0], false
	for _, o := range others {
		if !h.live.alive(o.node) || (o.node == not && len(others) > 1) {
			continue
		}
		if !found || started[o.node] < started[best.node] {
			best, found = o, true
		}
	}
	return best
}

// A partition is busy for the leader balancer while it was written to in
// the last balanceQuiet; a node keeps leading too many busy ones for
// balanceBusyAfter before they move.
const (
	balanceQuiet     = 30 * time.Second
	balanceBusyAfter = time.Minute
)

// lastWrites is when each of shards last applied entries here (unix ns;
// 0 for one this node does not hold).
func (h *Host) lastWrites(shards []shardView) map[uint64]int64 {
	h.mu.RLock()
	defer h.mu.RUnlock()
	out := make(map[uint64]int64, len(shards))
	for _, s := range shards {
		if lp, ok := h.parts[s.id]; ok {
			out[s.id] = lp.sm.lastApply.Load()
		}
	}
	return out
}

// balanceLeaders moves leadership so no node leads much more than its share:
// if this node leads more than ceil(shards/alive nodes) of the partition
// shards it hosts, it hands its excess to alive replicas that lead fewer
// than that share (counted as it goes, so one call does not overshoot).
// Each node balances only what it leads, so nodes never fight over a shard.
//
// Idle partitions go first, and a partition written to in the last
// balanceQuiet moves only once the node has led too many for
// balanceBusyAfter. A transfer under load costs its clients seconds: a
// Kafka producer's requests to the old leader fail until its metadata
// says where the new one is, and proposals in flight are dropped and
// proposed again. Every new topic tips the count for a moment, and this
// used to move whichever partition came first: a transfer came just
// before each of three 5-10 s stalls of a three-node Kafka produce that
// were looked into (docs/kafka-figures.md).
func (h *Host) balanceLeaders() {
	leads := map[uint64]int{}
	var mine []shardView
	known := 0
	for _, s := range h.partitionShards() {
		if len(s.voters) < 2 {
			continue
		}
		n, ok := h.leaderNode(s)
		if !ok {
			continue
		}
		known++
		leads[n]++
		if n == h.cfg.NodeID {
			mine = append(mine, s)
		}
	}
	alive := 0
	for _, n := range h.Nodes() {
		if n.Active() && h.live.alive(n.ID) {
			alive++
		}
	}
	if alive < 2 || known == 0 {
		return
	}
	share := (known + alive - 1) / alive
	self := h.cfg.NodeID
	if leads[self] <= share {
		h.overLedSince = time.Time{}
		return
	}
	now := time.Now()
	if h.overLedSince.IsZero() {
		h.overLedSince = now
	}
	lastWrite := h.lastWrites(mine)
	slices.SortStableFunc(mine, func(a, b shardView) int { return cmp.Compare(lastWrite[a.id], lastWrite[b.id]) })
	busyMay := now.Sub(h.overLedSince) >= balanceBusyAfter
	for _, s := range mine {
		if leads[self] <= share {
			return
		}
		if now.UnixNano()-lastWrite[s.id] < int64(balanceQuiet) && !busyMay {
			return // the rest were written to since
		}
		for _, r := range s.voters {
			if r.node != self && h.live.alive(r.node) && leads[r.node] < share {
				if err := h.nh.RequestLeaderTransfer(s.id, r.replicaID); err == nil {
					leads[self]--
					leads[r.node]++
					h.log.Debug("leadership balanced", logkey.Shard, s.id, "to", r.node)
				}
				break
			}
		}
	}
}
