package catalog

import (
	"fmt"
	"slices"

	"github.com/eddy-broker/eddy"
)

// This file holds the controller's membership and replica-move commands.
// Like every controller command they are deterministic: the planner and
// the movers (membership.go) decide, and the controller only checks and
// records, so a stale decision is refused rather than applied twice.

func (st *State) applyMembership(cmd *Cmd) Result {
	if cmd.Node == nil || cmd.Node.ID == 0 {
		return errResult(eddy.CodeInvalid, cmd.Op+": missing node")
	}
	id := cmd.Node.ID
	cur, exists := st.Nodes[id]
	switch cmd.Op {
	case OpAddNode:
		if id > MaxNodeID {
			return errResult(eddy.CodeInvalid, fmt.Sprintf("node id must be 1 to %d", MaxNodeID))
		}
		if st.Removed[id] {
			return errResult(eddy.CodeConflict, fmt.Sprintf("node id %d belonged to a removed node; node ids are never reused", id))
		}
		if exists {
			if cur.RaftAddr == cmd.Node.RaftAddr {
				c := *cur
				return Result{Node: &c} // idempotent retry
			}
			return errResult(eddy.CodeConflict, fmt.Sprintf("node %d already exists (raft address %s)", id, cur.RaftAddr))
		}
		for _, n := range st.Nodes {
			if n.RaftAddr == cmd.Node.RaftAddr {
				return errResult(eddy.CodeConflict, fmt.Sprintf("raft address %s is node %d's", n.RaftAddr, n.ID))
			}
		}
		n := NodeMeta{ID: id, RaftAddr: cmd.Node.RaftAddr, State: NodeJoining}
		st.Nodes[id] = &n
		c := n
		return Result{Node: &c}
	case OpDrainNode:
		if !exists {
			return errResult(eddy.CodeNotFound, fmt.Sprintf("node %d is not in the cluster", id))
		}
		if cur.State == NodeDraining || cur.State == NodeDrained {
			c := *cur
			return Result{Node: &c}
		}
		remaining := len(st.ActiveNodeIDs())
		if cur.Active() {
			remaining--
		}
		if remaining < 1 {
			return errResult(eddy.CodeConflict, fmt.Sprintf("node %d is the last active node", id))
		}
		for _, t := range st.Topics {
			if t.ReplicationFactor > remaining {
				return errResult(eddy.CodeConflict, fmt.Sprintf("topic %s has replication factor %d, and only %d node(s) would remain; add a node first", t.Name, t.ReplicationFactor, remaining))
			}
		}
		c := *cur
		c.State = NodeDraining
		st.Nodes[id] = &c
		out := c
		return Result{Node: &out}
	case OpNodeDrained:
		if !exists || (cur.State != NodeDraining && cur.State != NodeDrained) {
			return errResult(eddy.CodeConflict, fmt.Sprintf("node %d is not draining", id))
		}
		if n := st.HostedBy(id); n > 0 {
			return errResult(eddy.CodeConflict, fmt.Sprintf("node %d still holds %d partition replica(s)", id, n))
		}
		c := *cur
		c.State = NodeDrained
		st.Nodes[id] = &c
		return Result{}
	case OpRemoveNode:
		if !exists {
			return errResult(eddy.CodeNotFound, fmt.Sprintf("node %d is not in the cluster", id))
		}
		if cur.State != NodeDraining && cur.State != NodeDrained && cur.State != NodeJoining {
			return errResult(eddy.CodeConflict, fmt.Sprintf("node %d must be drained before it is removed", id))
		}
		if n := st.HostedBy(id); n > 0 {
			return errResult(eddy.CodeConflict, fmt.Sprintf("node %d still holds %d partition replica(s)", id, n))
		}
		delete(st.Nodes, id)
		if st.Removed == nil {
			st.Removed = map[uint64]bool{}
		}
		st.Removed[id] = true
		return Result{}
	}
	return errResult(eddy.CodeInvalid, "controller: unknown op "+cmd.Op)
}

// hostedBy counts the partition replicas on a node, moves included.
func (st *State) HostedBy(id uint64) int {
	n := 0
	for _, t := range st.Topics {
		for p := range t.Replicas {
			if slices.Contains(t.Replicas[p], id) {
				n++
			}
		}
	}
	for _, m := range st.Moves {
		if m.Node == id && m.Phase != MoveVoter {
			n++
		}
	}
	return n
}

// topicOfShard finds the topic and partition of a partition shard.
func (st *State) TopicOfShard(shard uint64) (string, *TopicMeta, int) {
	for ref, t := range st.Topics {
		for p, s := range t.Shards {
			if s == shard {
				return ref, t, p
			}
		}
	}
	return "", nil, -1
}

func (st *State) applyMove(cmd *Cmd) Result {
	mv := cmd.Move
	if mv == nil || mv.Shard == 0 {
		return errResult(eddy.CodeInvalid, cmd.Op+": missing move")
	}
	ref, t, p := st.TopicOfShard(mv.Shard)
	if t == nil {
		return errResult(eddy.CodeNotFound, fmt.Sprintf("no partition has shard %d", mv.Shard))
	}
	cur := st.Moves[mv.Shard]
	switch cmd.Op {
	case OpStartMove:
		if cur != nil {
			return errResult(eddy.CodeConflict, fmt.Sprintf("shard %d is already moving to node %d", mv.Shard, cur.Node))
		}
		n, ok := st.Nodes[mv.Node]
		if !ok || !n.Active() {
			return errResult(eddy.CodeConflict, fmt.Sprintf("node %d cannot take replicas", mv.Node))
		}
		if slices.Contains(t.Replicas[p], mv.Node) {
			return errResult(eddy.CodeConflict, fmt.Sprintf("node %d already holds shard %d", mv.Node, mv.Shard))
		}
		if mv.From != 0 && !slices.Contains(t.Replicas[p], mv.From) {
			return errResult(eddy.CodeConflict, fmt.Sprintf("node %d holds no replica of shard %d", mv.From, mv.Shard))
		}
		if st.NextReplicaID <= MaxNodeID {
			st.NextReplicaID = MaxNodeID + 1
		}
		m := &Move{Shard: mv.Shard, Topic: ref, Partition: eddy.Partition(p), Node: mv.Node,
			ReplicaID: st.NextReplicaID, From: mv.From, Phase: MoveLearner}
		st.NextReplicaID++
		nt := t.Clone()
		nt.ReplicaIDs[p][mv.Node] = m.ReplicaID
		st.Topics[ref] = nt
		if st.Moves == nil {
			st.Moves = map[uint64]*Move{}
		}
		st.Moves[mv.Shard] = m
		c := *m
		return Result{Move: &c}
	case OpRebuild:
		// A node found its replica damaged: a new replica (new ReplicaID:
		// a removed one never comes back) replaces it on the same node,
		// streamed from the others. The damaged one leaves the shard first:
		// one NodeHost cannot run two replicas of a shard.
		if cur != nil {
			return errResult(eddy.CodeConflict, fmt.Sprintf("shard %d is already moving to node %d", mv.Shard, cur.Node))
		}
		if !slices.Contains(t.Replicas[p], mv.Node) {
			return errResult(eddy.CodeConflict, fmt.Sprintf("node %d holds no replica of shard %d", mv.Node, mv.Shard))
		}
		if len(t.Replicas[p]) < 2 {
			return errResult(eddy.CodeConflict, fmt.Sprintf("shard %d has no other replica to rebuild from; repair it", mv.Shard))
		}
		if st.NextReplicaID <= MaxNodeID {
			st.NextReplicaID = MaxNodeID + 1
		}
		m := &Move{Shard: mv.Shard, Topic: ref, Partition: eddy.Partition(p), Node: mv.Node, From: mv.Node,
			ReplicaID: st.NextReplicaID, OldReplicaID: t.ReplicaID(p, mv.Node), Phase: MoveRebuild}
		st.NextReplicaID++
		if st.Moves == nil {
			st.Moves = map[uint64]*Move{}
		}
		st.Moves[mv.Shard] = m
		c := *m
		return Result{Move: &c}
	case OpMovePhase:
		if cur == nil || cur.ReplicaID != mv.ReplicaID {
			return errResult(eddy.CodeNotFound, fmt.Sprintf("no such move of shard %d", mv.Shard))
		}
		switch {
		case cur.Phase == mv.Phase:
		case cur.Phase == MoveRebuild && mv.Phase == MoveLearner:
			// The damaged replica left the shard: the node's replica is the
			// new one from now on.
			nt := t.Clone()
			nt.ReplicaIDs[p][cur.Node] = cur.ReplicaID
			st.Topics[ref] = nt
			cur.Phase = MoveLearner
		case cur.Phase == MoveLearner && mv.Phase == MoveReady:
			cur.Phase = MoveReady
		case mv.Phase == MoveVoter && cur.Phase != MoveVoter && cur.Phase != MoveRebuild:
			nt := t.Clone()
			if !slices.Contains(nt.Replicas[p], cur.Node) {
				nt.Replicas[p] = append(nt.Replicas[p], cur.Node)
			}
			st.Topics[ref] = nt
			cur.Phase = MoveVoter
		default:
			return errResult(eddy.CodeConflict, fmt.Sprintf("move of shard %d is in phase %s, not before %s", mv.Shard, cur.Phase, mv.Phase))
		}
		c := *cur
		return Result{Move: &c}
	case OpFinishMove:
		if cur == nil || cur.ReplicaID != mv.ReplicaID {
			return errResult(eddy.CodeNotFound, fmt.Sprintf("no such move of shard %d", mv.Shard))
		}
		if cur.Phase != MoveVoter {
			return errResult(eddy.CodeConflict, fmt.Sprintf("move of shard %d is in phase %s", mv.Shard, cur.Phase))
		}
		if cur.From != 0 && !cur.Rebuild() {
			nt := t.Clone()
			nt.Replicas[p] = slices.DeleteFunc(nt.Replicas[p], func(n uint64) bool { return n == cur.From })
			delete(nt.ReplicaIDs[p], cur.From)
			st.Topics[ref] = nt
		}
		delete(st.Moves, mv.Shard)
		return Result{}
	}
	return errResult(eddy.CodeInvalid, "controller: unknown op "+cmd.Op)
}
