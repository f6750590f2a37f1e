// Operations routes: health, readiness, metrics, and a partition's
// checksum and repair on this node.

package httpapi

import (
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/eddy-broker/eddy"
	"github.com/eddy-broker/eddy/internal/netguard"
	"github.com/eddy-broker/eddy/multiraft"
	"github.com/eddy-broker/eddy/series"
	"github.com/eddy-broker/eddy/tenants"
	"github.com/valyala/fasthttp"
)

func (s *Server) healthz(ctx *fasthttp.RequestCtx) {
	writeJSON(ctx, 200, map[string]string{"status": "ok"})
}

func (s *Server) readyz(ctx *fasthttp.RequestCtx) {
	if !s.started.Load() {
		writeJSON(ctx, 503, map[string]string{"status": "not_ready", "reason": "the node is starting"})
		return
	}
	if err := s.b.Ready(); err != nil {
		writeJSON(ctx, 503, map[string]string{"status": "not_ready", "reason": eddy.AsError(err).Message})
		return
	}
	ls := []netguard.Status{s.ln.Status()}
	if s.cfg.Listeners != nil {
		ls = append(ls, s.cfg.Listeners()...)
	}
	for _, l := range ls {
		if !l.Serving {
			why := "closed"
			if l.Starved {
				why = "out of file descriptors"
			}
			writeJSON(ctx, 503, map[string]any{"status": "not_ready", "reason": "the " + l.Name + " listener is not accepting connections (" + why + ")", "listeners": ls})
			return
		}
	}
	// A quarantined replica does not make the node unready: its other
	// partitions serve. It is named here, in topic describe and in
	// eddy_partition_quarantined.
	if q := s.b.Quarantined(); len(q) > 0 {
		writeJSON(ctx, 200, map[string]any{"status": "ready", "quarantined": q})
		return
	}
	writeJSON(ctx, 200, map[string]string{"status": "ready"})
}

// checksum answers a digest of this node's replica of a partition up to an
// offset (?upto=, default its high watermark), for checking that replicas
// are byte-identical.
func (s *Server) checksum(ctx *fasthttp.RequestCtx, pr *tenants.Principal) {
	ref, p, err := s.partitionRef(ctx, pr, tenants.Consume)
	if err != nil {
		writeError(ctx, err)
		return
	}
	upto, err := intArg(ctx.QueryArgs(), "upto", 0, 0, 1<<62)
	if err != nil {
		writeError(ctx, err)
		return
	}
	if string(ctx.QueryArgs().Peek("nodes")) == "all" {
		s.checksumReplicas(ctx, ref, p, upto)
		return
	}
	c, err := s.digest(ref, p, upto)
	if err != nil {
		writeError(ctx, err)
		return
	}
	writeJSON(ctx, 200, c)
}

// digest is this node's checksum of a partition replica, one of the
// tenant's reads (readSlot): each read of the replica takes room in the
// tenant's share of the request memory (refused 429 when there is none),
// and it stops when the node does or after checksumTimeout.
func (s *Server) digest(ref eddy.TopicRef, p eddy.Partition, upto int64) (*multiraft.Checksum, error) {
	done, err := s.readSlot(ref.Tenant)
	if err != nil {
		return nil, err
	}
	defer done()
	c, cancel := s.reqContext(checksumTimeout, true)
	defer cancel()
	return s.b.Checksum(c, ref, p, upto, func(n int) (func(), error) {
		hold, err := s.answerRoom(ref.Tenant, n)
		return hold.Release, err
	})
}

// checksumTimeout bounds a checksum: a partition of a few GB read at the
// few tens of MB/s of an SD card.
const checksumTimeout = 10 * time.Minute

type replicaChecksum struct {
	Node  uint64              `json:"node"`
	Sum   *multiraft.Checksum `json:"checksum,omitempty"`
	Error string              `json:"error,omitempty"`
}

// checksumReplicas asks every replica of the partition for its checksum up
// to one offset (upto, or the lowest end the replicas report) and says
// whether they agree: a replica verification in one call.
func (s *Server) checksumReplicas(ctx *fasthttp.RequestCtx, ref eddy.TopicRef, p eddy.Partition, upto int64) {
	po, err := s.b.Offsets(ref, p)
	if err != nil {
		writeError(ctx, err)
		return
	}
	var nodes []multiraft.NodeStatus
	for _, n := range s.b.Cluster() {
		if slices.Contains(po.Replicas, n.ID) {
			nodes = append(nodes, n)
		}
	}
	ask := func(upto int64) []replicaChecksum {
		path := fmt.Sprintf("/v1/tenants/%s/topics/%s/partitions/%d/checksum?upto=%d", url.PathEscape(string(ref.Tenant)), url.PathEscape(string(ref.Name)), p, upto)
		answers := s.askNodes(nodes, path)
		out := make([]replicaChecksum, len(nodes))
		for i, n := range nodes {
			out[i].Node = n.ID
			var err error
			if n.ID == s.b.NodeID() {
				out[i].Sum, err = s.digest(ref, p, upto)
			} else if err = answers[i].err; err == nil {
				out[i].Sum = new(multiraft.Checksum)
				err = json.Unmarshal(answers[i].body, out[i].Sum)
			}
			if err != nil {
				out[i].Sum, out[i].Error = nil, eddy.AsError(err).Message
			}
		}
		return out
	}
	sums := ask(upto)
	if upto == 0 { // each summed to its own end: again, to the lowest
		low := int64(-1)
		for _, r := range sums {
			if r.Sum != nil && (low < 0 || r.Sum.Upto < low) {
				low = r.Sum.Upto
			}
		}
		if upto = low; low >= 0 {
			sums = ask(low)
		}
	}
	agree := len(sums) > 0
	for _, r := range sums {
		agree = agree && r.Sum != nil && sums[0].Sum != nil && r.Sum.SHA256 == sums[0].Sum.SHA256
	}
	writeJSON(ctx, 200, map[string]any{"partition": int32(p), "upto": upto, "consistent": agree, "replicas": sums})
}

// repair truncates this node's quarantined replica of a partition to its
// last good batch (operator only: it drops data) and says what was lost.
func (s *Server) repair(ctx *fasthttp.RequestCtx, pr *tenants.Principal) {
	ref, p, err := s.partitionRef(ctx, pr, tenants.Operate)
	if err != nil {
		writeError(ctx, err)
		return
	}
	c, cancel := s.reqContext(s.cfg.RequestTimeout, false)
	defer cancel()
	res, err := s.b.RepairPartition(c, ref, p)
	if err != nil {
		writeError(ctx, err)
		return
	}
	writeJSON(ctx, 200, res)
}

// redirect answers 302 to a relative location.
func redirect(to string) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		ctx.Response.Header.Set("Location", to)
		ctx.SetStatusCode(fasthttp.StatusFound)
	}
}

// whoami is what the token speaks for and may do (the console decides its
// view from it): the tenant, the subject, the scopes, the expiry.
func (s *Server) whoami(ctx *fasthttp.RequestCtx, p *tenants.Principal) {
	out := map[string]any{"tenant": p.Tenant, "subject": p.Subject, "scopes": p.Scopes(), "operator": p.Operator(),
		"admin": p.Can(tenants.Admin, p.Tenant, ""), "expires_ms": p.Expires.UnixMilli()}
	if s.b.NodeID() != 0 {
		out["node_id"] = s.b.NodeID()
	}
	writeJSON(ctx, 200, out)
}

// series answers the node's sampled history for the path's tenant:
// ?name= (produce_records, produce_bytes, fetch_records: per second;
// group_lag, group_lag_ms), ?topic= or ?group=, ?since_ms= (default: an
// hour ago). Only series the token may see: a topic's with a scope that
// describes it, a group's with consume scopes for its topics.
func (s *Server) series(ctx *fasthttp.RequestCtx, p *tenants.Principal) {
	t, err := s.tenant(ctx, p)
	if err != nil {
		writeError(ctx, err)
		return
	}
	if s.cfg.Series == nil {
		writeError(ctx, eddy.Errorf(eddy.CodeNotFound, "this node keeps no series (console_series is off)"))
		return
	}
	args := ctx.QueryArgs()
	now := time.Now()
	since, err := intArg(args, "since_ms", now.Add(-time.Hour).UnixMilli(), 0, 1<<62)
	if err != nil {
		writeError(ctx, err)
		return
	}
	subject := string(args.Peek("topic"))
	if g := args.Peek("group"); len(g) > 0 {
		subject = string(g)
	}
	out := []series.Series{}
	for _, se := range s.cfg.Series.Query(t, string(args.Peek("name")), subject, time.UnixMilli(since), now) {
		isGroup := strings.HasPrefix(se.Name, "group_")
		if (isGroup && args.Has("topic")) || (!isGroup && args.Has("group")) {
			continue
		}
		if isGroup {
			g, err := s.b.Group(t, se.Subject)
			if err != nil || !canConsumeGroup(p, t, g) {
				continue
			}
		} else if !p.Can(tenants.Describe, t, eddy.TopicName(se.Subject)) {
			continue
		}
		out = append(out, se)
	}
	writeJSON(ctx, 200, map[string]any{"series": out, "step_ms": s.cfg.Series.Step().Milliseconds()})
}
