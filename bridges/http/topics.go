// Topic admin routes: create, list, describe, delete.

package httpapi

import (
	"context"

	"github.com/eddy-broker/eddy"
	"github.com/eddy-broker/eddy/multiraft/catalog"
	"github.com/eddy-broker/eddy/tenants"
	"github.com/valyala/fasthttp"
)

// TopicAdmin creates, lists and deletes topics.
type TopicAdmin interface {
	CreateTopic(ctx context.Context, tenant eddy.TenantID, spec catalog.TopicSpec) (*catalog.TopicMeta, error)
	DeleteTopic(ctx context.Context, ref eddy.TopicRef) error
	AlterTopic(ctx context.Context, ref eddy.TopicRef, config map[string]string, partitions int32) (*catalog.TopicMeta, error)
	Topics(tenant eddy.TenantID) []*catalog.TopicMeta
	// DeleteRecords moves a partition's log start (-1: to its high
	// watermark) and returns the log start after it.
	DeleteRecords(ctx context.Context, ref eddy.TopicRef, p eddy.Partition, before int64) (int64, error)
}

type createTopicReq struct {
	Name              string            `json:"name"`
	Partitions        *int32            `json:"partitions"`
	ReplicationFactor *int              `json:"replication_factor"`
	Config            map[string]string `json:"config"`
}

func (s *Server) createTopic(ctx *fasthttp.RequestCtx, p *tenants.Principal) {
	tm, ok := s.scopedTenant(ctx, p, tenants.Admin, "creating topics")
	if !ok {
		return
	}
	t := tm.Name
	var req createTopicReq
	if err := decodeStrict(ctx.PostBody(), &req); err != nil {
		writeError(ctx, err)
		return
	}
	spec := catalog.TopicSpec{Name: eddy.TopicName(req.Name), Partitions: 1, ReplicationFactor: 1, Config: req.Config}
	if req.Partitions != nil {
		spec.Partitions = *req.Partitions
	}
	if req.ReplicationFactor != nil {
		spec.ReplicationFactor = *req.ReplicationFactor
	}
	c, cancel := s.reqContext(s.cfg.RequestTimeout, false)
	defer cancel()
	meta, err := s.b.CreateTopic(c, t, spec)
	if err != nil {
		writeError(ctx, err)
		return
	}
	writeJSON(ctx, fasthttp.StatusCreated, s.topicJSON(meta, false))
}

type partitionJSON struct {
	Partition     int32    `json:"partition"`
	LogStart      int64    `json:"log_start_offset"`
	HighWatermark int64    `json:"high_watermark"`
	Leader        uint64   `json:"leader"`
	Replicas      []uint64 `json:"replicas"`
	Bytes         int64    `json:"size_bytes"`
	Error         string   `json:"error,omitempty"` // offsets unavailable (the node holding it is down)
	// Quarantined: this node's replica is damaged and set aside (why).
	Quarantined string `json:"quarantined,omitempty"`
}

type topicJSON struct {
	Name              string                `json:"name"`
	Tenant            string                `json:"tenant"`
	Partitions        int32                 `json:"partitions"`
	ReplicationFactor int                   `json:"replication_factor"`
	Config            map[string]string     `json:"config"`
	CreatedMs         int64                 `json:"created_ms"`
	PartitionInfo     []partitionJSON       `json:"partition_info,omitempty"`
	Transform         *transformBindingJSON `json:"transform,omitempty"`
}

func (s *Server) topicJSON(m *catalog.TopicMeta, withOffsets bool) topicJSON {
	tj := topicJSON{Name: string(m.Name), Tenant: string(m.Tenant), Partitions: m.Partitions,
		ReplicationFactor: m.ReplicationFactor, Config: m.EffectiveConfig(), CreatedMs: m.CreatedMs, Transform: s.bindingJSON(m)}
	if withOffsets {
		for _, o := range s.b.TopicOffsets(m) {
			pj := partitionJSON{Partition: int32(o.Partition), LogStart: int64(o.LogStart),
				HighWatermark: int64(o.HighWatermark), Leader: o.Leader, Replicas: o.Replicas, Bytes: o.Bytes, Quarantined: o.Quarantined}
			if o.Err != nil {
				pj.Error = eddy.AsError(o.Err).Message
			}
			tj.PartitionInfo = append(tj.PartitionInfo, pj)
		}
	}
	return tj
}

func (s *Server) listTopics(ctx *fasthttp.RequestCtx, p *tenants.Principal) {
	t, err := s.tenant(ctx, p)
	if err != nil {
		writeError(ctx, err)
		return
	}
	detail := ctx.QueryArgs().GetBool("detail") // with each partition's offsets and size
	out := []topicJSON{}
	for _, m := range s.b.Topics(t) {
		if p.Can(tenants.Describe, t, m.Name) {
			out = append(out, s.topicJSON(m, detail))
		}
	}
	writeJSON(ctx, 200, map[string]any{"topics": out})
}

func (s *Server) describeTopic(ctx *fasthttp.RequestCtx, p *tenants.Principal) {
	m, err := s.topicMeta(ctx, p, tenants.Describe)
	if err != nil {
		writeError(ctx, err)
		return
	}
	tj := s.topicJSON(m, true)
	if tj.Transform != nil && string(ctx.QueryArgs().Peek("nodes")) == "all" {
		tj.Transform.Nodes = s.allNodesStatus(m, tj.Transform.Status)
	}
	writeJSON(ctx, 200, tj)
}

type alterTopicReq struct {
	// Config keys to set; an empty value resets one to its default.
	Config     map[string]string `json:"config"`
	Partitions *int32            `json:"partitions"` // grow to (never shrinks)
}

// alterTopic changes a topic's config or grows its partitions (admin
// scope), as Kafka's IncrementalAlterConfigs and CreatePartitions do.
func (s *Server) alterTopic(ctx *fasthttp.RequestCtx, p *tenants.Principal) {
	ref, err := s.topicRef(ctx, p, tenants.Admin)
	if err != nil {
		writeError(ctx, err)
		return
	}
	var req alterTopicReq
	if err := decodeStrict(ctx.PostBody(), &req); err != nil {
		writeError(ctx, err)
		return
	}
	var parts int32
	if req.Partitions != nil {
		cur, err := s.b.Topic(ref)
		if err != nil {
			writeError(ctx, err)
			return
		}
		if *req.Partitions < cur.Partitions {
			writeError(ctx, eddy.Errorf(eddy.CodeInvalid, "topic %s has %d partitions; it can only grow", ref.Name, cur.Partitions))
			return
		}
		parts = *req.Partitions
	}
	c, cancel := s.reqContext(s.cfg.RequestTimeout, false)
	defer cancel()
	meta, err := s.b.AlterTopic(c, ref, req.Config, parts)
	if err != nil {
		writeError(ctx, err)
		return
	}
	writeJSON(ctx, 200, s.topicJSON(meta, false))
}

func (s *Server) deleteTopic(ctx *fasthttp.RequestCtx, p *tenants.Principal) {
	ref, err := s.topicRef(ctx, p, tenants.Admin)
	if err != nil {
		writeError(ctx, err)
		return
	}
	c, cancel := s.reqContext(s.cfg.RequestTimeout, false)
	defer cancel()
	if err := s.b.DeleteTopic(c, ref); err != nil {
		writeError(ctx, err)
		return
	}
	ctx.SetStatusCode(fasthttp.StatusNoContent)
}

// deleteRecords moves a partition's log start to ?before= (-1: its high
// watermark), as Kafka's DeleteRecords: what is below is no longer read.
// Needs the tenant's admin scope.
func (s *Server) deleteRecords(ctx *fasthttp.RequestCtx, pr *tenants.Principal) {
	ref, p, err := s.partitionRef(ctx, pr, tenants.Admin)
	if err != nil {
		writeError(ctx, err)
		return
	}
	args := ctx.QueryArgs()
	if !args.Has("before") {
		writeError(ctx, eddy.Errorf(eddy.CodeInvalid, "before= is required: the offset the partition's log is to start at (-1: its high watermark)"))
		return
	}
	before, err := intArg(args, "before", -1, -1, 1<<62)
	if err != nil {
		writeError(ctx, err)
		return
	}
	c, cancel := s.reqContext(s.cfg.RequestTimeout, false)
	defer cancel()
	start, err := s.b.DeleteRecords(c, ref, p, before)
	if err != nil {
		writeError(ctx, err)
		return
	}
	writeJSON(ctx, 200, struct {
		Partition int32 `json:"partition"`
		LogStart  int64 `json:"log_start_offset"`
	}{int32(p), start})
}
