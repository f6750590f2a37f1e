package multiraft

import (
	"encoding/json"
	"io"
	"sort"
	"sync"

	"github.com/eddy-broker/eddy"
	sm "github.com/lni/dragonboat/v4/statemachine"
)

// ControllerShardID is the Raft shard of the cluster's metadata.
const ControllerShardID uint64 = 1

// firstPartitionShard is the first shard id handed to a partition.
const firstPartitionShard uint64 = 1000

// NodeMeta is a node as the controller knows it.
type NodeMeta struct {
	ID       uint64 `json:"id"`
	RaftAddr string `json:"raft_addr"`
	HTTPAddr string `json:"http_addr,omitempty"`
}

// controllerState is everything the controller shard replicates. It changes
// only in Update, deterministically.
type controllerState struct {
	Nodes          map[uint64]*NodeMeta  `json:"nodes"`
	Topics         map[string]*TopicMeta `json:"topics"` // by "tenant/name"
	NextShard      uint64                `json:"next_shard"`
	NextProducerID int64                 `json:"next_producer_id"`
}

func newControllerState() *controllerState {
	return &controllerState{Nodes: map[uint64]*NodeMeta{}, Topics: map[string]*TopicMeta{}, NextShard: firstPartitionShard}
}

// ctrlCmd is one controller command, JSON-encoded in a Raft entry.
type ctrlCmd struct {
	Op    string     `json:"op"`
	Node  *NodeMeta  `json:"node,omitempty"`
	Topic *TopicMeta `json:"topic,omitempty"`
	Ref   string     `json:"ref,omitempty"`
}

const (
	opRegisterNode  = "register_node"
	opCreateTopic   = "create_topic"
	opDeleteTopic   = "delete_topic"
	opAllocProducer = "alloc_producer"
)

// ctrlResult is the Data of a controller entry's result.
type ctrlResult struct {
	Err        *resultErr `json:"err,omitempty"`
	Topic      *TopicMeta `json:"topic,omitempty"`
	ProducerID int64      `json:"producer_id,omitempty"`
}

type resultErr struct {
	Code    eddy.Code `json:"code"`
	Message string    `json:"message"`
}

// controllerSM is the controller shard's state machine: small, in memory,
// snapshotted whole. Readers on this node use view() directly.
type controllerSM struct {
	mu       sync.RWMutex
	st       *controllerState
	onChange func()
}

var _ sm.IStateMachine = (*controllerSM)(nil)

func (c *controllerSM) Update(e sm.Entry) (sm.Result, error) {
	var cmd ctrlCmd
	var res ctrlResult
	if err := json.Unmarshal(e.Cmd, &cmd); err != nil {
		res.Err = &resultErr{Code: eddy.CodeInvalid, Message: "controller: undecodable command"}
	} else {
		c.mu.Lock()
		res = c.apply(&cmd)
		c.mu.Unlock()
	}
	data, _ := json.Marshal(&res)
	if c.onChange != nil {
		c.onChange()
	}
	return sm.Result{Value: 1, Data: data}, nil
}

func (c *controllerSM) apply(cmd *ctrlCmd) ctrlResult {
	st := c.st
	switch cmd.Op {
	case opRegisterNode:
		if cmd.Node == nil || cmd.Node.ID == 0 {
			return errResult(eddy.CodeInvalid, "register_node: missing node")
		}
		n := *cmd.Node
		st.Nodes[n.ID] = &n
		return ctrlResult{}
	case opAllocProducer:
		st.NextProducerID++
		return ctrlResult{ProducerID: st.NextProducerID}
	case opCreateTopic:
		t := cmd.Topic
		if t == nil {
			return errResult(eddy.CodeInvalid, "create_topic: missing topic")
		}
		ref := t.Ref().String()
		if _, ok := st.Topics[ref]; ok {
			return errResult(eddy.CodeTopicExists, "topic "+string(t.Name)+" already exists")
		}
		spec := TopicSpec{Name: t.Name, Partitions: t.Partitions, ReplicationFactor: t.ReplicationFactor, Config: t.Config}
		if err := spec.Validate(len(st.Nodes)); err != nil {
			e := eddy.AsError(err)
			return errResult(e.Code, e.Message)
		}
		nt := *t
		nt.Shards = make([]uint64, t.Partitions)
		nt.Replicas = make([][]uint64, t.Partitions)
		nodes := st.sortedNodeIDs()
		for p := range nt.Shards {
			shard := st.NextShard
			st.NextShard++
			nt.Shards[p] = shard
			// Spread replicas round-robin from a shard-dependent start.
			start := int(shard % uint64(len(nodes)))
			for r := 0; r < t.ReplicationFactor; r++ {
				nt.Replicas[p] = append(nt.Replicas[p], nodes[(start+r)%len(nodes)])
			}
		}
		st.Topics[ref] = &nt
		return ctrlResult{Topic: &nt}
	case opDeleteTopic:
		if _, ok := st.Topics[cmd.Ref]; !ok {
			return errResult(eddy.CodeNotFound, "topic does not exist")
		}
		delete(st.Topics, cmd.Ref)
		return ctrlResult{}
	}
	return errResult(eddy.CodeInvalid, "controller: unknown op "+cmd.Op)
}

func errResult(code eddy.Code, msg string) ctrlResult {
	return ctrlResult{Err: &resultErr{Code: code, Message: msg}}
}

func (st *controllerState) sortedNodeIDs() []uint64 {
	ids := make([]uint64, 0, len(st.Nodes))
	for id := range st.Nodes {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids
}

// view runs fn with the state read-locked. fn must not keep references.
func (c *controllerSM) view(fn func(st *controllerState)) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	fn(c.st)
}

// Lookup serves SyncRead, which the host uses only as a barrier (the local
// state is read through view once it returns).
func (c *controllerSM) Lookup(q any) (any, error) { return nil, nil }

func (c *controllerSM) SaveSnapshot(w io.Writer, _ sm.ISnapshotFileCollection, _ <-chan struct{}) error {
	c.mu.RLock()
	b, err := json.Marshal(c.st)
	c.mu.RUnlock()
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

func (c *controllerSM) RecoverFromSnapshot(r io.Reader, _ []sm.SnapshotFile, _ <-chan struct{}) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	st := newControllerState()
	if err := json.Unmarshal(b, st); err != nil {
		return err
	}
	c.mu.Lock()
	c.st = st
	c.mu.Unlock()
	if c.onChange != nil {
		c.onChange()
	}
	return nil
}

func (c *controllerSM) Close() error { return nil }
