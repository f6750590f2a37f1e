package httpapi

import (
	"context"
	"net/http"
	"sort"
	"time"

	"github.com/eddy-broker/eddy"
	"github.com/eddy-broker/eddy/multiraft/catalog"
	"github.com/eddy-broker/eddy/tenants"
	"github.com/valyala/fasthttp"
)

// LinkAdmin keeps a tenant's links to other clusters (package links runs
// them).
type LinkAdmin interface {
	CreateLink(ctx context.Context, tenant eddy.TenantID, name string, spec catalog.LinkSpec) (*catalog.LinkMeta, error)
	DeleteLink(ctx context.Context, tenant eddy.TenantID, name string) error
	PauseLink(ctx context.Context, tenant eddy.TenantID, name string, paused bool) (*catalog.LinkMeta, error)
	Links(tenant eddy.TenantID) []*catalog.LinkMeta
	Link(tenant eddy.TenantID, name string) (*catalog.LinkMeta, error)
}

func (s *Server) linkRoutes(g interface {
	GET(string, fasthttp.RequestHandler)
	POST(string, fasthttp.RequestHandler)
	DELETE(string, fasthttp.RequestHandler)
}) {
	g.POST("/links", s.authed(s.createLink))
	g.GET("/links", s.authed(s.listLinks))
	g.GET("/links/{name}", s.authed(s.describeLink))
	g.DELETE("/links/{name}", s.authed(s.deleteLink))
	g.POST("/links/{name}/pause", s.authed(s.pauseLink(true)))
	g.POST("/links/{name}/resume", s.authed(s.pauseLink(false)))
}

// LinkView is a link as the API shows it (and the CLI reads it): its spec
// (the password only as password_set), its totals and, in a describe,
// each partition.
type LinkView struct {
	Name string `json:"name"`
	catalog.LinkSpec
	PasswordSet bool                `json:"password_set"`
	Paused      bool                `json:"paused"`
	CreatedMs   int64               `json:"created_ms"`
	State       string              `json:"state"`
	Totals      LinkTotals          `json:"totals"`
	Partitions  []LinkPartitionView `json:"partitions,omitempty"`
}

// LinkTotals sums a link's partitions (backlog_seconds: the oldest).
type LinkTotals struct {
	BacklogRecords int64   `json:"backlog_records"`
	BacklogBytes   int64   `json:"backlog_bytes"`
	BacklogSeconds float64 `json:"backlog_seconds"`
	Dropped        int64   `json:"dropped"`
	Resets         int64   `json:"resets"`
	BytesSent      int64   `json:"bytes_sent"`
}

// LinkPartitionView is one source partition of a link.
type LinkPartitionView struct {
	Topic          eddy.TopicName `json:"topic"`
	Partition      eddy.Partition `json:"partition"`
	TargetTopic    string         `json:"target_topic"`
	End            int64          `json:"end"`
	Forwarded      int64          `json:"forwarded"` // every record below is acknowledged by the target
	InFlight       int64          `json:"in_flight"`
	BacklogRecords int64          `json:"backlog_records"`
	BacklogBytes   int64          `json:"backlog_bytes"`
	BacklogSeconds float64        `json:"backlog_seconds"`
	State          string         `json:"state"`
	Error          string         `json:"error,omitempty"`
	Node           uint64         `json:"node,omitempty"`
	ProducerID     int64          `json:"producer_id"`
	ProducerEpoch  int16          `json:"producer_epoch"`
	Sequence       int32          `json:"sequence"`
	Dropped        int64          `json:"dropped"`
	Resets         int64          `json:"resets"`
	BytesSent      int64          `json:"bytes_sent"`
	UpdatedMs      int64          `json:"updated_ms,omitempty"`
}

// linkView renders a link; live reads each partition's end from its
// replicas (a describe), else the end its runner last reported.
func (s *Server) linkView(l *catalog.LinkMeta, live bool) LinkView {
	out := LinkView{Name: l.Name, LinkSpec: l.LinkSpec, PasswordSet: l.Password != "", Paused: l.Paused, CreatedMs: l.CreatedMs}
	out.Password = ""
	now := time.Now().UnixMilli()
	states := map[string]int{}
	for _, p := range l.Partitions {
		pj := LinkPartitionView{Topic: p.Topic, Partition: p.Partition, TargetTopic: l.TargetPrefix + string(p.Topic), End: p.End,
			Forwarded: p.Sent, InFlight: p.InFlight, BacklogBytes: p.BacklogBytes, State: p.State, Error: p.Error, Node: p.Node,
			ProducerID: p.ProducerID, ProducerEpoch: p.Epoch, Sequence: p.Seq, Dropped: p.Dropped, Resets: p.Resets, BytesSent: p.Bytes, UpdatedMs: p.UpdatedMs}
		if live {
			if po, err := s.b.Offsets(eddy.TopicRef{Tenant: l.Tenant, Name: p.Topic}, p.Partition); err == nil {
				pj.End = int64(po.HighWatermark)
			}
		}
		pj.BacklogRecords = max(0, pj.End-p.Sent)
		if pj.BacklogRecords == 0 {
			pj.BacklogBytes = 0
		} else if p.OldestMs > 0 {
			pj.BacklogSeconds = max(0, float64(now-p.OldestMs)/1000)
		}
		if l.Paused {
			pj.State = catalog.LinkPaused
		}
		states[pj.State]++
		t := &out.Totals
		t.BacklogRecords += pj.BacklogRecords
		t.BacklogBytes += pj.BacklogBytes
		t.BacklogSeconds = max(t.BacklogSeconds, pj.BacklogSeconds)
		t.Dropped += p.Dropped
		t.Resets += p.Resets
		t.BytesSent += p.Bytes
		out.Partitions = append(out.Partitions, pj)
	}
	sort.Slice(out.Partitions, func(i, j int) bool {
		a, b := out.Partitions[i], out.Partitions[j]
		return a.Topic < b.Topic || a.Topic == b.Topic && a.Partition < b.Partition
	})
	// The link's state is its worst partition's.
	out.State = "starting"
	for _, st := range []string{catalog.LinkPaused, catalog.LinkFailing, catalog.LinkBackingOff, catalog.LinkConnected} {
		if states[st] > 0 {
			out.State = st
			break
		}
	}
	if l.Paused {
		out.State = catalog.LinkPaused
	}
	return out
}

func (s *Server) createLink(ctx *fasthttp.RequestCtx, p *tenants.Principal) {
	tm, ok := s.scopedTenant(ctx, p, tenants.Admin, "creating links")
	if !ok {
		return
	}
	var req struct {
		Name string `json:"name"`
		catalog.LinkSpec
	}
	if err := decodeStrict(ctx.PostBody(), &req); err != nil {
		writeError(ctx, err)
		return
	}
	if s.cfg.LinkTargets != nil {
		if err := s.cfg.LinkTargets(tm.Name, req.To); err != nil {
			writeError(ctx, err)
			return
		}
	}
	c, cancel := s.reqContext(s.cfg.RequestTimeout, false)
	defer cancel()
	l, err := s.b.CreateLink(c, tm.Name, req.Name, req.LinkSpec)
	if err != nil {
		writeError(ctx, err)
		return
	}
	writeJSON(ctx, http.StatusCreated, s.linkView(l, false))
}

func (s *Server) listLinks(ctx *fasthttp.RequestCtx, p *tenants.Principal) {
	tm, ok := s.scopedTenant(ctx, p, tenants.Admin, "listing links")
	if !ok {
		return
	}
	out := []LinkView{}
	for _, l := range s.b.Links(tm.Name) {
		v := s.linkView(l, false)
		v.Partitions = nil
		out = append(out, v)
	}
	writeJSON(ctx, 200, map[string]any{"links": out})
}

func (s *Server) describeLink(ctx *fasthttp.RequestCtx, p *tenants.Principal) {
	tm, ok := s.scopedTenant(ctx, p, tenants.Admin, "describing links")
	if !ok {
		return
	}
	name, _ := ctx.UserValue("name").(string)
	l, err := s.b.Link(tm.Name, name)
	if err != nil {
		writeError(ctx, err)
		return
	}
	writeJSON(ctx, 200, s.linkView(l, true))
}

func (s *Server) deleteLink(ctx *fasthttp.RequestCtx, p *tenants.Principal) {
	tm, ok := s.scopedTenant(ctx, p, tenants.Admin, "deleting links")
	if !ok {
		return
	}
	name, _ := ctx.UserValue("name").(string)
	c, cancel := s.reqContext(s.cfg.RequestTimeout, false)
	defer cancel()
	if err := s.b.DeleteLink(c, tm.Name, name); err != nil {
		writeError(ctx, err)
		return
	}
	ctx.SetStatusCode(http.StatusNoContent)
}

func (s *Server) pauseLink(paused bool) func(*fasthttp.RequestCtx, *tenants.Principal) {
	return func(ctx *fasthttp.RequestCtx, p *tenants.Principal) {
		tm, ok := s.scopedTenant(ctx, p, tenants.Admin, "pausing links")
		if !ok {
			return
		}
		name, _ := ctx.UserValue("name").(string)
		c, cancel := s.reqContext(s.cfg.RequestTimeout, false)
		defer cancel()
		l, err := s.b.PauseLink(c, tm.Name, name, paused)
		if err != nil {
			writeError(ctx, err)
			return
		}
		writeJSON(ctx, 200, s.linkView(l, false))
	}
}
