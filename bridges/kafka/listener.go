package kafka

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/eddy-broker/eddy"
	"github.com/eddy-broker/eddy/ingest"
	"github.com/eddy-broker/eddy/internal/membudget"
	"github.com/eddy-broker/eddy/internal/netguard"
	"github.com/eddy-broker/eddy/internal/readslots"
	"github.com/eddy-broker/eddy/multiraft"
	"github.com/eddy-broker/eddy/multiraft/catalog"
	"github.com/eddy-broker/eddy/tenants"
)

// Producer is the node's produce path (*ingest.Path).
type Producer interface {
	Produce(ctx context.Context, req ingest.Request) (ingest.Result, error)
}

// Broker is what the listener reads of the cluster and its partitions;
// *multiraft.Host is one.
type Broker interface {
	Topic(ref eddy.TopicRef) (*catalog.TopicMeta, error)
	Topics(tenant eddy.TenantID) []*catalog.TopicMeta
	CreateTopic(ctx context.Context, tenant eddy.TenantID, spec catalog.TopicSpec) (*catalog.TopicMeta, error)
	DeleteTopic(ctx context.Context, ref eddy.TopicRef) error
	// AlterTopic changes config keys ("" resets one) and grows partitions.
	AlterTopic(ctx context.Context, ref eddy.TopicRef, config map[string]string, partitions int32) (*catalog.TopicMeta, error)
	Nodes() []catalog.NodeMeta
	NodeID() uint64
	// ControllerLeader is the node leading the controller, 0 if unknown.
	ControllerLeader() uint64
	// PartitionLeader is the partition's Raft leader and term, as far as
	// this node knows them.
	PartitionLeader(meta *catalog.TopicMeta, p eddy.Partition) (node, term uint64, ok bool)
	// FetchBatchesPooled reads stored batches, into a buffer of
	// internal/bufpool when Pooled says so, to give back once the answer
	// is written.
	FetchBatchesPooled(ctx context.Context, ref eddy.TopicRef, p eddy.Partition, offset eddy.Offset, maxBytes int, wait time.Duration) (eddy.FetchedBatches, error)
	// BatchBytesAt is the size of the stored batch holding offset (asked
	// of a node with a replica), which a read returns whole.
	BatchBytesAt(ref eddy.TopicRef, p eddy.Partition, offset eddy.Offset) int
	// AwaitAny waits up to wait for a record at any of the places,
	// reading none of those this node holds.
	AwaitAny(ctx context.Context, at []multiraft.PartitionAt, wait time.Duration)
	Offsets(ref eddy.TopicRef, p eddy.Partition) (multiraft.PartitionOffsets, error)
	// AllocKafkaProducer hands out a producer id; KafkaProducer tells
	// whether one was handed out (a batch naming another is refused).
	AllocKafkaProducer(ctx context.Context, tenant eddy.TenantID) (int64, error)
	KafkaProducer(pid int64) bool
	// Consumer groups: the catalog's view, a Kafka coordinator's
	// rebalances and commits.
	Group(tenant eddy.TenantID, group string) (*catalog.GroupMeta, error)
	Groups(tenant eddy.TenantID) []*catalog.GroupMeta
	KafkaGroup(ctx context.Context, view *catalog.GroupMeta) error
	KafkaCommit(ctx context.Context, tenant eddy.TenantID, group string, offsets map[string]int64, metadata map[string]string) error
	DeleteGroup(ctx context.Context, tenant eddy.TenantID, group string) error
	DeleteOffsets(ctx context.Context, tenant eddy.TenantID, group string, keys []string) (*catalog.GroupMeta, error)
	// OffsetForTime is the first offset at or after a timestamp, from a
	// replica of the partition (-1 when none).
	OffsetForTime(ref eddy.TopicRef, p eddy.Partition, ts int64) (offset, timestamp int64, err error)
	// DeleteRecords moves a partition's log start (-1: to its high
	// watermark), through any node, and returns the log start after it.
	DeleteRecords(ctx context.Context, ref eddy.TopicRef, p eddy.Partition, before int64) (int64, error)
	// LocalReplicas lists what this node holds of a tenant's partitions,
	// and Volume its data directory and that disk's size and free space
	// (DescribeLogDirs).
	LocalReplicas(tenant eddy.TenantID) []multiraft.ReplicaSize
	Volume() (dir string, total, free uint64, ok bool)
}

// Config configures the listener. Zero values mean the defaults.
type Config struct {
	// Addr is the listen address. Defaults to :9092.
	Addr string
	// Advertise is the host:port clients are told to reach this node at
	// (Metadata). Defaults to Addr, with 127.0.0.1 for a wildcard host.
	Advertise string
	// ClusterID is what Metadata names the cluster. Defaults to "eddy".
	ClusterID string
	// TLS, when set, serves Kafka over TLS.
	TLS *tls.Config
	// Verifier authenticates the JWT a client presents over SASL. Required.
	Verifier *tenants.Verifier
	// MaxRequestBytes bounds one request of an authenticated connection
	// (Kafka's socket.request.max.bytes). Defaults to 16 MiB. Before
	// authentication a request is at most 64 KiB.
	MaxRequestBytes int
	// FetchMaxBytes bounds a Fetch's answer whatever its MaxBytes asks
	// (Kafka's fetch.max.bytes; at least one batch is answered). Defaults
	// to 16 MiB.
	FetchMaxBytes int
	// Bodies bounds the bytes of requests the node holds at once (shared
	// with the other listeners; Kafka's queued.max.request.bytes).
	// Defaults to a budget of its own of 8 requests of MaxRequestBytes.
	Bodies *membudget.Budget
	// Reads bounds the reads one tenant runs at once (shared with the
	// other listeners); nil bounds none.
	Reads *readslots.Slots
	// ReadQuota throttles a tenant's fetches to its consume_bytes_per_sec
	// quota (shared with the other listeners); nil throttles none.
	ReadQuota ReadQuota
	// AuthTimeout bounds the time from accept to a successful SASL
	// authentication. Defaults to 10 s.
	AuthTimeout time.Duration
	// IdleTimeout closes a connection that sends nothing for so long
	// (Kafka's connections.max.idle.ms). Defaults to 10 minutes.
	IdleTimeout time.Duration
	// MaxConnections and MaxConnectionsPerIP bound the open connections;
	// more are closed at accept. 0: no bound.
	MaxConnections      int
	MaxConnectionsPerIP int
	// TenantMaxConnections is a tenant's bound on its authenticated
	// connections here (its max_connections quota; 0: none), so that a
	// tenant connecting from many addresses cannot take the node's
	// MaxConnections from the others. Nil: no bound.
	TenantMaxConnections func(eddy.TenantID) int64
	// RequestTimeout bounds a produce's wait for its commit when the
	// client's own timeout is longer. Defaults to 30 s.
	RequestTimeout time.Duration
	// GroupInitialRebalanceDelay is how long the first rebalance of an
	// empty group waits for more members to join (Kafka's
	// group.initial.rebalance.delay.ms). Defaults to 3 s.
	GroupInitialRebalanceDelay time.Duration
	// MaxCommitMetadataBytes bounds an offset commit's metadata string
	// (Kafka's offset.metadata.max.bytes); longer is
	// OFFSET_METADATA_TOO_LARGE. Every node holds it in the controller's
	// state, so the default is 512, below Kafka's 4096; negative: none kept.
	MaxCommitMetadataBytes int
	Metrics                *metrics.Set
	Logger                 *slog.Logger
}

// preAuthMaxBytes bounds a request before the connection authenticated:
// ApiVersions and SASL requests are small.
const preAuthMaxBytes = 64 << 10

// Listener serves the Kafka protocol.
type Listener struct {
	cfg  Config
	prod Producer
	b    Broker
	log  *slog.Logger
	m    *listenerMetrics

	ln        net.Listener
	guard     *netguard.Listener
	mu        sync.Mutex
	conns     map[*conn]struct{}
	perTenant map[eddy.TenantID]int64 // authenticated connections
	closing   bool
	wg        sync.WaitGroup
	base      context.Context // ends at Close: requests in flight give up
	cancel    context.CancelFunc
	groups    *coordinator
}

// New builds a listener; Start listens.
func New(cfg Config, prod Producer, b Broker) *Listener {
	if cfg.Addr == "" {
		cfg.Addr = ":9092"
	}
	if cfg.ClusterID == "" {
		cfg.ClusterID = "eddy"
	}
	if cfg.MaxRequestBytes <= 0 {
		cfg.MaxRequestBytes = 16 << 20
	}
	if cfg.FetchMaxBytes <= 0 {
		cfg.FetchMaxBytes = 16 << 20
	}
	if cfg.ReadQuota == nil {
		cfg.ReadQuota = noQuota{}
	}
	if cfg.Bodies == nil {
		cfg.Bodies = membudget.New(8 * int64(cfg.MaxRequestBytes))
	}
	// A fetch holds twice what it reads; a tenant's share (half the
	// budget) holds two of the largest, besides its requests.
	cfg.FetchMaxBytes = min(cfg.FetchMaxBytes, int(cfg.Bodies.Total()/8))
	if cfg.AuthTimeout <= 0 {
		cfg.AuthTimeout = 10 * time.Second
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 10 * time.Minute
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 30 * time.Second
	}
	if cfg.GroupInitialRebalanceDelay <= 0 {
		cfg.GroupInitialRebalanceDelay = 3 * time.Second
	}
	if cfg.MaxCommitMetadataBytes == 0 {
		cfg.MaxCommitMetadataBytes = 512
	}
	if cfg.Metrics == nil {
		cfg.Metrics = metrics.NewSet()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	l := &Listener{cfg: cfg, prod: prod, b: b, log: cfg.Logger, m: newListenerMetrics(cfg.Metrics), conns: map[*conn]struct{}{},
		perTenant: map[eddy.TenantID]int64{}}
	l.base, l.cancel = context.WithCancel(context.Background())
	return l
}

// Start binds the address and serves in the background.
func (l *Listener) Start() error {
	ln, err := net.Listen("tcp", l.cfg.Addr)
	if err != nil {
		return err
	}
	l.guard = netguard.Wrap(ln, netguard.Config{Name: "kafka", MaxConns: l.cfg.MaxConnections,
		MaxConnsPerIP: l.cfg.MaxConnectionsPerIP, Logger: l.log,
		OnRefused: func(reason string) { l.m.refused(reason) }})
	l.ln = l.guard
	if l.cfg.TLS != nil {
		l.ln = tls.NewListener(l.guard, l.cfg.TLS)
	}
	l.groups = newCoordinator(l)
	l.wg.Add(1)
	go l.accept()
	return nil
}

func (l *Listener) accept() {
	defer l.wg.Done()
	for {
		nc, err := l.ln.Accept()
		if err != nil {
			return
		}
		c := newConn(l, nc)
		l.mu.Lock()
		if l.closing {
			l.mu.Unlock()
			nc.Close()
			return
		}
		l.conns[c] = struct{}{}
		l.wg.Add(1)
		l.mu.Unlock()
		go func() {
			defer l.wg.Done()
			c.serve()
			l.mu.Lock()
			delete(l.conns, c)
			l.uncountLocked(c)
			l.mu.Unlock()
		}()
	}
}

// count counts c's authenticated connection against its tenant's bound,
// or refuses it. A connection counts once, for the tenant it first
// authenticated as; re-authenticating (KIP-368) keeps it.
func (l *Listener) count(c *conn, t eddy.TenantID) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if c.counted != "" {
		if c.counted != t {
			return eddy.Errorf(eddy.CodeTokenTenantMismatch, "a connection re-authenticates as the tenant it authenticated as (%s), not %s", c.counted, t)
		}
		return nil
	}
	if l.cfg.TenantMaxConnections != nil {
		if q := l.cfg.TenantMaxConnections(t); q > 0 && l.perTenant[t] >= q {
			return eddy.Errorf(eddy.CodeQuotaExceeded, "tenant %s is at its limit of %d Kafka connections on this node (max_connections)", t, q)
		}
	}
	l.perTenant[t]++
	c.counted = t
	return nil
}

// uncountLocked gives back what count took (l.mu held).
func (l *Listener) uncountLocked(c *conn) {
	if c.counted == "" {
		return
	}
	if l.perTenant[c.counted]--; l.perTenant[c.counted] <= 0 {
		delete(l.perTenant, c.counted)
	}
	c.counted = ""
}

// Addr is the bound address.
func (l *Listener) Addr() string {
	if l.ln == nil {
		return l.cfg.Addr
	}
	return l.ln.Addr().String()
}

// advertised is the host and port Metadata names for this node.
func (l *Listener) advertised() (string, int32) {
	a := l.cfg.Advertise
	if a == "" {
		a = l.Addr()
	}
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		return a, 9092
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	n, _ := strconv.Atoi(port)
	return host, int32(n)
}

// Status reports the listener for /readyz.
func (l *Listener) Status() netguard.Status { return l.guard.Status() }

// Close stops accepting, closes every connection and waits for their
// goroutines (a produce in flight finishes or times out first).
func (l *Listener) Close(ctx context.Context) {
	l.mu.Lock()
	if l.closing {
		l.mu.Unlock()
		return
	}
	l.closing = true
	l.cancel()
	if l.ln != nil {
		l.ln.Close()
	}
	for c := range l.conns {
		c.nc.Close()
	}
	l.mu.Unlock()
	done := make(chan struct{})
	go func() { l.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
}

type listenerMetrics struct {
	set      *metrics.Set
	requests map[int16]*metrics.Counter
	failed   *metrics.Counter
	authFail *metrics.Counter
	// fetchNoRoom counts fetches answered without records because the
	// node's request memory had no room for them by their MaxWaitMillis.
	fetchNoRoom *metrics.Counter
}

func newListenerMetrics(set *metrics.Set) *listenerMetrics {
	m := &listenerMetrics{set: set, requests: map[int16]*metrics.Counter{},
		failed:      set.GetOrCreateCounter(`eddy_kafka_connections_closed_total{reason="protocol"}`),
		authFail:    set.GetOrCreateCounter(`eddy_kafka_auth_failures_total`),
		fetchNoRoom: set.GetOrCreateCounter(`eddy_kafka_fetch_memory_waits_total`)}
	for key := range apis {
		m.requests[key] = set.GetOrCreateCounter(`eddy_kafka_requests_total{api="` + apis[key].name + `"}`)
	}
	return m
}

func (m *listenerMetrics) refused(reason string) {
	m.set.GetOrCreateCounter(`eddy_connections_refused_total{listener="kafka",reason="` + reason + `"}`).Inc()
}
