package multiraft

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"time"

	"github.com/eddy-broker/eddy/internal/logkey"

	"github.com/eddy-broker/eddy"
	"github.com/eddy-broker/eddy/multiraft/catalog"
	"github.com/lni/dragonboat/v4"
)

// Membership changes (DESIGN.md, "Cluster membership").
//
// Adding a node: AddNode records it in the controller as joining and adds
// it to the controller shard as a non-voting member; the new process starts
// with Join and registers itself, which makes it active. The controller
// leader's planner then promotes it to a controller voter (up to 5) and
// moves partition replicas onto it until the nodes hold about as many
// replicas each.
//
// Removing a node: RemoveNode marks it draining; the planner moves every
// replica it holds to other nodes, then removes it from the controller
// shard and the node list. Its id is never used again.
//
// A move is: the controller allocates a fresh ReplicaID (never reused in
// the shard); the partition's leader adds it as a non-voting member; the new
// node's reconciler starts the replica, which catches up from the log or a
// snapshot stream; once a ReadIndex succeeds on it (it has applied what the
// leader had committed) it reports itself ready; the leader promotes it to
// a voter and only then removes the old replica (handing leadership over
// first if it is the one leaving). Every step is checked against dragonboat's
// membership first, so any node may crash at any point and the step is
// simply retried by whoever leads next.

// maxConcurrentMoves bounds moves in flight: each streams a partition.
const maxConcurrentMoves = 2

// maxControllerVoters is the controller shard's voter count at most.
const maxControllerVoters = 5

// AddNode adds a node to the cluster: the process started with Join on
// raftAddr then joins. It is idempotent for the same id and address.
func (h *Host) AddNode(ctx context.Context, id uint64, raftAddr string) (*catalog.NodeMeta, error) {
	if id == 0 || id > catalog.MaxNodeID {
		return nil, eddy.Errorf(eddy.CodeInvalid, "node id must be 1 to %d, got %d", catalog.MaxNodeID, id)
	}
	if _, _, err := net.SplitHostPort(raftAddr); err != nil {
		return nil, eddy.Errorf(eddy.CodeInvalid, "raft_addr must be host:port, got %q", raftAddr)
	}
	res, err := h.ctrlPropose(ctx, &catalog.Cmd{Op: catalog.OpAddNode, Node: &catalog.NodeMeta{ID: id, RaftAddr: raftAddr}})
	if err != nil {
		return nil, err
	}
	// The planner retries this if it fails now.
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := h.nh.SyncRequestAddNonVoting(cctx, ControllerShardID, id, raftAddr, 0); err != nil {
		h.log.Warn("add the new node to the controller shard; the planner retries", logkey.Node, id, logkey.Err, err)
	}
	h.kickReconcile()
	return res.Node, nil
}

// RemoveNode starts removing a node: it is drained (its replicas move to
// other nodes), then removed. Progress shows in Cluster and Moves.
func (h *Host) RemoveNode(ctx context.Context, id uint64) (*catalog.NodeMeta, error) {
	res, err := h.ctrlPropose(ctx, &catalog.Cmd{Op: catalog.OpDrainNode, Node: &catalog.NodeMeta{ID: id}})
	if err != nil {
		return nil, err
	}
	h.kickReconcile()
	return res.Node, nil
}

// Moves lists the replica moves in progress.
func (h *Host) Moves() []catalog.Move {
	var out []catalog.Move
	h.ctrl.view(func(st *catalog.State) {
		for _, m := range st.Moves {
			out = append(out, *m)
		}
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Shard < out[j].Shard })
	return out
}

func (h *Host) joinedMarker() string { return filepath.Join(h.cfg.Dir, "raft", "joined") }

// markJoined records that this node joined a running cluster, before it
// first starts its controller replica.
func (h *Host) markJoined() error { return writeMarker(h.joinedMarker()) }

// joined reports whether this node joined a running cluster.
func (h *Host) joined() bool {
	_, err := os.Stat(h.joinedMarker())
	return err == nil
}

func writeMarker(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// startsNonVoting: a replica that joined its shard (a moved replica, or a
// joined node's controller replica) always starts as non-voting, before and
// after its promotion. dragonboat must be told at start, and refuses
// (panics) when a replica started as a voter replays the entry that added
// it as non-voting; a replica started as non-voting becomes a follower as
// soon as it restores a snapshot or replays an entry that lists it as a
// voter, so that start is right in every case.
func startsNonVoting(replicaID uint64) bool { return replicaID > catalog.MaxNodeID }

// shardInfos is dragonboat's view of every local replica, by shard.
func (h *Host) shardInfos() map[uint64]dragonboat.ShardInfo {
	info := h.nh.GetNodeHostInfo(dragonboat.NodeHostInfoOption{SkipLogInfo: true})
	out := make(map[uint64]dragonboat.ShardInfo, len(info.ShardInfoList))
	for _, si := range info.ShardInfoList {
		out[si.ShardID] = si
	}
	return out
}

func (h *Host) leadsController() bool {
	id, _, ok, _ := h.nh.GetLeaderID(ControllerShardID)
	return ok && id == h.cfg.NodeID
}

// planMembership runs on the controller leader: it completes node
// additions and removals in the controller shard and plans replica moves.
func (h *Host) planMembership() {
	if !h.leadsController() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	h.planController(ctx)
	h.planMoves(ctx)
}

func (h *Host) planController(ctx context.Context) {
	m, err := h.nh.SyncGetShardMembership(ctx, ControllerShardID)
	if err != nil {
		return
	}
	type nodeWork struct {
		n      catalog.NodeMeta
		hosted int
	}
	var nodes []nodeWork
	h.ctrl.view(func(st *catalog.State) {
		for _, id := range st.NodeIDs() {
			nodes = append(nodes, nodeWork{*st.Nodes[id], st.HostedBy(id)})
		}
	})
	voters := len(m.Nodes)
	for _, w := range nodes {
		n := w.n
		_, isVoter := m.Nodes[n.ID]
		_, isNonVoting := m.NonVotings[n.ID]
		switch {
		case n.State == catalog.NodeJoining && !isVoter && !isNonVoting:
			if err := h.nh.SyncRequestAddNonVoting(ctx, ControllerShardID, n.ID, n.RaftAddr, 0); err != nil {
				h.log.Warn("add a joining node to the controller", logkey.Node, n.ID, logkey.Err, err)
			}
		case n.Active() && isNonVoting && voters < maxControllerVoters && h.live.alive(n.ID):
			if err := h.nh.SyncRequestAddReplica(ctx, ControllerShardID, n.ID, n.RaftAddr, 0); err != nil {
				h.log.Warn("promote a node to controller voter", logkey.Node, n.ID, logkey.Err, err)
				continue
			}
			voters++
			h.log.Info("node promoted to controller voter", logkey.Node, n.ID, "voters", voters)
		case (n.State == catalog.NodeDrained || n.State == catalog.NodeDraining && !h.live.alive(n.ID)) && w.hosted == 0:
			// Removed once it has deleted its replicas (drained), or at
			// once if it is down: it may never come back.
			if isVoter || isNonVoting {
				if n.ID == h.cfg.NodeID {
					h.handOffController(m.Nodes)
					return
				}
				if err := h.nh.SyncRequestDeleteReplica(ctx, ControllerShardID, n.ID, 0); err != nil {
					h.log.Warn("remove a drained node from the controller", logkey.Node, n.ID, logkey.Err, err)
					continue
				}
			}
			if _, err := h.ctrlPropose(ctx, &catalog.Cmd{Op: catalog.OpRemoveNode, Node: &catalog.NodeMeta{ID: n.ID}}); err != nil {
				h.log.Warn("remove a drained node", logkey.Node, n.ID, logkey.Err, err)
				continue
			}
			h.log.Info("node removed from the cluster", logkey.Node, n.ID)
		}
	}
}

// reportDrained: a draining node that holds no replica any more tells the
// controller, which then removes it. It must still be a member then, to
// learn that its last replicas moved away and delete them.
func (h *Host) reportDrained(ctx context.Context) {
	state, hosted := "", 0
	h.ctrl.view(func(st *catalog.State) {
		if n, ok := st.Nodes[h.cfg.NodeID]; ok {
			state, hosted = n.State, st.HostedBy(h.cfg.NodeID)
		}
	})
	h.mu.RLock()
	local := len(h.parts)
	h.mu.RUnlock()
	if state != catalog.NodeDraining || hosted > 0 || local > 0 {
		return
	}
	if _, err := h.ctrlPropose(ctx, &catalog.Cmd{Op: catalog.OpNodeDrained, Node: &catalog.NodeMeta{ID: h.cfg.NodeID}}); err == nil {
		h.log.Info("this node holds no partition replica any more; the cluster removes it next")
	}
}

// handOffController transfers controller leadership to another alive voter
// (the leader is being removed).
func (h *Host) handOffController(voters map[uint64]string) {
	for id := range voters {
		if id != h.cfg.NodeID && h.live.alive(id) {
			if err := h.nh.RequestLeaderTransfer(ControllerShardID, id); err == nil {
				h.log.Info("handing controller leadership over before leaving", "to", id)
			}
			return
		}
	}
}

// planMoves starts replica moves: off draining nodes first, else from the
// node holding the most replicas to the one holding the fewest while they
// differ by two or more. At most maxConcurrentMoves run at once.
func (h *Host) planMoves(ctx context.Context) {
	var starts []*catalog.Move
	h.ctrl.view(func(st *catalog.State) {
		inflight := len(st.Moves)
		if inflight >= maxConcurrentMoves {
			return
		}
		load := map[uint64]int{}
		var targets []uint64
		for _, id := range st.NodeIDs() {
			load[id] = 0
			if st.Nodes[id].Active() && h.live.alive(id) {
				targets = append(targets, id)
			}
		}
		type part struct {
			shard    uint64
			replicas []uint64
		}
		var parts []part
		refs := make([]string, 0, len(st.Topics))
		for ref := range st.Topics {
			refs = append(refs, ref)
		}
		sort.Strings(refs)
		for _, ref := range refs {
			t := st.Topics[ref]
			for p, s := range t.Shards {
				for _, r := range t.Replicas[p] {
					load[r]++
				}
				if st.Moves[s] == nil {
					parts = append(parts, part{s, t.Replicas[p]})
				}
			}
		}
		for _, mv := range st.Moves {
			if mv.Phase != catalog.MoveVoter {
				load[mv.Node]++
			}
			if mv.From != 0 {
				load[mv.From]--
			}
		}
		leastLoaded := func(exclude []uint64) uint64 {
			best := uint64(0)
			for _, id := range targets {
				if !slices.Contains(exclude, id) && (best == 0 || load[id] < load[best]) {
					best = id
				}
			}
			return best
		}
		draining := false
		for _, pt := range parts {
			for _, r := range pt.replicas {
				if st.Nodes[r] == nil || st.Nodes[r].State != catalog.NodeDraining {
					continue
				}
				draining = true
				to := leastLoaded(pt.replicas)
				if to == 0 {
					break // no node can take it now; retried next round
				}
				starts = append(starts, &catalog.Move{Shard: pt.shard, Node: to, From: r})
				load[to]++
				load[r]--
				inflight++
				break
			}
			if inflight >= maxConcurrentMoves {
				return
			}
		}
		if draining || len(st.Moves) > 0 || len(targets) < 2 {
			return // balance only when nothing else is moving
		}
		sort.Slice(targets, func(i, j int) bool { return load[targets[i]] > load[targets[j]] })
		hi, lo := targets[0], targets[len(targets)-1]
		if load[hi]-load[lo] < 2 {
			return
		}
		for _, pt := range parts {
			if slices.Contains(pt.replicas, hi) && !slices.Contains(pt.replicas, lo) {
				starts = append(starts, &catalog.Move{Shard: pt.shard, Node: lo, From: hi})
				return
			}
		}
	})
	for _, mv := range starts {
		res, err := h.ctrlPropose(ctx, &catalog.Cmd{Op: catalog.OpStartMove, Move: mv})
		if err != nil {
			h.log.Warn("start a replica move", logkey.Shard, mv.Shard, "to", mv.Node, "from", mv.From, logkey.Err, err)
			continue
		}
		h.log.Info("replica move started", logkey.Topic, res.Move.Topic, logkey.Partition, int32(res.Move.Partition),
			logkey.Shard, mv.Shard, "to", mv.Node, "from", mv.From, logkey.Replica, res.Move.ReplicaID)
	}
}

// driveMoves advances the moves of partitions this node leads, and reports
// the learners on this node that have caught up.
func (h *Host) driveMoves() {
	type job struct {
		mv   catalog.Move
		meta *catalog.TopicMeta
		addr string
	}
	h.requestRebuilds()
	var jobs []job
	h.ctrl.view(func(st *catalog.State) {
		for _, mv := range st.Moves {
			t, ok := st.Topics[mv.Topic]
			n, nok := st.Nodes[mv.Node]
			if ok && nok {
				tc := *t
				jobs = append(jobs, job{*mv, &tc, n.RaftAddr})
			}
		}
	})
	for _, j := range jobs {
		h.mu.RLock()
		lp := h.parts[j.mv.Shard]
		h.mu.RUnlock()
		if lp == nil {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if j.mv.Node == h.cfg.NodeID && j.mv.Phase == catalog.MoveLearner {
			h.reportCaughtUp(ctx, j.mv)
		} else if id, _, ok, _ := h.nh.GetLeaderID(lp.shardID); ok && id == lp.replicaID {
			if err := h.stepMove(ctx, lp, j.mv, j.meta, j.addr); err != nil && ctx.Err() == nil {
				h.log.Warn("replica move step", logkey.Shard, j.mv.Shard, "phase", j.mv.Phase, logkey.Err, err)
			}
		}
		cancel()
	}
}

// reportCaughtUp: a learner that completes a ReadIndex has applied
// everything its leader had committed when asked.
func (h *Host) reportCaughtUp(ctx context.Context, mv catalog.Move) {
	rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	_, err := h.nh.SyncRead(rctx, mv.Shard, offsetsQuery{})
	cancel()
	if err != nil {
		return
	}
	mv.Phase = catalog.MoveReady
	if _, err := h.ctrlPropose(ctx, &catalog.Cmd{Op: catalog.OpMovePhase, Move: &mv}); err == nil {
		h.log.Info("moved replica caught up", logkey.Topic, mv.Topic, logkey.Partition, int32(mv.Partition), logkey.Shard, mv.Shard)
	}
}

// stepMove performs the next step of a move on the partition's leader.
func (h *Host) stepMove(ctx context.Context, lp *localPartition, mv catalog.Move, meta *catalog.TopicMeta, addr string) error {
	m, err := h.nh.SyncGetShardMembership(ctx, mv.Shard)
	if err != nil {
		return err
	}
	_, voter := m.Nodes[mv.ReplicaID]
	_, learner := m.NonVotings[mv.ReplicaID]
	switch mv.Phase {
	case catalog.MoveRebuild:
		_, oldVoter := m.Nodes[mv.OldReplicaID]
		_, oldLearner := m.NonVotings[mv.OldReplicaID]
		if oldVoter || oldLearner {
			if err := h.nh.SyncRequestDeleteReplica(ctx, mv.Shard, mv.OldReplicaID, 0); err != nil {
				return fmt.Errorf("remove damaged replica %d: %w", mv.OldReplicaID, err)
			}
		}
		mv.Phase = catalog.MoveLearner
		_, err := h.ctrlPropose(ctx, &catalog.Cmd{Op: catalog.OpMovePhase, Move: &mv})
		return err
	case catalog.MoveLearner:
		if !voter && !learner {
			if err := h.nh.SyncRequestAddNonVoting(ctx, mv.Shard, mv.ReplicaID, addr, 0); err != nil {
				return fmt.Errorf("add non-voting replica %d: %w", mv.ReplicaID, err)
			}
		}
		return nil
	case catalog.MoveReady:
		if !voter {
			if err := h.nh.SyncRequestAddReplica(ctx, mv.Shard, mv.ReplicaID, addr, 0); err != nil {
				return fmt.Errorf("promote replica %d: %w", mv.ReplicaID, err)
			}
		}
		mv.Phase = catalog.MoveVoter
		_, err := h.ctrlPropose(ctx, &catalog.Cmd{Op: catalog.OpMovePhase, Move: &mv})
		return err
	case catalog.MoveVoter:
		if mv.From != 0 && !mv.Rebuild() {
			fromRID := meta.ReplicaID(int(mv.Partition), mv.From)
			if _, ok := m.Nodes[fromRID]; ok {
				if fromRID == lp.replicaID {
					// The leader is the replica leaving: hand over to the new one.
					return h.nh.RequestLeaderTransfer(mv.Shard, mv.ReplicaID)
				}
				if err := h.nh.SyncRequestDeleteReplica(ctx, mv.Shard, fromRID, 0); err != nil {
					return fmt.Errorf("remove replica %d: %w", fromRID, err)
				}
			}
		}
		if _, err := h.ctrlPropose(ctx, &catalog.Cmd{Op: catalog.OpFinishMove, Move: &mv}); err != nil && !errors.Is(err, context.Canceled) {
			return err
		}
		h.log.Info("replica move done", logkey.Topic, mv.Topic, logkey.Partition, int32(mv.Partition), logkey.Shard, mv.Shard,
			"to", mv.Node, "from", mv.From, "rebuild", mv.Rebuild())
	}
	return nil
}
