package httpapi

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/eddy-broker/eddy"
	"github.com/eddy-broker/eddy/consume"
	"github.com/eddy-broker/eddy/ingest"
	"github.com/eddy-broker/eddy/internal/deadline"
	"github.com/eddy-broker/eddy/internal/membudget"
	"github.com/eddy-broker/eddy/internal/netguard"
	"github.com/eddy-broker/eddy/internal/readslots"
	"github.com/eddy-broker/eddy/multiraft/catalog"
	"github.com/eddy-broker/eddy/series"
	"github.com/eddy-broker/eddy/tenants"
	"github.com/eddy-broker/eddy/web"
	"github.com/fasthttp/router"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/pprofhandler"
)

// Broker is what the HTTP API needs from the node; *multiraft.Host is one.
// It is the sum of small interfaces, each declared by the resource that
// uses it: the data path needs only the produce path's catalog and
// appender (ingest), the consume path's (consume) and a Reader.
type Broker interface {
	ingest.Catalog
	ingest.Appender
	consume.Broker
	Catalog
	Reader
	TopicAdmin
	TenantAdmin
	GroupAdmin
	TransformAdmin
	LinkAdmin
	ClusterAdmin
}

// Config configures the HTTP server. Zero values mean the defaults.
type Config struct {
	// Addr is the listen address. Defaults to :8080.
	Addr string
	// MaxBodyBytes bounds a request body. Defaults to 16 MiB.
	MaxBodyBytes int
	// FetchMaxBytes bounds a fetch's max_bytes. Defaults to 16 MiB.
	FetchMaxBytes int
	// Bodies bounds the bytes of request bodies the node holds at once
	// (shared with the other listeners). Defaults to a budget of its own
	// of 8 bodies of MaxBodyBytes.
	Bodies *membudget.Budget
	// Reads bounds the reads one tenant runs at once (shared with the
	// other listeners); nil bounds none.
	Reads *readslots.Slots
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
	// ReadQuota throttles a tenant's reads to its consume_bytes_per_sec
	// quota (shared with the other listeners). Defaults to one over the
	// Limiter and the Broker's tenants.
	ReadQuota ReadQuota
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
	// DefaultQuotas are the quotas of a tenant created without them
	// (SetDefaultQuotas changes them while the server runs).
	DefaultQuotas tenants.Quotas
	// Listeners reports the node's other listeners (MQTT, ...) for
	// /readyz, which fails while one is not serving.
	Listeners func() []netguard.Status
	// Console serves the web console's files under /console/ (package
	// web). Its files need no token; its data does.
	Console bool
	// Series is the node's sampled history (GET /v1/series); nil: none.
	Series *series.Store
	// MQTTConnections lists the MQTT listener's live connections of a
	// tenant ("": all) and MQTTKick disconnects one; nil: no listener.
	MQTTConnections func(tenant eddy.TenantID) any
	MQTTKick        func(tenant eddy.TenantID, clientID string) bool
	// Peer asks another node for a path of its API (GET, as an
	// operator): what ?nodes=all gathers (transform breakers, replica
	// checksums); nil: this node only.
	Peer func(ctx context.Context, n catalog.NodeMeta, path string) ([]byte, error)
	// TLS, when set, serves HTTPS only (http_tls_cert, http_tls_key).
	TLS *tls.Config
	// LinkTargets refuses a link's brokers its tenant may not reach
	// (link_allowed_targets), when the link is created; nil allows all.
	LinkTargets func(tenant eddy.TenantID, to []string) error
}

// Server is the data-plane HTTP API on fasthttp.
type Server struct {
	cfg      Config
	b        Broker
	log      *slog.Logger
	srv      *fasthttp.Server
	router   *router.Router // its List() is every route, for the auth walk
	ln       *netguard.Listener
	m        *metrics.Set
	tm       topicMetricsCache
	started  atomic.Bool // the node finished starting (SetStarted)
	defaults atomic.Pointer[tenants.Quotas]
	sessions *consume.Sessions // consumer group members' sessions on this node
	tails    tailSlots
	closing  chan struct{}
	served   chan error
	base     context.Context
	cancel   context.CancelFunc
	// produceDeadline bounds a produce's wait for its commit
	// (RequestTimeout), a context shared by the requests of each tick.
	produceDeadline *deadline.Shared
}

// New builds a server; Start listens.
func New(cfg Config, b Broker) *Server {
	if cfg.Addr == "" {
		cfg.Addr = ":8080"
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 16 << 20
	}
	if cfg.FetchMaxBytes <= 0 {
		cfg.FetchMaxBytes = 16 << 20
	}
	if cfg.Bodies == nil {
		cfg.Bodies = membudget.New(8 * int64(cfg.MaxBodyBytes))
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
	if cfg.ReadQuota == nil {
		cfg.ReadQuota = tenants.ReadQuota{Limiter: cfg.Limiter, Quotas: catalog.QuotasOf(b.Tenant)}
	}
	if cfg.Producer == nil {
		var tx ingest.Transformer
		if cfg.Transformer != nil {
			tx = cfg.Transformer
		}
		cfg.Producer = ingest.New(b, b, tx, cfg.Limiter, cfg.Metrics)
	}
	s := &Server{cfg: cfg, b: b, sessions: consume.New(b), log: cfg.Logger, m: cfg.Metrics, closing: make(chan struct{}), served: make(chan error, 1),
		produceDeadline: deadline.New(cfg.RequestTimeout)}
	s.base, s.cancel = context.WithCancel(context.Background())
	s.SetDefaultQuotas(cfg.DefaultQuotas)
	r := router.New()
	s.router = r
	r.GET("/healthz", s.healthz)
	r.GET("/readyz", s.readyz)
	if cfg.Console {
		// Relative redirects: the console works behind a proxy's prefix.
		r.GET("/", redirect("console/"))
		r.GET("/console/{path:*}", web.Handler("/console/"))
	}
	r.GET("/v1/whoami", s.authed(s.whoami))
	if cfg.MetricsPublic {
		r.GET("/metrics", s.metrics)
	} else {
		r.GET("/metrics", s.authed(s.operatorOnly(s.metrics)))
	}
	r.GET("/v1/cluster", s.authed(s.operatorOnly(s.cluster)))
	r.GET("/v1/cluster/partitions", s.authed(s.operatorOnly(s.clusterPartitions)))
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
	r.POST("/v1/tenants/{tenant}/mqtt/test", s.authed(s.mqttTest))
	for _, prefix := range []string{"/v1", "/v1/tenants/{tenant}"} {
		g := r.Group(prefix)
		g.POST("/topics", s.authed(s.createTopic))
		g.GET("/topics", s.authed(s.listTopics))
		g.GET("/topics/{topic}", s.authed(s.describeTopic))
		g.DELETE("/topics/{topic}", s.authed(s.deleteTopic))
		g.PATCH("/topics/{topic}", s.authed(s.alterTopic))
		g.POST("/topics/{topic}/records", s.authed(s.produce))
		g.GET("/topics/{topic}/partitions/{partition}/records", s.authed(s.fetch))
		g.DELETE("/topics/{topic}/partitions/{partition}/records", s.authed(s.deleteRecords))
		g.GET("/topics/{topic}/partitions/{partition}/offsets", s.authed(s.offsets))
		g.GET("/topics/{topic}/partitions/{partition}/checksum", s.authed(s.checksum))
		g.POST("/topics/{topic}/partitions/{partition}/repair", s.authed(s.repair))
		s.transformRoutes(g)
		s.groupRoutes(g)
		s.linkRoutes(g)
		g.GET("/topics/{topic}/tail", s.authed(s.tail))
		g.GET("/topics/{topic}/partition-for-key", s.authed(s.partitionForKey))
		g.GET("/series", s.authed(s.series))
		g.GET("/mqtt/connections", s.authed(s.mqttConnections))
		g.DELETE("/mqtt/connections/{client}", s.authed(s.mqttKick))
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
		// A body is read by the handler (authed, body.go), once the token
		// is verified and the node has room for it, never before: fasthttp
		// reads only its first 8 KiB with the headers.
		StreamRequestBody:  true,
		MaxRequestBodySize: cfg.MaxBodyBytes,
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

// SetDefaultQuotas sets the quotas of tenants created without them from
// now on (a configuration reload).
func (s *Server) SetDefaultQuotas(q tenants.Quotas) { s.defaults.Store(&q) }

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
	var serve net.Listener = s.ln
	if s.cfg.TLS != nil {
		serve = tls.NewListener(s.ln, s.cfg.TLS) // the handshake under the read timeout
	}
	go func() { s.served <- s.srv.Serve(serve) }()
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
