// Package node is the composition root: it builds a node from its Config,
// starts the Raft host and the listeners, and stops them in reverse order.
package node

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eddy-broker/eddy/internal/promtext"

	"github.com/eddy-broker/eddy"
	"github.com/eddy-broker/eddy/internal/logkey"
	"github.com/eddy-broker/eddy/series"

	"github.com/VictoriaMetrics/metrics"
	httpapi "github.com/eddy-broker/eddy/bridges/http"
	"github.com/eddy-broker/eddy/bridges/kafka"
	mqttapi "github.com/eddy-broker/eddy/bridges/mqtt"
	"github.com/eddy-broker/eddy/ingest"
	"github.com/eddy-broker/eddy/internal/membudget"
	"github.com/eddy-broker/eddy/internal/netguard"
	"github.com/eddy-broker/eddy/internal/readslots"
	"github.com/eddy-broker/eddy/links"
	"github.com/eddy-broker/eddy/multiraft"
	"github.com/eddy-broker/eddy/multiraft/catalog"
	"github.com/eddy-broker/eddy/tenants"
)

// Node is one running Eddy node.
type Node struct {
	cfg      Config
	log      *slog.Logger
	metrics  *metrics.Set
	host     *multiraft.Host
	http     *httpapi.Server
	signer   atomic.Pointer[tenants.Signer]
	tx       *transformer
	mqtt     *mqttapi.Listener // nil when off
	kafka    *kafka.Listener   // nil when off
	bridges  *bridgeSet
	links    *links.Manager
	targets  links.Targets      // where tenants' links may connect
	tlsFiles []tlsFile          // certificates and CAs, for Reload
	given    Config             // the configuration as loaded, for Reload
	cancel   context.CancelFunc // stops the bridges and the sampler

	series   *series.Store // the console's charts; nil when off
	sampling sync.WaitGroup
}

// New validates cfg and builds the node. It does no I/O.
func New(cfg Config, log *slog.Logger) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	given := cfg // as configured, before the limits are fitted (Reload compares with it)
	if nofile, err := netguard.RaiseFileLimit(); err != nil {
		log.Warn("cannot read the descriptor limit", logkey.Err, err)
	} else if cfg.fitConnections(nofile) {
		log.Warn("connection limits lowered to fit the descriptor limit (raise it with ulimit -n or LimitNOFILE=)",
			"nofile", nofile, "http_max_connections", cfg.HTTPMaxConnections, "mqtt_max_connections", cfg.MQTTMaxConnections, "kafka_max_connections", cfg.KafkaMaxConnections)
	}
	if limit, from := applyMemoryLimit(cfg.MemoryLimit); limit > 0 {
		log.Info("soft memory limit set", "bytes", limit, "from", from)
	}
	if keepHeapFloor(cfg.GCHeapFloor) {
		log.Info("garbage collection goal kept at least gc_heap_floor", "bytes", cfg.GCHeapFloor)
	}
	n := &Node{cfg: cfg, given: given, log: log, metrics: metrics.NewSet()}
	n.targets, _ = links.ParseTargets(cfg.LinkAllowedTargets) // Validate parsed it
	if cfg.ConsoleSeries {
		n.series = series.New(series.Config{Step: cfg.ConsoleSeriesStep})
	}
	m := n.metrics
	batchRecords := m.NewPrometheusHistogramExt("eddy_proposal_records", promtext.CountBuckets)
	batchBytes := m.NewPrometheusHistogramExt("eddy_proposal_bytes", promtext.ByteBuckets)
	proposalSecs := m.NewPrometheusHistogramExt("eddy_proposal_duration_seconds", promtext.DurationBuckets)
	leaderChanges := m.NewCounter("eddy_raft_leader_changes_total")
	logSyncs := m.NewPrometheusHistogramExt("eddy_raft_log_sync_seconds", promtext.SyncBuckets)
	partSyncs := m.NewPrometheusHistogramExt("eddy_partition_sync_seconds", promtext.DurationBuckets)
	peerTLS, err := n.raftTLS(m)
	if err != nil {
		return nil, err
	}
	var httpTLS *tls.Config
	var httpsPeers *http.Transport
	if cfg.HTTPTLSCert != "" {
		if httpTLS, err = n.loadTLS(m, "http", cfg.HTTPTLSCert, cfg.HTTPTLSKey); err != nil {
			return nil, err
		}
		if httpsPeers, err = n.httpsPeers(); err != nil {
			return nil, err
		}
	}
	fw := newForwarder(n.signer.Load, httpsPeers)
	host, err := multiraft.New(multiraft.Config{
		PeerTLS:                  peerTLS,
		PeerTLSPermissive:        cfg.RaftTLSPermissive,
		MaxPeerHandshakes:        cfg.RaftMaxHandshakes,
		NodeID:                   cfg.NodeID,
		RaftAddr:                 cfg.RaftAddr,
		HTTPAddr:                 cfg.advertiseHTTP(),
		KafkaAddr:                cfg.advertiseKafka(),
		Dir:                      cfg.DataDir,
		Peers:                    cfg.Peers,
		Join:                     cfg.Join,
		Linger:                   cfg.Linger,
		MaxBatchBytes:            cfg.MaxBatchBytes,
		MinFreeBytes:             cfg.MinFreeBytes,
		DiskReserveBytes:         cfg.DiskReserveBytes,
		RetentionInterval:        cfg.RetentionInterval,
		CompactionInterval:       cfg.CompactionInterval,
		CompactionKeyBytes:       cfg.CompactionKeyBytes,
		CompactionBytesPerSec:    cfg.CompactionBytesPerSec,
		SizeReportInterval:       cfg.SizeReportInterval,
		SyncBytes:                cfg.SyncBytes,
		SegmentCacheBytes:        cfg.SegmentCacheBytes,
		RaftLogStore:             cfg.RaftLogStore,
		RaftLogRetainBytes:       cfg.RaftLogRetainBytes,
		MaxUnappliedBytes:        cfg.RaftMaxUnappliedBytes,
		TenantControllerInFlight: cfg.TenantControllerInFlight,
		Logger:                   log,
		Forwarder:                fw,
		Hooks: multiraft.Hooks{
			OnProposal: func(records, bytes int, d time.Duration) {
				batchRecords.Update(float64(records))
				batchBytes.Update(float64(bytes))
				proposalSecs.Update(d.Seconds())
			},
			OnLeaderChange:  func(shardID, leaderID uint64) { leaderChanges.Inc() },
			OnLogSync:       func(d time.Duration) { logSyncs.Update(d.Seconds()) },
			OnPartitionSync: func(d time.Duration) { partSyncs.Update(d.Seconds()) },
			OnCompaction: func(t eddy.TenantID, records, bytes int64, err error) {
				if err != nil {
					m.GetOrCreateCounter(fmt.Sprintf(`eddy_compaction_errors_total{tenant=%q}`, t)).Inc()
					return
				}
				m.GetOrCreateCounter(fmt.Sprintf(`eddy_compactions_total{tenant=%q}`, t)).Inc()
				m.GetOrCreateCounter(fmt.Sprintf(`eddy_compaction_dropped_records_total{tenant=%q}`, t)).Add(int(records))
				m.GetOrCreateCounter(fmt.Sprintf(`eddy_compaction_freed_bytes_total{tenant=%q}`, t)).Add(int(bytes))
			},
			OnPeerRefused: func(reason string) {
				m.GetOrCreateCounter(fmt.Sprintf(`eddy_connections_refused_total{listener="raft",reason=%q}`, reason)).Inc()
			},
			OnControllerWait: func(t eddy.TenantID, d time.Duration) {
				m.GetOrCreateCounter(fmt.Sprintf(`eddy_tenant_controller_waits_total{tenant=%q}`, t)).Inc()
			},
		},
	})
	if err != nil {
		return nil, err
	}
	n.host = host
	if peerTLS != nil {
		m.GetOrCreateGauge("eddy_raft_plain_connections", func() float64 { return float64(host.PlainPeerConnections()) })
	}
	n.tx = newTransformer(cfg, host, n)
	limiter := tenants.NewLimiter(nil) // one per node: HTTP and MQTT share the tenants' buckets
	limiter.MaxTimestampAhead = cfg.MaxTimestampAhead
	throttled := m.NewCounter("eddy_auth_throttled_total")
	verifier := &tenants.Verifier{Audience: cfg.ClusterName, Keys: host.Key, Incarnation: host.Incarnation,
		Failures: &tenants.FailureLimit{PerSecond: cfg.AuthFailuresPerIP, Burst: 10 * cfg.AuthFailuresPerIP, OnThrottle: throttled.Inc}}
	path := ingest.New(host, host, n.tx, limiter, m)
	in := mqttIngest{Path: path, host: host}
	readQuota := tenants.ReadQuota{Limiter: limiter, Quotas: catalog.QuotasOf(host.Tenant), // HTTP and Kafka reads: consume_bytes_per_sec
		OnThrottle: func(t eddy.TenantID, _ time.Duration) {
			m.GetOrCreateCounter(fmt.Sprintf(`eddy_tenant_consume_throttled_total{tenant=%q}`, t)).Inc()
		}}
	bodies := membudget.New(cfg.MaxRequestMemory) // HTTP bodies, Kafka requests, large MQTT packets: together
	readWaits := m.NewCounter("eddy_tenant_read_waits_total")
	reads := readslots.New(cfg.ReadSlots(), readWaits.Inc) // HTTP and Kafka reads: a tenant's share of the CPUs
	m.GetOrCreateGauge("eddy_request_memory_bytes", func() float64 { return float64(bodies.Used()) })
	m.GetOrCreateGauge("eddy_tenant_reads_waiting", func() float64 { return float64(reads.Waiting()) })
	if cfg.MQTTAddr != "off" && cfg.MQTTAddr != "" {
		mc := mqttapi.Config{Addr: cfg.MQTTAddr, Verifier: verifier, Metrics: m, Logger: log, MaxPacketBytes: cfg.MQTTMaxPacketBytes, Bodies: bodies, Reads: reads,
			MaxConnections: cfg.MQTTMaxConnections, MaxConnectionsPerIP: cfg.MaxConnectionsPerIP, ConnectTimeout: cfg.MQTTConnectTimeout,
			MaxConnectBytes: cfg.MQTTMaxConnectBytes, MaxUserProperties: cfg.MQTTMaxUserProperties,
			MaxSubscriptions: cfg.MQTTMaxSubscriptions, MaxFilterBytes: cfg.MQTTMaxFilterBytes, MaxTopicAliases: cfg.MQTTMaxTopicAliases, Log: mqttLog{host}, Sessions: mqttSessions{host},
			StuckTimeout: cfg.MQTTStuckTimeout, RetainedBytes: cfg.MQTTRetainedBytes, QoS0Wait: cfg.MQTTQoS0Wait,
			QoS1Bytes: cfg.MQTTQoS1Bytes, SessionExpiryMax: cfg.MQTTSessionExpiryMax, PublishRate: cfg.MQTTPublishRate}
		if cfg.MQTTWSAddr != "off" {
			mc.WSAddr = cfg.MQTTWSAddr
		}
		if cfg.MQTTTLSCert != "" {
			if mc.TLS, err = n.loadTLS(m, "mqtt", cfg.MQTTTLSCert, cfg.MQTTTLSKey); err != nil {
				return nil, err
			}
		}
		n.mqtt = mqttapi.New(mc, in)
	}
	if cfg.kafkaOn() {
		kc := kafka.Config{Addr: cfg.KafkaAddr, Advertise: cfg.advertiseKafka(), ClusterID: cfg.ClusterName, Verifier: verifier,
			MaxRequestBytes: cfg.MaxBodyBytes, FetchMaxBytes: cfg.FetchMaxBytes, Bodies: bodies, Reads: reads, ReadQuota: readQuota, MaxConnections: cfg.KafkaMaxConnections, MaxConnectionsPerIP: cfg.MaxConnectionsPerIP,
			TenantMaxConnections: in.MaxConnections, MaxCommitMetadataBytes: cfg.KafkaMaxCommitMetadataBytes, Metrics: m, Logger: log}
		if cfg.KafkaTLSCert != "" {
			if kc.TLS, err = n.loadTLS(m, "kafka", cfg.KafkaTLSCert, cfg.KafkaTLSKey); err != nil {
				return nil, err
			}
		}
		n.kafka = kafka.New(kc, path, host)
	}
	n.bridges = &bridgeSet{log: log, make: func(bc mqttapi.BridgeConfig) (*mqttapi.Bridge, error) {
		return mqttapi.NewBridge(bc, cfg.NodeID, in, m, log)
	}}
	for _, bc := range cfg.MQTTBridges {
		if err := n.bridges.add(bc); err != nil {
			return nil, err
		}
	}
	n.http = httpapi.New(httpapi.Config{
		Transformer: n.tx,
		Limiter:     limiter,
		ReadQuota:   readQuota,
		Producer:    path,
		Bridges:     n.bridgeStatus,
		Addr:        cfg.HTTPAddr, MaxBodyBytes: cfg.MaxBodyBytes, FetchMaxBytes: cfg.FetchMaxBytes, Bodies: bodies, Reads: reads, Pprof: cfg.Pprof, Metrics: m, Logger: log,
		Verifier:      verifier,
		Signer:        n.signer.Load,
		MetricsPublic: cfg.MetricsPublic,
		MaxConns:      cfg.HTTPMaxConnections,
		MaxConnsPerIP: cfg.MaxConnectionsPerIP,
		Listeners:     n.listenerStatus,
		DefaultQuotas: cfg.TenantDefaults,
		Console:       cfg.Console,
		Series:        n.series,
		MQTTConnections: func(t eddy.TenantID) any {
			if n.mqtt == nil {
				return []any{}
			}
			return n.mqtt.Connections(t)
		},
		MQTTKick:    func(t eddy.TenantID, client string) bool { return n.mqtt != nil && n.mqtt.Kick(t, client) },
		Peer:        fw.Get,
		LinkTargets: n.targets.CheckSpec,
		TLS:         httpTLS,
	}, host)
	return n, nil
}

// listenerStatus reports the listeners other than HTTP, for /readyz.
func (n *Node) listenerStatus() []netguard.Status {
	var out []netguard.Status
	if n.mqtt != nil {
		out = append(out, n.mqtt.Status())
	}
	if n.kafka != nil {
		out = append(out, n.kafka.Status())
	}
	return out
}

// Start starts Raft, then the HTTP listener.
func (n *Node) Start(ctx context.Context) error {
	if err := n.cfg.preflight(); err != nil {
		return err
	}
	if err := n.cfg.checkIdentity(); err != nil {
		return err
	}
	if err := n.host.Start(ctx); err != nil {
		return err
	}
	signer, err := n.bootstrapKeys(ctx)
	if err != nil {
		n.host.Close()
		return err
	}
	n.signer.Store(signer)
	if err := n.http.Start(); err != nil {
		n.host.Close()
		return err
	}
	if n.mqtt != nil {
		if err := n.mqtt.Start(); err != nil {
			n.http.Close(ctx)
			n.host.Close()
			return err
		}
		n.log.Info("mqtt listening", "addr", n.mqtt.Addr(), "websocket", n.mqtt.WSAddr())
	}
	bctx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	n.bridges.start(bctx)
	if n.kafka != nil {
		if err := n.kafka.Start(); err != nil {
			if n.mqtt != nil {
				n.mqtt.Close(ctx)
			}
			n.http.Close(ctx)
			n.host.Close()
			return fmt.Errorf("kafka listener: %w", err)
		}
		n.log.Info("kafka listening", "addr", n.kafka.Addr())
	}
	// The token and the CLI profile only once every listener is bound.
	if err := n.bootstrapAdmin(signer); err != nil {
		n.Close(ctx)
		return err
	}
	n.nodeMetrics()
	n.links = links.New(n.host, links.Config{Logger: n.log.With("component", "links"), Metrics: n.metrics, Targets: n.targets})
	n.links.Start()
	if n.series != nil {
		n.sampling.Add(1)
		go n.sampleSeries(bctx)
	}
	if n.cfg.MemoryReleaseAfter > 0 {
		releases := n.metrics.NewCounter("eddy_memory_releases_total")
		n.sampling.Add(1)
		go func() {
			defer n.sampling.Done()
			releaseWhenQuiet(bctx, n.cfg.MemoryReleaseAfter, releases.Inc, func(b int64) {
				n.log.Info("quiet since the start: the binary's pages mapped to start were given back", "bytes", b)
			})
		}()
	}
	n.http.SetStarted()
	return nil
}

// HTTPAddr is the bound HTTP address.
func (n *Node) HTTPAddr() string { return n.http.Addr() }

// HTTPURL is the HTTP API's URL on this machine (https with TLS).
func (n *Node) HTTPURL() string {
	scheme := "http://"
	if n.cfg.HTTPTLSCert != "" {
		scheme = "https://"
	}
	return scheme + localURLHost(n.HTTPAddr())
}

// Host exposes the Raft host (tests, the console).
func (n *Node) Host() *multiraft.Host { return n.host }

// Close stops accepting requests, lets in-flight writes reach their commit,
// then closes Raft. It returns ctx's error if draining takes too long.
func (n *Node) Close(ctx context.Context) error {
	n.bridges.close(ctx)
	if n.cancel != nil {
		n.cancel()
	}
	n.sampling.Wait()
	if n.links != nil {
		n.links.Close()
	}
	if n.mqtt != nil {
		n.mqtt.Close(ctx)
	}
	if n.kafka != nil {
		n.kafka.Close(ctx)
	}
	herr := n.http.Close(ctx)
	n.tx.close()
	n.host.Close()
	if herr != nil {
		return fmt.Errorf("http shutdown: %w", herr)
	}
	return nil
}

// bridgeStatus is what GET /v1/bridges shows.
func (n *Node) bridgeStatus() any {
	return map[string]any{"bridges": n.bridges.status()}
}
