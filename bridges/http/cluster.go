package httpapi

import (
	"context"
	"strconv"

	"github.com/eddy-broker/eddy/multiraft"
	"github.com/eddy-broker/eddy/multiraft/catalog"

	"github.com/eddy-broker/eddy"
	"github.com/valyala/fasthttp"
)

// ClusterAdmin is the node and cluster side: membership, health, repair.
type ClusterAdmin interface {
	NodeID() uint64
	Cluster() []multiraft.NodeStatus
	Moves() []catalog.Move
	AddNode(ctx context.Context, id uint64, raftAddr string) (*catalog.NodeMeta, error)
	RemoveNode(ctx context.Context, id uint64) (*catalog.NodeMeta, error)
	Ready() error
	Checksum(ctx context.Context, ref eddy.TopicRef, p eddy.Partition, upto int64, room multiraft.ReadRoom) (*multiraft.Checksum, error)
	Quarantined() []multiraft.Quarantine
	RepairPartition(ctx context.Context, ref eddy.TopicRef, p eddy.Partition) (*multiraft.RepairResult, error)
	Health() multiraft.Health
	ControllerLeader() uint64
}

// cluster answers GET /v1/cluster: the nodes and the replica moves in
// progress.
func (s *Server) cluster(ctx *fasthttp.RequestCtx) {
	moves := s.b.Moves()
	if moves == nil {
		moves = []catalog.Move{}
	}
	writeJSON(ctx, 200, map[string]any{"node_id": s.b.NodeID(), "nodes": s.b.Cluster(), "moves": moves})
}

// addNode answers POST /v1/cluster/nodes {"id","raft_addr"}: the node is
// added as joining; the process started with --join on that address then
// joins, and replicas move onto it.
func (s *Server) addNode(ctx *fasthttp.RequestCtx) {
	var req struct {
		ID       uint64 `json:"id"`
		RaftAddr string `json:"raft_addr"`
	}
	if err := decodeStrict(ctx.PostBody(), &req); err != nil {
		writeError(ctx, err)
		return
	}
	c, cancel := s.reqContext(s.cfg.RequestTimeout, false)
	defer cancel()
	n, err := s.b.AddNode(c, req.ID, req.RaftAddr)
	if err != nil {
		writeError(ctx, err)
		return
	}
	writeJSON(ctx, fasthttp.StatusAccepted, n)
}

// removeNode answers DELETE /v1/cluster/nodes/{id}: the node is drained
// (its replicas move away), then removed; GET /v1/cluster shows progress.
func (s *Server) removeNode(ctx *fasthttp.RequestCtx) {
	id, err := strconv.ParseUint(ctx.UserValue("id").(string), 10, 64)
	if err != nil || id == 0 {
		writeError(ctx, eddy.Errorf(eddy.CodeInvalid, "node id must be a positive integer"))
		return
	}
	c, cancel := s.reqContext(s.cfg.RequestTimeout, false)
	defer cancel()
	n, err := s.b.RemoveNode(c, id)
	if err != nil {
		writeError(ctx, err)
		return
	}
	writeJSON(ctx, fasthttp.StatusAccepted, n)
}

type clusterPartitionJSON struct {
	Tenant            string `json:"tenant"`
	Topic             string `json:"topic"`
	ReplicationFactor int    `json:"replication_factor"`
	partitionJSON
}

// clusterPartitions (operator) lists every partition of every tenant with
// its leader, replicas, offsets and size: the cluster's map in one call.
func (s *Server) clusterPartitions(ctx *fasthttp.RequestCtx) {
	out := []clusterPartitionJSON{}
	for _, t := range s.b.Tenants() {
		for _, m := range s.b.Topics(t.Name) {
			for _, o := range s.b.TopicOffsets(m) {
				cp := clusterPartitionJSON{Tenant: string(m.Tenant), Topic: string(m.Name), ReplicationFactor: m.ReplicationFactor,
					partitionJSON: partitionJSON{Partition: int32(o.Partition), LogStart: int64(o.LogStart), HighWatermark: int64(o.HighWatermark),
						Leader: o.Leader, Replicas: o.Replicas, Bytes: o.Bytes, Quarantined: o.Quarantined}}
				if o.Err != nil {
					cp.Error = eddy.AsError(o.Err).Message
				}
				out = append(out, cp)
			}
		}
	}
	writeJSON(ctx, 200, map[string]any{"partitions": out})
}
