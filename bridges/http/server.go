package httpapi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/eddy-broker/eddy"
	"github.com/eddy-broker/eddy/ingest"
	"github.com/eddy-broker/eddy/internal/netguard"
	"github.com/eddy-broker/eddy/multiraft"
	"github.com/eddy-broker/eddy/multiraft/segment"
	"github.com/eddy-broker/eddy/tenants"
	"github.com/fasthttp/router"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/pprofhandler"
)

// Broker is what the HTTP API needs from the node; *multiraft.Host is one.
type Broker interface {
	CreateTopic(ctx context.Context, tenant eddy.TenantID, spec multiraft.TopicSpec) (*multiraft.TopicMeta, error)
	DeleteTopic(ctx context.Context, ref eddy.TopicRef) error
	Topic(ref eddy.TopicRef) (*multiraft.TopicMeta, error)
	Topics(tenant eddy.TenantID) []*multiraft.TopicMeta
	TopicOffsets(meta *multiraft.TopicMeta) []multiraft.PartitionOffsets
	Offsets(ref eddy.TopicRef, p eddy.Partition) (multiraft.PartitionOffsets, error)
	Produce(ctx context.Context, ref eddy.TopicRef, recs []eddy.Record, part []eddy.Partition) ([]multiraft.ProduceResult, error)
	Fetch(ctx context.Context, ref eddy.TopicRef, p eddy.Partition, offset eddy.Offset, maxRecords, maxBytes int, wait time.Duration) (*multiraft.FetchResult, error)
	FetchBatches(ctx context.Context, ref eddy.TopicRef, p eddy.Partition, offset eddy.Offset, maxBytes int, wait time.Duration) (segment.ReadResult, error)
	Nodes() []multiraft.NodeMeta
	Cluster() []multiraft.NodeStatus
	Moves() []multiraft.Move
	AddNode(ctx context.Context, id uint64, raftAddr string) (*multiraft.NodeMeta, error)
	RemoveNode(ctx context.Context, id uint64) (*multiraft.NodeMeta, error)
	Checksum(ref eddy.TopicRef, p eddy.Partition, upto int64) (*multiraft.Checksum, error)
	NodeID() uint64
	Ready() error
	Quarantined() []multiraft.Quarantine
	RepairPartition(ctx context.Context, ref eddy.TopicRef, p eddy.Partition) (*multiraft.RepairResult, error)
	Booting() bool
	IsLocal(meta *multiraft.TopicMeta, p eddy.Partition) bool

	CreateTenant(ctx context.Context, name eddy.TenantID, q tenants.Quotas) (*multiraft.TenantMeta, error)
	SetQuotas(ctx context.Context, name eddy.TenantID, q tenants.Quotas) (*multiraft.TenantMeta, error)
	DeleteTenant(ctx context.Context, name eddy.TenantID, force bool) error
	Tenant(name eddy.TenantID) (*multiraft.TenantMeta, error)
	Tenants() []*multiraft.TenantMeta
	Usage(name eddy.TenantID) multiraft.TenantUsage
	AdmitProduce(l *tenants.Limiter, t eddy.TenantID, recs []eddy.Record) error // for the default Producer
	AddKey(ctx context.Context, k *tenants.Key) error
	RemoveKey(ctx context.Context, tenant eddy.TenantID, kid string) error
	Keys(tenant eddy.TenantID) []tenants.Key
	SetMQTTMapping(ctx context.Context, name eddy.TenantID, m *tenants.MQTTMapping) (*multiraft.TenantMeta, error)

	JoinGroup(ctx context.Context, tenant eddy.TenantID, group string, topics []string, sessionTimeoutMs int64, fromEarliest bool) (*multiraft.GroupMeta, string, error)
	LeaveGroup(ctx context.Context, tenant eddy.TenantID, group, member string) error
	Heartbeat(ctx context.Context, tenant eddy.TenantID, group, member string) error
	CommitOffsets(ctx context.Context, tenant eddy.TenantID, group, member string, generation int64, offsets map[string]int64) (*multiraft.GroupMeta, error)
	ResetOffsets(ctx context.Context, tenant eddy.TenantID, group string, offsets map[string]int64) (*multiraft.GroupMeta, error)
	DeleteGroup(ctx context.Context, tenant eddy.TenantID, group string) error
	Group(tenant eddy.TenantID, group string) (*multiraft.GroupMeta, error)
	Groups(tenant eddy.TenantID) []*multiraft.GroupMeta

	DeployTransform(ctx context.Context, tenant eddy.TenantID, name string, bin []byte) (*multiraft.ModuleVersion, error)
	DeleteTransform(ctx context.Context, tenant eddy.TenantID, name string, version int) error
	Transforms(tenant eddy.TenantID) []*multiraft.TransformMeta
	Transform(tenant eddy.TenantID, name string) (*multiraft.TransformMeta, error)
	SetTopicTransform(ctx context.Context, ref eddy.TopicRef, b *multiraft.TransformBinding) (*multiraft.TopicMeta, error)
}

// Config configures the HTTP server. Zero values mean the defaults.
type Config struct {
	// Addr is the listen address. Defaults to :8080.
	Addr string
	// MaxBodyBytes bounds a request body. Defaults to 16 MiB.
	MaxBodyBytes int
	// MaxWait bounds a fetch's wait_ms. Defaults to 30s.
	MaxWait time.Duration
	// RequestTimeout bounds how long a produce waits for its commit.
	// Defaults to 30s.
	RequestTimeout time.Duration
	// Pprof serves Go's profiler under /debug/pprof/. Off by default: it
	// exposes internals and costs CPU while profiling.
	Pprof bool
	// Verifier authenticates every request but /healthz and /readyz (and
	// /metrics when MetricsPublic). Required.
	Verifier *tenants.Verifier
	// Signer mints tokens for POST /v1/tenants/{t}/tokens; nil: not
	// available on this node.
	Signer func() *tenants.Signer
	// Bridges reports the node's MQTT bridges (GET /v1/bridges).
	Bridges func() any
	// Transformer runs topics' transforms; nil: transforms are off.
	Transformer Transformer
	// Limiter enforces tenants' produce rate quotas. Defaults to a new one.
	Limiter *tenants.Limiter
	// Producer is the node's produce path (ingest), shared with its other
	// listeners. Defaults to one over the Broker, Transformer and Limiter.
	Producer Producer
	// MetricsPublic serves /metrics without a token. Off by default: the
	// metrics name every tenant's topics, so they need the operator scope.
	MetricsPublic bool
	// Metrics is the set /metrics serves (with Go and process metrics).
	Metrics *metrics.Set
	Logger  *slog.Logger
	// MaxConns and MaxConnsPerIP bound the listener's open connections and
	// those from one address; more are closed at accept. 0: no bound.
	MaxConns      int
	MaxConnsPerIP int
	// DefaultQuotas are the quotas of a tenant created without them.
	DefaultQuotas tenants.Quotas
	// Listeners reports the node's other listeners (MQTT, ...) for
	// /readyz, which fails while one is not serving.
	Listeners func() []netguard.Status
}

// Server is the data-plane HTTP API on fasthttp.
type Server struct {
	cfg     Config
	b       Broker
	log     *slog.Logger
	srv     *fasthttp.Server
	router  *router.Router // its List() is every route, for the auth walk
	ln      *netguard.Listener
	m       *metrics.Set
	tm      topicMetricsCache
	started atomic.Bool // the node finished starting (SetStarted)
	pos     positions   // consumer group members' positions on this node
	tails   chan struct{}
	closing chan struct{}
	served  chan error
	base    context.Context
	cancel  context.CancelFunc
}

// New builds a server; Start listens.
func New(cfg Config, b Broker) *Server {
	if cfg.Addr == "" {
		cfg.Addr = ":8080"
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 16 << 20
	}
	if cfg.MaxWait <= 0 {
		cfg.MaxWait = 30 * time.Second
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 30 * time.Second
	}
	if cfg.Metrics == nil {
		cfg.Metrics = metrics.NewSet()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Limiter == nil {
		cfg.Limiter = tenants.NewLimiter(nil)
	}
	if cfg.Producer == nil {
		var tx ingest.Transformer
		if cfg.Transformer != nil {
			tx = cfg.Transformer
		}
		cfg.Producer = ingest.New(b, b, tx, cfg.Limiter, cfg.Metrics)
	}
	s := &Server{cfg: cfg, b: b, log: cfg.Logger, m: cfg.Metrics, closing: make(chan struct{}), served: make(chan error, 1),
		tails: make(chan struct{}, maxTails)}
	s.base, s.cancel = context.WithCancel(context.Background())
	r := router.New()
	s.router = r
	r.GET("/healthz", s.healthz)
	r.GET("/readyz", s.readyz)
	if cfg.MetricsPublic {
		r.GET("/metrics", s.metrics)
	} else {
		r.GET("/metrics", s.authed(s.operatorOnly(s.metrics)))
	}
	r.GET("/v1/cluster", s.authed(s.operatorOnly(s.cluster)))
	r.POST("/v1/cluster/nodes", s.authed(s.operatorOnly(s.addNode)))
	r.DELETE("/v1/cluster/nodes/{id}", s.authed(s.operatorOnly(s.removeNode)))
	r.GET("/v1/bridges", s.authed(s.operatorOnly(func(ctx *fasthttp.RequestCtx) {
		if s.cfg.Bridges == nil {
			writeJSON(ctx, 200, map[string]any{"bridges": []any{}})
			return
		}
		writeJSON(ctx, 200, s.cfg.Bridges())
	})))
	if cfg.Pprof {
		r.GET("/debug/pprof/{profile:*}", s.authed(s.operatorOnly(pprofhandler.PprofHandler)))
	}
	r.POST("/v1/tenants", s.authed(s.createTenant))
	r.GET("/v1/tenants", s.authed(s.listTenants))
	r.GET("/v1/tenants/{tenant}", s.authed(s.describeTenant))
	r.PATCH("/v1/tenants/{tenant}", s.authed(s.setQuotas))
	r.DELETE("/v1/tenants/{tenant}", s.authed(s.deleteTenant))
	r.POST("/v1/tenants/{tenant}/tokens", s.authed(s.issueToken))
	r.POST("/v1/tenants/{tenant}/keys", s.authed(s.addKey))
	r.GET("/v1/tenants/{tenant}/keys", s.authed(s.listKeys))
	r.DELETE("/v1/tenants/{tenant}/keys/{kid}", s.authed(s.removeKey))
	r.PUT("/v1/tenants/{tenant}/mqtt", s.authed(s.setMQTT))
	r.DELETE("/v1/tenants/{tenant}/mqtt", s.authed(s.setMQTT))
	for _, prefix := range []string{"/v1", "/v1/tenants/{tenant}"} {
		g := r.Group(prefix)
		g.POST("/topics", s.authed(s.createTopic))
		g.GET("/topics", s.authed(s.listTopics))
		g.GET("/topics/{topic}", s.authed(s.describeTopic))
		g.DELETE("/topics/{topic}", s.authed(s.deleteTopic))
		g.POST("/topics/{topic}/records", s.authed(s.produce))
		g.GET("/topics/{topic}/partitions/{partition}/records", s.authed(s.fetch))
		g.GET("/topics/{topic}/partitions/{partition}/offsets", s.authed(s.offsets))
		g.GET("/topics/{topic}/partitions/{partition}/checksum", s.authed(s.checksum))
		g.POST("/topics/{topic}/partitions/{partition}/repair", s.authed(s.repair))
		s.transformRoutes(g)
		s.groupRoutes(g)
		g.GET("/topics/{topic}/tail", s.authed(s.tail))
	}
	r.NotFound = func(ctx *fasthttp.RequestCtx) {
		writeError(ctx, eddy.Errorf(eddy.CodeNotFound, "no route %s %s", ctx.Method(), ctx.Path()))
	}
	r.MethodNotAllowed = func(ctx *fasthttp.RequestCtx) {
		writeErrorStatus(ctx, fasthttp.StatusMethodNotAllowed, eddy.Errorf(eddy.CodeInvalid, "method %s not allowed on %s", ctx.Method(), ctx.Path()))
	}
	r.PanicHandler = func(ctx *fasthttp.RequestCtx, v any) {
		s.log.Error("panic in handler", "path", string(ctx.Path()), "panic", fmt.Sprint(v))
		writeError(ctx, eddy.Errorf(eddy.CodeInternal, "internal error"))
	}
	s.srv = &fasthttp.Server{
		Handler: r.Handler,
		Name:    "eddy",
		// fasthttp answers a body over its limit and closes without reading
		// it, so a client still writing sees a reset, not the answer. It
		// reads up to twice the limit; Eddy enforces the limit itself (in
		// authed) with a JSON 413 on an intact connection.
		MaxRequestBodySize: 2*cfg.MaxBodyBytes + 64<<10,
		ReadTimeout:        60 * time.Second,
		WriteTimeout:       60 * time.Second,
		IdleTimeout:        120 * time.Second,
		ErrorHandler:       s.errorHandler,
		Logger:             fasthttpLogger{s.log},
		NoDefaultDate:      true,
		CloseOnShutdown:    true,
	}
	return s
}

type fasthttpLogger struct{ l *slog.Logger }

func (f fasthttpLogger) Printf(format string, args ...any) { f.l.Debug(fmt.Sprintf(format, args...)) }

// Start listens and serves in the background.
func (s *Server) Start() error {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("http listen %s: %w", s.cfg.Addr, err)
	}
	// fasthttp returns from Serve on EMFILE; the guard never passes it on.
	s.ln = netguard.Wrap(ln, netguard.Config{Name: "http", MaxConns: s.cfg.MaxConns, MaxConnsPerIP: s.cfg.MaxConnsPerIP,
		Logger: s.log, OnRefused: func(reason string) {
			s.m.GetOrCreateCounter(fmt.Sprintf(`eddy_connections_refused_total{listener="http",reason=%q}`, reason)).Inc()
		}})
	go func() { s.served <- s.srv.Serve(s.ln) }()
	return nil
}

// SetStarted tells /readyz the node finished starting: it answers 503
// until then, so nothing relies on a node whose bootstrap (the admin token,
// the CLI profile, other listeners) is not done.
func (s *Server) SetStarted() { s.started.Store(true) }

// Addr is the bound address (useful with port 0).
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Close stops accepting, lets in-flight requests finish (long polls return
// at once), and returns when they have or ctx ends.
func (s *Server) Close(ctx context.Context) error {
	select {
	case <-s.closing:
		return nil
	default:
	}
	close(s.closing)
	s.cancel()
	if s.ln == nil {
		return nil
	}
	return s.srv.ShutdownWithContext(ctx)
}

func (s *Server) errorHandler(ctx *fasthttp.RequestCtx, err error) {
	if errors.Is(err, fasthttp.ErrBodyTooLarge) {
		writeError(ctx, eddy.Errorf(eddy.CodeRequestTooLarge, "request body is over the %d-byte limit", s.cfg.MaxBodyBytes))
		return
	}
	writeError(ctx, eddy.Errorf(eddy.CodeInvalid, "bad request: %v", err))
}

// writeError answers {"error":{"code","message"}} with the code's status,
// and Retry-After when the client should retry.
func writeError(ctx *fasthttp.RequestCtx, err error) {
	e := eddy.AsError(err)
	writeErrorStatus(ctx, e.Code.HTTPStatus(), e)
}

func writeErrorStatus(ctx *fasthttp.RequestCtx, status int, e *eddy.Error) {
	if e.Code.Retriable() || e.Code == eddy.CodeStorageFull {
		secs := max((e.RetryAfterMs+999)/1000, 1)
		ctx.Response.Header.Set("Retry-After", strconv.FormatInt(secs, 10))
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // messages say <jwt>, not \u003cjwt\u003e
	enc.Encode(map[string]any{"error": map[string]string{"code": string(e.Code), "message": e.Message}})
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	ctx.SetBody(b.Bytes())
}

func writeJSON(ctx *fasthttp.RequestCtx, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeError(ctx, err)
		return
	}
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	ctx.SetBody(append(b, '\n'))
}

// authHandler is a handler that runs for an authenticated principal.
type authHandler func(ctx *fasthttp.RequestCtx, p *tenants.Principal)

// authed verifies the request's bearer token before h runs.
func (s *Server) authed(h authHandler) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		if n := len(ctx.PostBody()); n > s.cfg.MaxBodyBytes {
			writeError(ctx, eddy.Errorf(eddy.CodeRequestTooLarge, "request body is %d bytes, over the %d-byte limit", n, s.cfg.MaxBodyBytes))
			return
		}
		auth := string(ctx.Request.Header.Peek("Authorization"))
		token, ok := strings.CutPrefix(auth, "Bearer ")
		if !ok {
			token = ""
			if auth != "" {
				writeError(ctx, eddy.Errorf(eddy.CodeTokenMalformed, "the Authorization header must be \"Bearer <jwt>\""))
				return
			}
		}
		p, err := s.cfg.Verifier.Verify(strings.TrimSpace(token))
		if err != nil {
			ctx.Response.Header.Set("WWW-Authenticate", `Bearer realm="eddy"`)
			writeError(ctx, err)
			return
		}
		if s.b.Booting() {
			writeError(ctx, &eddy.Error{Code: eddy.CodeUnavailable, RetryAfterMs: 500,
				Message: "this node is starting and does not know its partitions' leaders yet; retry, or use another node"})
			return
		}
		h(ctx, p)
	}
}

// operatorOnly lets only operator tokens through; others get 403.
func (s *Server) operatorOnly(h fasthttp.RequestHandler) authHandler {
	return func(ctx *fasthttp.RequestCtx, p *tenants.Principal) {
		if !p.Operator() {
			writeError(ctx, eddy.Errorf(eddy.CodeForbidden, "this needs the operator scope"))
			return
		}
		h(ctx)
	}
}

// tenant is the tenant a request acts on: the path's, or the token's. A
// tenant the principal may not see is answered exactly like a tenant that
// does not exist, so other tenants' existence never leaks.
func (s *Server) tenant(ctx *fasthttp.RequestCtx, p *tenants.Principal) (eddy.TenantID, error) {
	id := p.Tenant
	if t, ok := ctx.UserValue("tenant").(string); ok {
		id = eddy.TenantID(t)
	}
	notFound := eddy.Errorf(eddy.CodeNotFound, "tenant %s does not exist", id)
	if !p.SeesTenant(id) || id.Validate() != nil {
		return "", notFound
	}
	if _, err := s.b.Tenant(id); err != nil {
		return "", notFound
	}
	return id, nil
}

// topicRef resolves the route's topic and checks that p may do a on it.
// The scope is checked against the name before the topic is looked up, so a
// refusal says nothing about whether the topic exists.
func (s *Server) topicRef(ctx *fasthttp.RequestCtx, p *tenants.Principal, a tenants.Action) (eddy.TopicRef, error) {
	t, err := s.tenant(ctx, p)
	if err != nil {
		return eddy.TopicRef{}, err
	}
	name := eddy.TopicName(ctx.UserValue("topic").(string))
	if err := name.Validate(); err != nil {
		return eddy.TopicRef{}, eddy.Errorf(eddy.CodeNotFound, "topic %q does not exist", string(name))
	}
	if !p.Can(a, t, name) {
		return eddy.TopicRef{}, eddy.Errorf(eddy.CodeForbidden, "the token has no %s scope for topic %s", actionName[a], name)
	}
	return eddy.TopicRef{Tenant: t, Name: name}, nil
}

var actionName = map[tenants.Action]string{tenants.Produce: "produce", tenants.Consume: "consume",
	tenants.Describe: "produce or consume", tenants.Admin: "admin", tenants.Operate: "operator"}

// partitionRef is the topic and partition a partition route names.
func (s *Server) partitionRef(ctx *fasthttp.RequestCtx, p *tenants.Principal, a tenants.Action) (eddy.TopicRef, eddy.Partition, error) {
	ref, err := s.topicRef(ctx, p, a)
	if err != nil {
		return ref, 0, err
	}
	v, _ := ctx.UserValue("partition").(string)
	n, err := strconv.ParseInt(v, 10, 32)
	if err != nil || n < 0 || strconv.FormatInt(n, 10) != v { // one spelling: no "+1", "01"
		return ref, 0, eddy.Errorf(eddy.CodeNotFound, "partition %q does not exist", v)
	}
	if err := s.refuseForwardLoop(ctx, ref, eddy.Partition(n)); err != nil {
		return ref, 0, err
	}
	return ref, eddy.Partition(n), nil
}

// ForwardedHeader marks a request one node forwarded to another; it is
// never forwarded again.
const ForwardedHeader = "Eddy-Forwarded"

// refuseForwardLoop answers 503 to a forwarded request for a partition this
// node does not hold (placement moved): forwarding it again could loop.
func (s *Server) refuseForwardLoop(ctx *fasthttp.RequestCtx, ref eddy.TopicRef, p eddy.Partition) error {
	if len(ctx.Request.Header.Peek(ForwardedHeader)) == 0 {
		return nil
	}
	meta, err := s.b.Topic(ref)
	if err != nil || p.Validate(meta.Partitions) != nil || s.b.IsLocal(meta, p) {
		return nil
	}
	return &eddy.Error{Code: eddy.CodeUnavailable, RetryAfterMs: 500, Message: "the partition moved off the node a request was forwarded to"}
}

// reqContext bounds a request. Long polls (cancelOnClose) end when the
// server closes; writes are left to finish their commit.
func (s *Server) reqContext(timeout time.Duration, cancelOnClose bool) (context.Context, context.CancelFunc) {
	parent := context.Background()
	if cancelOnClose {
		parent = s.base
	}
	return context.WithTimeout(parent, timeout)
}

func decodeStrict(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return eddy.Errorf(eddy.CodeInvalid, "malformed JSON body: %v", err)
	}
	if dec.More() {
		return eddy.Errorf(eddy.CodeInvalid, "malformed JSON body: trailing data")
	}
	return nil
}

// fetchLimits reads a fetch's max, max_bytes and wait_ms.
func (s *Server) fetchLimits(args *fasthttp.Args) (maxRecs, maxBytes, waitMs int64, err error) {
	if maxRecs, err = intArg(args, "max", 500, 1, 10_000); err != nil {
		return
	}
	if maxBytes, err = intArg(args, "max_bytes", 1<<20, 1, 16<<20); err != nil {
		return
	}
	waitMs, err = intArg(args, "wait_ms", 0, 0, s.cfg.MaxWait.Milliseconds())
	return
}

// maxRecordsPerRequest bounds one produce request.
const maxRecordsPerRequest = 100_000

func (s *Server) produce(ctx *fasthttp.RequestCtx, p *tenants.Principal) {
	ref, err := s.topicRef(ctx, p, tenants.Produce)
	if err != nil {
		writeError(ctx, err)
		return
	}
	recs, parts, err := s.parseProduce(ctx)
	if err != nil {
		writeError(ctx, err)
		return
	}
	if len(parts) > 0 && parts[0] >= 0 {
		if err := s.refuseForwardLoop(ctx, ref, parts[0]); err != nil {
			writeError(ctx, err)
			return
		}
	}
	// A forwarded request was admitted and transformed where it arrived;
	// the header is trusted only with an operator token.
	forwarded := len(ctx.Request.Header.Peek(ForwardedHeader)) > 0 && p.Operator()
	c, cancel := s.reqContext(s.cfg.RequestTimeout, false)
	defer cancel()
	ans, err := s.cfg.Producer.Produce(c, ingest.Request{Ref: ref, Records: recs, Parts: parts, Forwarded: forwarded})
	if err != nil {
		writeError(ctx, err)
		return
	}
	res, tr := ans.Offsets, ans.Transform
	out := make([]byte, 0, 16+len(res)*32)
	out = append(out, `{"offsets":[`...)
	for i, r := range res {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, `{"partition":`...)
		out = strconv.AppendInt(out, int64(r.Partition), 10)
		out = append(out, `,"offset":`...)
		out = strconv.AppendInt(out, int64(r.BaseOffset), 10)
		out = append(out, '}')
	}
	out = append(out, ']')
	if tr != nil {
		out = appendTransformJSON(out, tr)
	}
	out = append(out, "}\n"...)
	ctx.SetStatusCode(200)
	ctx.SetContentType("application/json")
	ctx.SetBody(out)
}

// parseProduce decodes a produce body by Content-Type. The records it
// returns own their bytes (nothing points into the fasthttp request).
func (s *Server) parseProduce(ctx *fasthttp.RequestCtx) ([]eddy.Record, []eddy.Partition, error) {
	ct := string(ctx.Request.Header.ContentType())
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	ct = strings.TrimSpace(strings.ToLower(ct))
	body := ctx.PostBody()
	now := time.Now().UnixMilli()
	var recs []eddy.Record
	var parts []eddy.Partition
	add := func(i int, jr *jsonRecord) error {
		if len(recs) >= maxRecordsPerRequest {
			return eddy.Errorf(eddy.CodeRequestTooLarge, "more than %d records in one request", maxRecordsPerRequest)
		}
		r, p, err := jr.toRecord(i, now)
		if err != nil {
			return err
		}
		recs = append(recs, r)
		parts = append(parts, p)
		return nil
	}
	switch ct {
	case "application/json", "":
		jrs, err := parseProduceJSON(body)
		if err != nil {
			return nil, nil, produceJSONError(err)
		}
		if len(jrs) == 0 {
			return nil, nil, eddy.Errorf(eddy.CodeInvalid, `body has no records: expected {"records":[{"value":...}]}`)
		}
		for i := range jrs {
			if err := add(i, &jrs[i]); err != nil {
				return nil, nil, err
			}
		}
	case "application/x-ndjson", "application/jsonl", "application/json-seq":
		sc := bufio.NewScanner(bytes.NewReader(body))
		sc.Buffer(make([]byte, 0, 64<<10), s.cfg.MaxBodyBytes)
		line := 0
		for sc.Scan() {
			line++
			b := bytes.TrimSpace(sc.Bytes())
			if len(b) == 0 {
				continue
			}
			jr, err := parseRecordJSON(b)
			if err != nil {
				return nil, nil, eddy.Errorf(eddy.CodeInvalid, "line %d: malformed JSON: %v", line, err)
			}
			if err := add(len(recs), &jr); err != nil {
				return nil, nil, err
			}
		}
		if err := sc.Err(); err != nil {
			return nil, nil, eddy.Errorf(eddy.CodeInvalid, "reading NDJSON: %v", err)
		}
		if len(recs) == 0 {
			return nil, nil, eddy.Errorf(eddy.CodeInvalid, "NDJSON body has no records")
		}
	case "application/octet-stream":
		r := eddy.Record{Value: bytes.Clone(body), Timestamp: now}
		if r.Value == nil {
			r.Value = []byte{}
		}
		args := ctx.QueryArgs()
		if args.Has("key") {
			r.Key = bytes.Clone(args.Peek("key"))
		}
		p := eddy.Partition(-1)
		if args.Has("partition") {
			n, err := strconv.ParseInt(string(args.Peek("partition")), 10, 32)
			if err != nil || n < 0 || strconv.FormatInt(n, 10) != string(args.Peek("partition")) {
				return nil, nil, eddy.Errorf(eddy.CodeInvalid, "partition %q is not a partition number", args.Peek("partition"))
			}
			p = eddy.Partition(n)
		}
		recs, parts = []eddy.Record{r}, []eddy.Partition{p}
	default:
		return nil, nil, eddy.Errorf(eddy.CodeUnsupportedMedia, "Content-Type %q: use application/json, application/x-ndjson or application/octet-stream", ct)
	}
	return recs, parts, nil
}

func intArg(args *fasthttp.Args, name string, def, lo, hi int64) (int64, error) {
	if !args.Has(name) {
		return def, nil
	}
	v, err := strconv.ParseInt(string(args.Peek(name)), 10, 64)
	if err != nil || v < lo || v > hi || strconv.FormatInt(v, 10) != string(args.Peek(name)) {
		return 0, eddy.Errorf(eddy.CodeInvalid, "%s must be an integer from %d to %d", name, lo, hi)
	}
	return v, nil
}

func (s *Server) fetch(ctx *fasthttp.RequestCtx, pr *tenants.Principal) {
	start := time.Now()
	ref, p, err := s.partitionRef(ctx, pr, tenants.Consume)
	if err != nil {
		writeError(ctx, err)
		return
	}
	args := ctx.QueryArgs()
	maxRecs, maxBytes, waitMs, err := s.fetchLimits(args)
	if err != nil {
		writeError(ctx, err)
		return
	}
	var offset int64
	if args.Has("offset") {
		if offset, err = intArg(args, "offset", 0, 0, 1<<62); err != nil {
			writeError(ctx, err)
			return
		}
	} else {
		po, err := s.b.Offsets(ref, p)
		if err != nil {
			writeError(ctx, err)
			return
		}
		offset = int64(po.LogStart)
	}
	format := string(args.Peek("format"))
	c, cancel := s.reqContext(time.Duration(waitMs)*time.Millisecond+5*time.Second, true)
	defer cancel()
	switch format {
	case "", "json", "binary":
	case "batches":
		s.fetchBatches(ctx, c, ref, p, offset, int(maxBytes), time.Duration(waitMs)*time.Millisecond)
		return
	default:
		writeError(ctx, eddy.Errorf(eddy.CodeInvalid, "format %q: use json, binary or batches", format))
		return
	}
	binary := format == "binary"
	res, err := s.b.Fetch(c, ref, p, eddy.Offset(offset), int(maxRecs), int(maxBytes), time.Duration(waitMs)*time.Millisecond)
	if err != nil {
		writeError(ctx, err)
		return
	}
	est := 128
	for i := range res.Records {
		est += 96 + res.Records[i].Size()*9/8
	}
	out := make([]byte, 0, est)
	out = append(out, `{"records":[`...)
	bytes := 0
	for i := range res.Records {
		if i > 0 {
			out = append(out, ',')
		}
		out = appendRecordJSON(out, &res.Records[i], binary)
		bytes += res.Records[i].Size()
	}
	out = append(out, `],"next_offset":`...)
	out = strconv.AppendInt(out, int64(res.NextOffset), 10)
	out = append(out, `,"high_watermark":`...)
	out = strconv.AppendInt(out, int64(res.HighWatermark), 10)
	out = append(out, `,"log_start_offset":`...)
	out = strconv.AppendInt(out, int64(res.LogStart), 10)
	out = append(out, "}\n"...)
	tm := s.topicMetrics(ref)
	tm.fetchRecords.Add(len(res.Records))
	tm.fetchBytes.Add(bytes)
	if waitMs == 0 || len(res.Records) > 0 {
		tm.fetchDuration.UpdateDuration(start)
	}
	ctx.SetStatusCode(200)
	ctx.SetContentType("application/json")
	// SetBodyRaw hands out over without a copy. SetBody would copy it into
	// one of fasthttp's pooled buffers, which keep the size of the largest
	// answers they held: after a burst of 1 MB fetches they held tens of MB.
	ctx.Response.SetBodyRaw(out)
}

// BatchesContentType is the media type of a format=batches fetch: Kafka v2
// record batches back to back, exactly as stored.
const BatchesContentType = "application/vnd.eddy.kafka-record-batches"

// fetchBatches answers with the stored record batches, no re-encoding. The
// offsets a JSON fetch puts in its body go in headers.
func (s *Server) fetchBatches(ctx *fasthttp.RequestCtx, c context.Context, ref eddy.TopicRef, p eddy.Partition, offset int64, maxBytes int, wait time.Duration) {
	rr, err := s.b.FetchBatches(c, ref, p, eddy.Offset(offset), maxBytes, wait)
	if err != nil {
		writeError(ctx, err)
		return
	}
	next, records := offset, 0
	segment.SplitVerified(rr.Batches, func(h segment.BatchHeader, _ []byte) error {
		next = h.LastOffset() + 1
		records += int(h.Count())
		return nil
	})
	tm := s.topicMetrics(ref)
	tm.fetchRecords.Add(records)
	tm.fetchBytes.Add(len(rr.Batches))
	h := &ctx.Response.Header
	h.Set("Eddy-Next-Offset", strconv.FormatInt(next, 10))
	h.Set("Eddy-High-Watermark", strconv.FormatInt(rr.HighWatermark, 10))
	h.Set("Eddy-Log-Start-Offset", strconv.FormatInt(rr.LogStart, 10))
	ctx.SetStatusCode(200)
	ctx.SetContentType(BatchesContentType)
	ctx.Response.SetBodyRaw(rr.Batches) // read for this request only
}

func (s *Server) offsets(ctx *fasthttp.RequestCtx, pr *tenants.Principal) {
	ref, p, err := s.partitionRef(ctx, pr, tenants.Consume)
	if err != nil {
		writeError(ctx, err)
		return
	}
	po, err := s.b.Offsets(ref, p)
	if err != nil {
		writeError(ctx, err)
		return
	}
	writeJSON(ctx, 200, map[string]any{"partition": int32(p), "earliest": int64(po.LogStart), "latest": int64(po.HighWatermark),
		"leader": po.Leader, "size_bytes": po.Bytes})
}
