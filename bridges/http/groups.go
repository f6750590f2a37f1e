package httpapi

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/eddy-broker/eddy/multiraft/catalog"

	"github.com/eddy-broker/eddy"
	"github.com/eddy-broker/eddy/consume"
	"github.com/eddy-broker/eddy/internal/membudget"
	"github.com/eddy-broker/eddy/multiraft"
	"github.com/eddy-broker/eddy/tenants"
	"github.com/valyala/fasthttp"
)

// GroupAdmin is what the group handlers need besides the consume path.
type GroupAdmin interface {
	JoinGroup(ctx context.Context, tenant eddy.TenantID, group string, topics []string, sessionTimeoutMs int64, fromEarliest bool) (*catalog.GroupMeta, string, error)
	LeaveGroup(ctx context.Context, tenant eddy.TenantID, group, member string) error
	ResetOffsets(ctx context.Context, tenant eddy.TenantID, group string, offsets map[string]int64) (*catalog.GroupMeta, error)
	DeleteGroup(ctx context.Context, tenant eddy.TenantID, group string) error
	DeleteOffsets(ctx context.Context, tenant eddy.TenantID, group string, keys []string) (*catalog.GroupMeta, error)
	Group(tenant eddy.TenantID, group string) (*catalog.GroupMeta, error)
	Groups(tenant eddy.TenantID) []*catalog.GroupMeta
	// StampedAt is when the records from offset on began (a group's lag
	// in time).
	StampedAt(ctx context.Context, ref eddy.TopicRef, p eddy.Partition, offset eddy.Offset) (int64, bool)
}

// Consumer groups over HTTP (docs/consumers.md). Membership, generations,
// assignments and committed offsets live in the controller; what a member
// was handed but has not committed yet (its positions) lives on the node
// that served it, so a member that moves between nodes starts again from
// its committed offsets (at least once).

type groupRoutes interface {
	PUT(string, fasthttp.RequestHandler)
	GET(string, fasthttp.RequestHandler)
	POST(string, fasthttp.RequestHandler)
	DELETE(string, fasthttp.RequestHandler)
}

func (s *Server) groupRoutes(g groupRoutes) {
	g.POST("/groups/{group}/members", s.authed(s.joinGroup))
	g.GET("/groups/{group}/members/{member}/records", s.authed(s.groupFetch))
	g.POST("/groups/{group}/members/{member}/commit", s.authed(s.groupCommit))
	g.DELETE("/groups/{group}/members/{member}", s.authed(s.leaveGroup))
	g.GET("/groups", s.authed(s.listGroups))
	g.GET("/groups/{group}", s.authed(s.describeGroup))
	g.POST("/groups/{group}/offsets", s.authed(s.resetGroupOffsets))
	g.DELETE("/groups/{group}/offsets", s.authed(s.deleteGroupOffsets))
	g.DELETE("/groups/{group}", s.authed(s.deleteGroup))
}

// groupName resolves the tenant and the route's group name.
func (s *Server) groupName(ctx *fasthttp.RequestCtx, p *tenants.Principal) (eddy.TenantID, string, error) {
	t, err := s.tenant(ctx, p)
	if err != nil {
		return "", "", err
	}
	name, _ := ctx.UserValue("group").(string)
	if err := catalog.ValidateGroupName(name); err != nil {
		return "", "", err
	}
	return t, name, nil
}

// visibleGroup is the route's group if the principal may see it; a group
// it may not see is answered like one that does not exist.
func (s *Server) visibleGroup(ctx *fasthttp.RequestCtx, p *tenants.Principal) (eddy.TenantID, *catalog.GroupMeta, error) {
	t, name, err := s.groupName(ctx, p)
	if err != nil {
		return "", nil, err
	}
	g, err := s.b.Group(t, name)
	if err != nil || !canConsumeGroup(p, t, g) {
		return "", nil, eddy.Errorf(eddy.CodeNotFound, "group %s does not exist", name)
	}
	return t, g, nil
}

// canConsumeGroup: the principal may consume every topic of the group:
// those its members subscribe to and those it has committed offsets for.
// A group with neither needs some consume scope (or admin).
// It runs on every member poll, so it walks the group as it is stored
// instead of collecting its topics first.
func canConsumeGroup(p *tenants.Principal, t eddy.TenantID, g *catalog.GroupMeta) bool {
	for _, topic := range g.Topics() {
		if !p.Can(tenants.Consume, t, eddy.TopicName(topic)) {
			return false
		}
	}
	return p.Consumes()
}

func tpJSON(tps []catalog.TopicPartition) []map[string]any {
	out := make([]map[string]any, 0, len(tps))
	for _, tp := range tps {
		out = append(out, map[string]any{"topic": tp.Topic, "partition": tp.Partition})
	}
	return out
}

func (s *Server) joinGroup(ctx *fasthttp.RequestCtx, p *tenants.Principal) {
	t, name, err := s.groupName(ctx, p)
	if err != nil {
		writeError(ctx, err)
		return
	}
	var req struct {
		Topics           []string `json:"topics"`
		SessionTimeoutMs int64    `json:"session_timeout_ms"`
		AutoCommit       bool     `json:"auto_commit"`
		AutoOffsetReset  string   `json:"auto_offset_reset"`
	}
	if err := decodeStrict(ctx.PostBody(), &req); err != nil {
		writeError(ctx, err)
		return
	}
	for _, topic := range req.Topics {
		if err := eddy.TopicName(topic).Validate(); err != nil {
			writeError(ctx, err)
			return
		}
		if !p.Can(tenants.Consume, t, eddy.TopicName(topic)) {
			writeError(ctx, eddy.Errorf(eddy.CodeForbidden, "the token has no consume scope for topic %s", topic))
			return
		}
	}
	switch req.AutoOffsetReset {
	case "":
		req.AutoOffsetReset = "latest"
	case "earliest", "latest":
	default:
		writeError(ctx, eddy.Errorf(eddy.CodeInvalid, "auto_offset_reset must be earliest or latest"))
		return
	}
	c, cancel := s.reqContext(s.cfg.RequestTimeout, false)
	defer cancel()
	g, id, err := s.b.JoinGroup(c, t, name, req.Topics, req.SessionTimeoutMs, req.AutoOffsetReset == "earliest")
	if err != nil {
		writeError(ctx, err)
		return
	}
	s.sessions.Joined(consume.Member{Tenant: t, Group: name, ID: id}, g.Generation, req.AutoCommit)
	writeJSON(ctx, fasthttp.StatusCreated, map[string]any{"member_id": id, "generation": g.Generation, "assignments": tpJSON(g.Assignments[id])})
}

// member resolves the route's member in the group, or CodeUnknownMember.
func (s *Server) member(ctx *fasthttp.RequestCtx, p *tenants.Principal) (eddy.TenantID, *catalog.GroupMeta, string, error) {
	t, name, err := s.groupName(ctx, p)
	if err != nil {
		return "", nil, "", err
	}
	id, _ := ctx.UserValue("member").(string)
	g, err := s.b.Group(t, name)
	if err != nil || g.Members[id] == nil || g.Kafka != nil { // a Kafka member is its coordinator's
		return "", nil, "", eddy.Errorf(eddy.CodeUnknownMember, "member %s is not in group %s (it left or its session expired): join again", id, name)
	}
	if !canConsumeGroup(p, t, g) {
		return "", nil, "", eddy.Errorf(eddy.CodeForbidden, "the token has no consume scope for every topic of group %s", name)
	}
	return t, g, id, nil
}

// groupFetch hands a member records from its assigned partitions, from
// its position (what it was handed on this node) or the committed offset.
// It counts as a heartbeat.
func (s *Server) groupFetch(ctx *fasthttp.RequestCtx, p *tenants.Principal) {
	t, g, id, err := s.member(ctx, p)
	if err != nil {
		writeError(ctx, err)
		return
	}
	args := ctx.QueryArgs()
	maxRecs, maxBytes, waitMs, err := s.fetchLimits(args, 1)
	if err != nil {
		writeError(ctx, err)
		return
	}
	c, cancel := s.reqContext(time.Duration(waitMs)*time.Millisecond+10*time.Second, true)
	defer cancel()
	if err := s.readOwed(c, p, t); err != nil {
		writeError(ctx, err)
		return
	}
	room := func(n int) (membudget.Hold, error) { return s.answerRoom(t, jsonAnswerRoom(int64(n), maxRecs)) }
	res, err := s.sessions.Poll(c, consume.Poll{Group: g, Member: consume.Member{Tenant: t, Group: g.Name, ID: id},
		MaxRecords: int(maxRecs), MaxBytes: int(maxBytes), Wait: time.Duration(waitMs) * time.Millisecond, Room: room,
		Slot: func() (func(), error) { return s.readSlot(t) }})
	if err != nil {
		writeError(ctx, err)
		return
	}
	defer res.Done() // the answer is made here; fasthttp writes it after
	out := make([]byte, 0, 256+res.Records*256)
	out = append(out, `{"generation":`...)
	out = strconv.AppendInt(out, res.Generation, 10)
	out = append(out, `,"records":[`...)
	first := true
	for _, f := range res.Fetched {
		for i := range f.Records {
			if !first {
				out = append(out, ',')
			}
			first = false
			out = append(out, `{"topic":`...)
			out = appendJSONString(out, f.TP.Topic)
			out = append(out, `,"partition":`...)
			out = strconv.AppendInt(out, int64(f.TP.Partition), 10)
			r := &f.Records[i]
			out = append(out, `,"offset":`...)
			out = strconv.AppendInt(out, int64(r.Offset), 10)
			out = append(out, ',')
			out = appendRecordFields(out, &r.Record, false)
		}
	}
	out = append(out, `],"assignments":[`...)
	for i, tp := range res.Assigned {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, `{"topic":`...)
		out = appendJSONString(out, tp.Topic)
		out = append(out, `,"partition":`...)
		out = strconv.AppendInt(out, int64(tp.Partition), 10)
		out = append(out, '}')
	}
	out = append(out, "]}\n"...)
	s.m.GetOrCreateCounter(fmt.Sprintf(`eddy_group_records_total{tenant=%q,group=%q}`, t, g.Name)).Add(res.Records)
	ctx.SetStatusCode(200)
	ctx.SetContentType("application/json")
	s.answerRead(ctx, p, t, out, res.Hold.Shrink(int64(2*len(out)))) // no copy into fasthttp's pooled buffers (see fetch); the records read are about its size
}

func (s *Server) groupCommit(ctx *fasthttp.RequestCtx, p *tenants.Principal) {
	t, g, id, err := s.member(ctx, p)
	if err != nil {
		writeError(ctx, err)
		return
	}
	var req struct {
		Generation *int64 `json:"generation"`
		Offsets    []struct {
			Topic     string `json:"topic"`
			Partition int32  `json:"partition"`
			Offset    int64  `json:"offset"`
		} `json:"offsets"`
	}
	if body := ctx.PostBody(); len(body) > 0 {
		if err := decodeStrict(body, &req); err != nil {
			writeError(ctx, err)
			return
		}
	}
	var offsets map[string]int64 // nil: what the member was handed
	if len(req.Offsets) > 0 {
		offsets = map[string]int64{}
		for _, o := range req.Offsets {
			if o.Offset < 0 || o.Partition < 0 {
				writeError(ctx, eddy.Errorf(eddy.CodeInvalid, "offsets and partitions are not negative"))
				return
			}
			offsets[catalog.TopicPartition{Topic: o.Topic, Partition: eddy.Partition(o.Partition)}.Key()] = o.Offset
		}
	}
	c, cancel := s.reqContext(s.cfg.RequestTimeout, false)
	defer cancel()
	ng, committed, err := s.sessions.Commit(c, g, consume.Member{Tenant: t, Group: g.Name, ID: id}, req.Generation, offsets)
	if err != nil {
		writeError(ctx, err)
		return
	}
	writeJSON(ctx, 200, map[string]any{"generation": ng.Generation, "committed": committed})
}

func (s *Server) leaveGroup(ctx *fasthttp.RequestCtx, p *tenants.Principal) {
	t, g, id, err := s.member(ctx, p)
	if err != nil {
		writeError(ctx, err)
		return
	}
	c, cancel := s.reqContext(s.cfg.RequestTimeout, false)
	defer cancel()
	if err := s.b.LeaveGroup(c, t, g.Name, id); err != nil {
		writeError(ctx, err)
		return
	}
	s.sessions.Left(consume.Member{Tenant: t, Group: g.Name, ID: id})
	ctx.SetStatusCode(fasthttp.StatusNoContent)
}

type groupPartitionJSON struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Committed *int64 `json:"committed_offset"`
	End       int64  `json:"high_watermark"`
	Lag       int64  `json:"lag"`
	// LagMs is how old the oldest record not yet consumed is (0 when the
	// group is caught up): lag in time, not records.
	LagMs  int64  `json:"lag_ms"`
	Member string `json:"member,omitempty"`
}

func (s *Server) groupJSON(t eddy.TenantID, g *catalog.GroupMeta, detail bool) map[string]any {
	out := map[string]any{"name": g.Name, "generation": g.Generation, "members": len(g.Members), "protocol": "http"}
	switch {
	case g.Kafka != nil:
		out["protocol"] = "kafka"
	case g.MQTT != nil:
		out["protocol"] = "mqtt" // an MQTT device's persistent session
	}
	if !detail {
		return out
	}
	members := []map[string]any{}
	owner := map[string]string{}
	for id, m := range g.Members {
		mj := map[string]any{"member_id": id, "topics": m.Topics, "session_timeout_ms": m.SessionTimeoutMs,
			"last_seen_ms": m.LastSeenMs, "assignments": tpJSON(g.Assignments[id])}
		if m.InstanceID != "" {
			mj["instance_id"] = m.InstanceID // a static Kafka member
		}
		members = append(members, mj)
		for _, tp := range g.Assignments[id] {
			owner[tp.Key()] = id
		}
	}
	c, cancel := s.reqContext(s.cfg.RequestTimeout, false)
	defer cancel()
	lags, lag, lagMs := consume.GroupLag(c, s.b, g, true, time.Now())
	parts := []groupPartitionJSON{}
	for _, pl := range lags {
		parts = append(parts, groupPartitionJSON{Topic: pl.Topic, Partition: int32(pl.Partition), Committed: pl.Committed, End: pl.End,
			Lag: pl.Lag, LagMs: pl.LagMs, Member: owner[catalog.TopicPartition{Topic: pl.Topic, Partition: pl.Partition}.Key()]})
	}
	out["member_list"] = members
	out["partitions"] = parts
	out["lag"] = lag
	out["lag_ms"] = lagMs
	return out
}

func (s *Server) listGroups(ctx *fasthttp.RequestCtx, p *tenants.Principal) {
	t, err := s.tenant(ctx, p)
	if err != nil {
		writeError(ctx, err)
		return
	}
	out := []map[string]any{}
	for _, g := range s.b.Groups(t) {
		if canConsumeGroup(p, t, g) {
			out = append(out, s.groupJSON(t, g, false))
		}
	}
	writeJSON(ctx, 200, map[string]any{"groups": out})
}

func (s *Server) describeGroup(ctx *fasthttp.RequestCtx, p *tenants.Principal) {
	t, g, err := s.visibleGroup(ctx, p)
	if err != nil {
		writeError(ctx, err)
		return
	}
	writeJSON(ctx, 200, s.groupJSON(t, g, true))
}

// resetGroupOffsets sets an empty group's offsets for a topic: earliest,
// latest, the first record at or after a timestamp, or an offset.
func (s *Server) resetGroupOffsets(ctx *fasthttp.RequestCtx, p *tenants.Principal) {
	t, name, err := s.groupName(ctx, p)
	if err != nil {
		writeError(ctx, err)
		return
	}
	var req struct {
		Topic       string `json:"topic"`
		To          string `json:"to"`
		Offset      int64  `json:"offset"`
		TimestampMs int64  `json:"timestamp_ms"`
	}
	if err := decodeStrict(ctx.PostBody(), &req); err != nil {
		writeError(ctx, err)
		return
	}
	if !p.Can(tenants.Consume, t, eddy.TopicName(req.Topic)) {
		writeError(ctx, eddy.Errorf(eddy.CodeForbidden, "the token has no consume scope for topic %s", req.Topic))
		return
	}
	meta, err := s.b.Topic(eddy.TopicRef{Tenant: t, Name: eddy.TopicName(req.Topic)})
	if err != nil {
		writeError(ctx, err)
		return
	}
	c, cancel := s.reqContext(s.cfg.RequestTimeout, false)
	defer cancel()
	offsets := map[string]int64{}
	for _, po := range s.b.TopicOffsets(meta) {
		if po.Err != nil {
			writeError(ctx, po.Err)
			return
		}
		var off int64
		switch req.To {
		case "earliest":
			off = int64(po.LogStart)
		case "latest":
			off = int64(po.HighWatermark)
		case "offset":
			off = min(max(req.Offset, int64(po.LogStart)), int64(po.HighWatermark))
		case "timestamp":
			off, _, err = s.offsetForTime(meta.Ref(), po, req.TimestampMs)
			if err != nil {
				writeError(ctx, err)
				return
			}
		default:
			writeError(ctx, eddy.Errorf(eddy.CodeInvalid, "to must be earliest, latest, timestamp or offset"))
			return
		}
		offsets[catalog.TopicPartition{Topic: req.Topic, Partition: po.Partition}.Key()] = off
	}
	g, err := s.b.ResetOffsets(c, t, name, offsets)
	if err != nil {
		writeError(ctx, err)
		return
	}
	writeJSON(ctx, 200, s.groupJSON(t, g, true))
}

// offsetForTime is the first offset whose record's timestamp is at or
// after ts, and that record's timestamp (the high watermark and -1 if
// none is): through the segments' and batches' max timestamps of a
// replica (Host.OffsetForTime asks a node that has one).
func (s *Server) offsetForTime(ref eddy.TopicRef, po multiraft.PartitionOffsets, ts int64) (int64, int64, error) {
	off, stamp, err := s.b.OffsetForTime(ref, po.Partition, ts)
	switch {
	case err != nil:
		return 0, 0, err
	case off < 0:
		return int64(po.HighWatermark), -1, nil
	}
	return off, stamp, nil
}

func (s *Server) deleteGroup(ctx *fasthttp.RequestCtx, p *tenants.Principal) {
	t, g, err := s.visibleGroup(ctx, p)
	if err != nil {
		writeError(ctx, err)
		return
	}
	name := g.Name
	c, cancel := s.reqContext(s.cfg.RequestTimeout, false)
	defer cancel()
	if err := s.b.DeleteGroup(c, t, name); err != nil {
		writeError(ctx, err)
		return
	}
	ctx.SetStatusCode(fasthttp.StatusNoContent)
}

// deleteGroupOffsets deletes a group's committed offsets of ?topic= (of
// its partition ?partition= alone, if given), as Kafka's OffsetDelete:
// a group that stopped reading a topic no longer shows lag on it. A
// member reading the topic makes it a conflict; a group left with
// neither members nor offsets is gone.
func (s *Server) deleteGroupOffsets(ctx *fasthttp.RequestCtx, p *tenants.Principal) {
	t, g, err := s.visibleGroup(ctx, p)
	if err != nil {
		writeError(ctx, err)
		return
	}
	args := ctx.QueryArgs()
	topic := eddy.TopicName(args.Peek("topic"))
	if topic == "" {
		writeError(ctx, eddy.Errorf(eddy.CodeInvalid, "topic= is required: the topic whose offsets the group forgets"))
		return
	}
	if !p.Can(tenants.Consume, t, topic) {
		writeError(ctx, eddy.Errorf(eddy.CodeForbidden, "the token has no consume scope for topic %s", topic))
		return
	}
	meta, err := s.b.Topic(eddy.TopicRef{Tenant: t, Name: topic})
	if err != nil {
		writeError(ctx, err)
		return
	}
	var keys []string
	for i := range meta.Partitions {
		keys = append(keys, catalog.TopicPartition{Topic: string(topic), Partition: eddy.Partition(i)}.Key())
	}
	if args.Has("partition") {
		n, err := args.GetUint("partition")
		if err != nil || n >= int(meta.Partitions) {
			writeError(ctx, eddy.Errorf(eddy.CodeNotFound, "topic %s has no partition %s", topic, args.Peek("partition")))
			return
		}
		keys = keys[n : n+1]
	}
	c, cancel := s.reqContext(s.cfg.RequestTimeout, false)
	defer cancel()
	if _, err := s.b.DeleteOffsets(c, t, g.Name, keys); err != nil {
		writeError(ctx, err)
		return
	}
	ctx.SetStatusCode(fasthttp.StatusNoContent)
}
