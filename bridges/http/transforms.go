package httpapi

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/eddy-broker/eddy/multiraft"
	"github.com/eddy-broker/eddy/multiraft/catalog"

	"github.com/eddy-broker/eddy"
	"github.com/eddy-broker/eddy/ingest"
	"github.com/eddy-broker/eddy/tenants"
	"github.com/valyala/fasthttp"
)

// TransformAdmin stores transform modules and binds them to topics.
type TransformAdmin interface {
	DeployTransform(ctx context.Context, tenant eddy.TenantID, name string, bin []byte) (*catalog.ModuleVersion, error)
	DeleteTransform(ctx context.Context, tenant eddy.TenantID, name string, version int) error
	Transforms(tenant eddy.TenantID) []*catalog.TransformMeta
	Transform(tenant eddy.TenantID, name string) (*catalog.TransformMeta, error)
	SetTopicTransform(ctx context.Context, ref eddy.TopicRef, b *catalog.TransformBinding) (*catalog.TopicMeta, error)
}

// Transformer runs topics' transforms; the node's wasm pipeline is one.
type Transformer interface {
	ingest.Transformer
	Validate(ctx context.Context, tenant eddy.TenantID, name, sha string, bin []byte) (time.Duration, error)
	Test(ctx context.Context, tenant eddy.TenantID, name string, version int, config []byte, recs []eddy.Record) (*ingest.TransformTest, error)
	Status(ref eddy.TopicRef) *eddy.TransformStatus
}

// Producer is the produce path the produce handler hands its records to
// (*ingest.Path).
type Producer interface {
	Produce(ctx context.Context, req ingest.Request) (ingest.Result, error)
}

// MaxModuleBytes bounds an uploaded transform module.
const MaxModuleBytes = 8 << 20

func (s *Server) transformRoutes(g interface {
	PUT(string, fasthttp.RequestHandler)
	GET(string, fasthttp.RequestHandler)
	POST(string, fasthttp.RequestHandler)
	DELETE(string, fasthttp.RequestHandler)
}) {
	g.PUT("/transforms/{name}", s.authed(s.deployTransform))
	g.GET("/transforms", s.authed(s.listTransforms))
	g.GET("/transforms/{name}", s.authed(s.describeTransform))
	g.DELETE("/transforms/{name}", s.authed(s.deleteTransform))
	g.POST("/transforms/{name}/test", s.authed(s.testTransform))
	g.PUT("/topics/{topic}/transform", s.authed(s.setTopicTransform))
	g.DELETE("/topics/{topic}/transform", s.authed(s.clearTopicTransform))
}

func (s *Server) transformsOn(ctx *fasthttp.RequestCtx) bool {
	if s.cfg.Transformer == nil {
		writeError(ctx, eddy.Errorf(eddy.CodeUnavailable, "transforms are not available on this node"))
		return false
	}
	return true
}

// transformTenant resolves the tenant and checks the admin scope, before
// it says whether this node runs transforms: a token that may not use
// them learns nothing more than 404 or 403.
func (s *Server) transformTenant(ctx *fasthttp.RequestCtx, p *tenants.Principal, what string) (eddy.TenantID, string, bool) {
	tm, ok := s.scopedTenant(ctx, p, tenants.Admin, what)
	if !ok || !s.transformsOn(ctx) {
		return "", "", false
	}
	name, _ := ctx.UserValue("name").(string)
	if name != "" {
		if err := catalog.ValidateTransformName(name); err != nil {
			writeError(ctx, err)
			return "", "", false
		}
	}
	return tm.Name, name, true
}

type moduleJSON struct {
	Version   int    `json:"version"`
	SHA256    string `json:"sha256"`
	Size      int    `json:"size"`
	CreatedMs int64  `json:"created_ms"`
}

func (s *Server) deployTransform(ctx *fasthttp.RequestCtx, p *tenants.Principal) {
	t, name, ok := s.transformTenant(ctx, p, "deploying transforms")
	if !ok {
		return
	}
	ct := strings.ToLower(strings.TrimSpace(strings.Split(string(ctx.Request.Header.ContentType()), ";")[0]))
	if ct != "application/wasm" && ct != "application/octet-stream" {
		writeError(ctx, eddy.Errorf(eddy.CodeUnsupportedMedia, "a module is uploaded as application/wasm, not %q", ct))
		return
	}
	bin := ctx.PostBody()
	if len(bin) > MaxModuleBytes {
		writeError(ctx, eddy.Errorf(eddy.CodeInvalidModule, "the module is %d bytes, over the %d-byte (8 MiB) limit", len(bin), MaxModuleBytes))
		return
	}
	bin = append([]byte(nil), bin...)
	sum := sha256.Sum256(bin)
	c, cancel := s.reqContext(s.cfg.RequestTimeout, false)
	defer cancel()
	compile, err := s.cfg.Transformer.Validate(c, t, name, hex.EncodeToString(sum[:]), bin)
	if err != nil {
		writeError(ctx, err)
		return
	}
	mv, err := s.b.DeployTransform(c, t, name, bin)
	if err != nil {
		writeError(ctx, err)
		return
	}
	writeJSON(ctx, fasthttp.StatusCreated, map[string]any{"name": name, "version": mv.Version, "sha256": mv.SHA256,
		"size": mv.Size, "created_ms": mv.CreatedMs, "compile_ms": compile.Milliseconds()})
}

type transformJSON struct {
	Name     string       `json:"name"`
	Latest   int          `json:"latest_version"`
	Versions []moduleJSON `json:"versions"`
	Topics   []bindingOut `json:"topics"`
}

type bindingOut struct {
	Topic string `json:"topic"`
	transformBindingJSON
}

type transformBindingJSON struct {
	Module          string                `json:"module"`
	Version         int                   `json:"version,omitempty"`
	RunsVersion     int                   `json:"runs_version,omitempty"`
	Config          json.RawMessage       `json:"config,omitempty"`
	OnError         string                `json:"on_error"`
	DeadLetterTopic string                `json:"dead_letter_topic,omitempty"`
	UpdatedMs       int64                 `json:"updated_ms,omitempty"`
	Status          *eddy.TransformStatus `json:"status,omitempty"`
	// Nodes: how it runs on every node (?nodes=all).
	Nodes []nodeTransformStatus `json:"nodes,omitempty"`
}

type nodeTransformStatus struct {
	Node   uint64                `json:"node"`
	Status *eddy.TransformStatus `json:"status,omitempty"`
	Error  string                `json:"error,omitempty"` // the node did not answer
}

// allNodesStatus asks every node how the topic's transform runs there, at
// once, each within 2 s.
func (s *Server) allNodesStatus(m *catalog.TopicMeta, local *eddy.TransformStatus) []nodeTransformStatus {
	nodes := s.b.Cluster()
	out := make([]nodeTransformStatus, len(nodes))
	path := "/v1/tenants/" + url.PathEscape(string(m.Tenant)) + "/topics/" + url.PathEscape(string(m.Name))
	answers := s.askNodes(nodes, path)
	for i, n := range nodes {
		out[i].Node = n.ID
		switch a := answers[i]; {
		case n.ID == s.b.NodeID():
			out[i].Status = local
		case a.err != nil:
			out[i].Error = eddy.AsError(a.err).Message
		default:
			var d struct {
				Transform *struct {
					Status *eddy.TransformStatus `json:"status"`
				} `json:"transform"`
			}
			if err := json.Unmarshal(a.body, &d); err != nil {
				out[i].Error = "unreadable answer"
			} else if d.Transform != nil {
				out[i].Status = d.Transform.Status
			}
		}
	}
	return out
}

type peerAnswer struct {
	body []byte
	err  error
}

// askNodes GETs path from every node but this one, at once, each within
// 2 s (this node's answer is left empty).
func (s *Server) askNodes(nodes []multiraft.NodeStatus, path string) []peerAnswer {
	out := make([]peerAnswer, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		if n.ID == s.b.NodeID() {
			continue
		}
		if s.cfg.Peer == nil {
			out[i].err = eddy.Errorf(eddy.CodeUnavailable, "this node cannot ask others")
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, cancel := s.reqContext(2*time.Second, false)
			defer cancel()
			out[i].body, out[i].err = s.cfg.Peer(c, n.NodeMeta, path)
		}()
	}
	wg.Wait()
	return out
}

// bindingJSON renders a topic's binding with what this node runs.
func (s *Server) bindingJSON(m *catalog.TopicMeta) *transformBindingJSON {
	b := m.Transform
	if b == nil {
		return nil
	}
	out := &transformBindingJSON{Module: b.Module, Version: b.Version, Config: b.Config, OnError: b.OnError,
		DeadLetterTopic: b.DeadLetterTopic, UpdatedMs: b.UpdatedMs}
	if tm, err := s.b.Transform(m.Tenant, b.Module); err == nil {
		if v := tm.Version(b.Version); v != nil {
			out.RunsVersion = v.Version
		}
	}
	if s.cfg.Transformer != nil {
		out.Status = s.cfg.Transformer.Status(m.Ref())
	}
	return out
}

func (s *Server) transformJSON(tm *catalog.TransformMeta) transformJSON {
	out := transformJSON{Name: tm.Name, Versions: []moduleJSON{}, Topics: []bindingOut{}}
	for _, v := range tm.Versions {
		out.Versions = append(out.Versions, moduleJSON{Version: v.Version, SHA256: v.SHA256, Size: v.Size, CreatedMs: v.CreatedMs})
	}
	if l := tm.Latest(); l != nil {
		out.Latest = l.Version
	}
	for _, m := range s.b.Topics(tm.Tenant) {
		if m.Transform != nil && m.Transform.Module == tm.Name {
			out.Topics = append(out.Topics, bindingOut{Topic: string(m.Name), transformBindingJSON: *s.bindingJSON(m)})
		}
	}
	return out
}

func (s *Server) listTransforms(ctx *fasthttp.RequestCtx, p *tenants.Principal) {
	t, _, ok := s.transformTenant(ctx, p, "listing transforms")
	if !ok {
		return
	}
	out := []transformJSON{}
	for _, tm := range s.b.Transforms(t) {
		out = append(out, s.transformJSON(tm))
	}
	writeJSON(ctx, 200, map[string]any{"transforms": out})
}

func (s *Server) describeTransform(ctx *fasthttp.RequestCtx, p *tenants.Principal) {
	t, name, ok := s.transformTenant(ctx, p, "describing transforms")
	if !ok {
		return
	}
	tm, err := s.b.Transform(t, name)
	if err != nil {
		writeError(ctx, err)
		return
	}
	writeJSON(ctx, 200, s.transformJSON(tm))
}

func (s *Server) deleteTransform(ctx *fasthttp.RequestCtx, p *tenants.Principal) {
	t, name, ok := s.transformTenant(ctx, p, "deleting transforms")
	if !ok {
		return
	}
	version, err := intArg(ctx.QueryArgs(), "version", 0, 0, 1<<31-1)
	if err != nil {
		writeError(ctx, err)
		return
	}
	c, cancel := s.reqContext(s.cfg.RequestTimeout, false)
	defer cancel()
	if err := s.b.DeleteTransform(c, t, name, int(version)); err != nil {
		writeError(ctx, err)
		return
	}
	ctx.SetStatusCode(fasthttp.StatusNoContent)
}

type testTransformReq struct {
	Version int             `json:"version"`
	Config  json.RawMessage `json:"config"`
	Records []jsonRecord    `json:"records"`
}

// maxTestRecords bounds a dry run.
const maxTestRecords = 10_000

func (s *Server) testTransform(ctx *fasthttp.RequestCtx, p *tenants.Principal) {
	t, name, ok := s.transformTenant(ctx, p, "testing transforms")
	if !ok {
		return
	}
	var req testTransformReq
	if err := decodeStrict(ctx.PostBody(), &req); err != nil {
		writeError(ctx, err)
		return
	}
	if len(req.Records) == 0 || len(req.Records) > maxTestRecords {
		writeError(ctx, eddy.Errorf(eddy.CodeInvalid, "a dry run takes 1 to %d records, got %d", maxTestRecords, len(req.Records)))
		return
	}
	if len(req.Config) > 0 && !json.Valid(req.Config) {
		writeError(ctx, eddy.Errorf(eddy.CodeInvalid, "config is not valid JSON"))
		return
	}
	now := time.Now().UnixMilli()
	recs := make([]eddy.Record, len(req.Records))
	for i := range req.Records {
		r, _, err := req.Records[i].toRecord(i, now)
		if err != nil {
			writeError(ctx, err)
			return
		}
		recs[i] = r
	}
	c, cancel := s.reqContext(s.cfg.RequestTimeout, false)
	defer cancel()
	res, err := s.cfg.Transformer.Test(c, t, name, req.Version, req.Config, recs)
	if err != nil {
		writeError(ctx, err)
		return
	}
	out := make([]byte, 0, 256)
	out = append(out, `{"version":`...)
	out = strconv.AppendInt(out, int64(res.Version), 10)
	out = append(out, `,"records":[`...)
	for i := range res.Records {
		if i > 0 {
			out = append(out, ',')
		}
		// A dry-run record has no offset: "source" is the input it came from.
		out = append(out, `{"source":`...)
		out = strconv.AppendInt(out, int64(res.Src[i]), 10)
		out = append(out, ',')
		out = appendRecordFields(out, &res.Records[i], false)
	}
	out = append(out, `],"duration_ms":`...)
	out = strconv.AppendFloat(out, float64(res.Duration.Microseconds())/1000, 'f', 3, 64)
	if res.Err != nil {
		e, _ := json.Marshal(map[string]string{"code": string(res.Err.Code), "message": res.Err.Message})
		out = append(out, `,"error":`...)
		out = append(out, e...)
	}
	if res.Stderr != "" {
		e, _ := json.Marshal(res.Stderr)
		out = append(out, `,"stderr":`...)
		out = append(out, e...)
	}
	out = append(out, "}\n"...)
	ctx.SetStatusCode(200)
	ctx.SetContentType("application/json")
	ctx.SetBody(out)
}

type setTransformReq struct {
	Module          string          `json:"module"`
	Version         int             `json:"version"`
	Config          json.RawMessage `json:"config"`
	OnError         string          `json:"on_error"`
	DeadLetterTopic string          `json:"dead_letter_topic"`
}

func (s *Server) setTopicTransform(ctx *fasthttp.RequestCtx, p *tenants.Principal) {
	ref, err := s.topicRef(ctx, p, tenants.Admin)
	if err != nil {
		writeError(ctx, err)
		return
	}
	if !s.transformsOn(ctx) {
		return
	}
	var req setTransformReq
	if err := decodeStrict(ctx.PostBody(), &req); err != nil {
		writeError(ctx, err)
		return
	}
	if req.Module == "" {
		writeError(ctx, eddy.Errorf(eddy.CodeInvalid, "module is required"))
		return
	}
	if string(req.Config) == "null" {
		req.Config = nil
	}
	b := &catalog.TransformBinding{Module: req.Module, Version: req.Version, Config: req.Config, OnError: req.OnError, DeadLetterTopic: req.DeadLetterTopic}
	c, cancel := s.reqContext(s.cfg.RequestTimeout, false)
	defer cancel()
	m, err := s.b.SetTopicTransform(c, ref, b)
	if err != nil {
		writeError(ctx, err)
		return
	}
	writeJSON(ctx, 200, s.topicJSON(m, false))
}

func (s *Server) clearTopicTransform(ctx *fasthttp.RequestCtx, p *tenants.Principal) {
	ref, err := s.topicRef(ctx, p, tenants.Admin)
	if err != nil {
		writeError(ctx, err)
		return
	}
	c, cancel := s.reqContext(s.cfg.RequestTimeout, false)
	defer cancel()
	if _, err := s.b.SetTopicTransform(c, ref, nil); err != nil {
		writeError(ctx, err)
		return
	}
	ctx.SetStatusCode(fasthttp.StatusNoContent)
}

// appendTransformJSON adds what the transform did to a produce answer.
func appendTransformJSON(out []byte, tr *ingest.Transformed) []byte {
	out = append(out, `,"transform":{"module":`...)
	out = appendJSONString(out, tr.Module)
	out = append(out, `,"version":`...)
	out = strconv.AppendInt(out, int64(tr.Version), 10)
	out = append(out, `,"records_in":`...)
	out = strconv.AppendInt(out, int64(tr.In), 10)
	out = append(out, `,"records_out":`...)
	out = strconv.AppendInt(out, int64(len(tr.Records)), 10)
	if tr.Policy != "" {
		out = append(out, `,"failure":`...)
		out = appendJSONString(out, tr.Failure)
		out = append(out, `,"policy":`...)
		out = appendJSONString(out, tr.Policy)
	}
	if tr.DeadLettered > 0 {
		out = append(out, `,"dead_lettered":`...)
		out = strconv.AppendInt(out, int64(tr.DeadLettered), 10)
	}
	return append(out, '}')
}
