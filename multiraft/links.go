package multiraft

import (
	"context"
	"time"

	"github.com/eddy-broker/eddy"
	"github.com/eddy-broker/eddy/multiraft/catalog"
)

// Links (catalog/links.go) are replicated here; package links runs them.

// CreateLink stores a tenant's new link.
func (h *Host) CreateLink(ctx context.Context, tenant eddy.TenantID, name string, spec catalog.LinkSpec) (*catalog.LinkMeta, error) {
	res, err := h.tenantPropose(ctx, tenant, &catalog.Cmd{Op: catalog.OpCreateLink, Link: &catalog.LinkCmd{Tenant: tenant, Name: name, Spec: &spec, NowMs: time.Now().UnixMilli()}})
	if err != nil {
		return nil, err
	}
	return res.Link, nil
}

// DeleteLink deletes a link and its progress.
func (h *Host) DeleteLink(ctx context.Context, tenant eddy.TenantID, name string) error {
	_, err := h.tenantPropose(ctx, tenant, &catalog.Cmd{Op: catalog.OpDeleteLink, Link: &catalog.LinkCmd{Tenant: tenant, Name: name}})
	return err
}

// PauseLink pauses (or resumes) a link: its runners stop sending; the
// backlog it holds back from retention stays held, up to its caps.
func (h *Host) PauseLink(ctx context.Context, tenant eddy.TenantID, name string, paused bool) (*catalog.LinkMeta, error) {
	res, err := h.tenantPropose(ctx, tenant, &catalog.Cmd{Op: catalog.OpPauseLink, Link: &catalog.LinkCmd{Tenant: tenant, Name: name, Paused: paused}})
	if err != nil {
		return nil, err
	}
	return res.Link, nil
}

// LinkProgress applies a runner's compare-and-set updates.
func (h *Host) LinkProgress(ctx context.Context, tenant eddy.TenantID, name string, ups []catalog.LinkProgress) (*catalog.LinkMeta, error) {
	res, err := h.ctrlPropose(ctx, &catalog.Cmd{Op: catalog.OpLinkProgress, Link: &catalog.LinkCmd{Tenant: tenant, Name: name, Progress: ups}})
	if err != nil {
		return nil, err
	}
	return res.Link, nil
}

// Links lists a tenant's links, secrets redacted.
func (h *Host) Links(tenant eddy.TenantID) []*catalog.LinkMeta {
	var out []*catalog.LinkMeta
	h.ctrl.view(func(st *catalog.State) {
		for _, l := range st.LinksOf(tenant) {
			out = append(out, l.Redacted())
		}
	})
	return out
}

// Link describes one link, secrets redacted, or CodeNotFound.
func (h *Host) Link(tenant eddy.TenantID, name string) (*catalog.LinkMeta, error) {
	var out *catalog.LinkMeta
	h.ctrl.view(func(st *catalog.State) {
		if l, ok := st.Links[catalog.LinkKey(tenant, name)]; ok {
			out = l.Redacted()
		}
	})
	if out == nil {
		return nil, eddy.Errorf(eddy.CodeNotFound, "link %s does not exist", name)
	}
	return out, nil
}

// AllLinks is every link with its secret, for the runners. The metas are
// shared with the controller's state: read only.
func (h *Host) AllLinks() []*catalog.LinkMeta {
	var out []*catalog.LinkMeta
	h.ctrl.view(func(st *catalog.State) {
		for _, l := range st.Links {
			out = append(out, l)
		}
	})
	return out
}

// Leads reports whether this node's replica leads the partition.
func (h *Host) Leads(meta *catalog.TopicMeta, p eddy.Partition) bool {
	n, _, ok := h.PartitionLeader(meta, p)
	return ok && n == h.cfg.NodeID
}

// Backlog is what a link has not sent of a local partition.
type Backlog struct {
	Start, End int64 // the log's offsets
	Bytes      int64 // stored bytes from the link's position to the end (whole segments)
	// Cut is where the link's caps say its backlog starts: the first
	// offset of the oldest segment it may keep (its position when within
	// the caps).
	Cut int64
}

// LinkBacklog measures a partition's backlog from offset from, under the
// caps maxBytes and maxAgeMs (0: none): past them, whole oldest segments
// are given up, as retention gives them up.
func (h *Host) LinkBacklog(meta *catalog.TopicMeta, p eddy.Partition, from, maxBytes, maxAgeMs int64) (Backlog, error) {
	lg, err := h.replicaLog(meta, p)
	if err != nil {
		return Backlog{}, err
	}
	var b Backlog
	b.Start, b.End = lg.Offsets()
	segs := lg.Segments()
	i := 0
	for i < len(segs) && segs[i].End <= from {
		i++
	}
	segs = segs[i:]
	for _, s := range segs {
		b.Bytes += s.Size
	}
	b.Cut = max(from, b.Start)
	if len(segs) > 0 {
		b.Cut = max(b.Cut, RetentionPoint(segs, time.Now().UnixMilli(), maxAgeMs, maxBytes))
	}
	return b, nil
}
