package node

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/eddy-broker/eddy"
	mqttapi "github.com/eddy-broker/eddy/bridges/mqtt"
	"github.com/eddy-broker/eddy/links"
	"github.com/eddy-broker/eddy/tenants"
	"go.yaml.in/yaml/v4"
)

// Config is a node's configuration: defaults, then the YAML file, then
// EDDY_* environment variables, then command-line flags.
type Config struct {
	// NodeID is this node's id, 1 or more. Default 1.
	NodeID uint64 `yaml:"node_id"`
	// DataDir holds Raft state and partition logs. Default ./eddy-data.
	DataDir string `yaml:"data_dir"`
	// HTTPAddr is the HTTP API listener. Default :8080.
	HTTPAddr string `yaml:"http_addr"`
	// HTTPTLSCert and HTTPTLSKey (PEM files), when both set, serve the
	// HTTP API (and the console) over TLS only.
	HTTPTLSCert string `yaml:"http_tls_cert"`
	HTTPTLSKey  string `yaml:"http_tls_key"`
	// AdvertiseHTTPAddr is the host:port other nodes and clients reach this
	// node's HTTP API at. Default: http_addr, with 127.0.0.1 for a wildcard.
	AdvertiseHTTPAddr string `yaml:"advertise_http_addr"`
	// RaftAddr is the Raft listener; it must not change once the data
	// directory exists. Default 127.0.0.1:7100.
	RaftAddr string `yaml:"raft_addr"`
	// MQTTAddr is the embedded MQTT listener; "off" turns it off. Default
	// :1883.
	MQTTAddr string `yaml:"mqtt_addr"`
	// MQTTWSAddr serves MQTT over WebSockets too (browsers); "" or "off":
	// none.
	MQTTWSAddr string `yaml:"mqtt_ws_addr"`
	// MQTTTLSCert and MQTTTLSKey (PEM files), when both set, serve MQTT
	// over TLS.
	MQTTTLSCert string `yaml:"mqtt_tls_cert"`
	MQTTTLSKey  string `yaml:"mqtt_tls_key"`
	// MQTTBridges are upstream MQTT brokers this node drains (docs/mqtt.md).
	MQTTBridges []mqttapi.BridgeConfig `yaml:"mqtt_bridges"`
	// KafkaAddr is the Kafka protocol listener (docs/kafka.md); "off"
	// turns it off. Default :9092.
	KafkaAddr string `yaml:"kafka_addr"`
	// AdvertiseKafkaAddr is the host:port Kafka clients are told to reach
	// this node at (Metadata). Default: kafka_addr, with 127.0.0.1 for a
	// wildcard host. Set it when clients come through NAT or a proxy.
	AdvertiseKafkaAddr string `yaml:"advertise_kafka_addr"`
	// RaftTLSCert, RaftTLSKey and RaftTLSCA (PEM files), all three or
	// none, make the Raft transport mutual TLS: a node accepts only peers
	// whose certificate the CA signed, and presents its own. Without
	// them the Raft port must be reachable by the cluster's nodes alone.
	RaftTLSCert string `yaml:"raft_tls_cert"`
	RaftTLSKey  string `yaml:"raft_tls_key"`
	RaftTLSCA   string `yaml:"raft_tls_ca"`
	// RaftTLSPermissive, with raft_tls_*, takes plain peers too and sends
	// to a peer without TLS plain: while TLS is turned on or off one node
	// at a time (docs/operations.md). Reloaded by SIGHUP.
	RaftTLSPermissive bool `yaml:"raft_tls_permissive"`
	// RaftMaxHandshakes bounds the Raft port's connections not yet known
	// to be peers (in their TLS handshake, up to 5 s, or before their
	// first byte), a sixteenth of it (at least 4) from one address; more
	// are closed at accept. Default 256.
	RaftMaxHandshakes int `yaml:"raft_max_handshakes"`
	// KafkaTLSCert and KafkaTLSKey (PEM files), when both set, serve Kafka
	// over TLS.
	KafkaTLSCert string `yaml:"kafka_tls_cert"`
	KafkaTLSKey  string `yaml:"kafka_tls_key"`
	// KafkaMaxConnections bounds the Kafka listener's open connections.
	// Default 10000.
	KafkaMaxConnections int `yaml:"kafka_max_connections"`
	// KafkaMaxCommitMetadataBytes bounds a Kafka offset commit's metadata
	// string (held in the controller by every node); -1 keeps none.
	KafkaMaxCommitMetadataBytes int `yaml:"kafka_max_commit_metadata_bytes"`
	// Peers are the initial cluster members as "id=host:raftport". Empty
	// means a cluster of this node alone.
	Peers map[uint64]string `yaml:"peers"`
	// Join: this node joins a running cluster that added it with
	// "eddy cluster add-node"; peers are not given then.
	Join bool `yaml:"join"`
	// ClusterName is the audience of the cluster's tokens. Default eddy.
	ClusterName string `yaml:"cluster_name"`
	// MetricsPublic serves /metrics without a token (it names every
	// tenant's topics, so by default it needs the operator scope).
	MetricsPublic bool `yaml:"metrics_public"`
	// Console serves the web console at /console/ on the HTTP listener
	// (docs/console.md). On by default; its data needs a token anyway.
	Console bool `yaml:"console"`
	// ConsoleSeries samples rates and lags every 10 s into an hour of
	// history in memory (GET /v1/series, the console's charts).
	ConsoleSeries bool `yaml:"console_series"`
	// ConsoleSeriesStep is the sampler's step; a series keeps 360 of them.
	ConsoleSeriesStep time.Duration `yaml:"console_series_step"`
	// LogLevel is debug, info, warn or error. Default info.
	LogLevel string `yaml:"log_level"`
	// LogFormat is text or json. Default text.
	LogFormat string `yaml:"log_format"`
	// Linger, when above 0, is how long a partition waits to fill a
	// proposal. Default 0: adaptive group commit (a proposal at once when
	// none is in flight; what arrives meanwhile goes in the next one).
	Linger time.Duration `yaml:"linger"`
	// MaxBatchBytes is the target proposal size. Default 256 KiB.
	MaxBatchBytes int `yaml:"max_batch_bytes"`
	// MaxBodyBytes bounds an HTTP request body. Default 16 MiB.
	MaxBodyBytes int `yaml:"max_body_bytes"`
	// MaxRequestMemory bounds the bytes of HTTP request bodies, Kafka
	// requests and large MQTT packets the node holds at once, a tenant at
	// most half of it. Default 128 MiB, at least twice max_body_bytes and
	// mqtt_max_packet_bytes.
	MaxRequestMemory int64 `yaml:"max_request_memory"`
	// FetchMaxBytes bounds one fetch's answer on every listener (HTTP's
	// max_bytes, a Kafka Fetch's MaxBytes; Kafka's fetch.max.bytes).
	// Default 16 MiB. A Kafka fetch answers at most an eighth of
	// max_request_memory besides (it holds what it read, then its encoded
	// answer: a tenant's half holds two of the largest).
	FetchMaxBytes int `yaml:"fetch_max_bytes"`
	// TenantReadSlots bounds the reads (fetches, group polls, searches,
	// checksums, Kafka fetches) one tenant runs at once on this node; the others
	// wait their turn. Default 0: half the node's CPUs, at least 1.
	TenantReadSlots int `yaml:"tenant_read_slots"`
	// TenantControllerInFlight bounds each tenant's controller commands
	// (group joins, heartbeats and commits, topic, session and link
	// changes) in flight from this node; the rest wait their turn
	// (multiraft/fairshare.go). Default 4.
	TenantControllerInFlight int `yaml:"tenant_controller_inflight"`
	// MinFreeBytes: produce is refused while the data directory's disk has
	// less free space. Default 64 MiB.
	MinFreeBytes uint64 `yaml:"min_free_bytes"`
	// DiskReserveBytes is space held in a file (disk-reserve) in the data
	// directory and given up the moment a write meets a full disk, so
	// writes in flight complete instead of failing. Default 64 MiB,
	// at least 16 MiB.
	DiskReserveBytes int64 `yaml:"disk_reserve_bytes"`
	// Pprof serves Go's profiler on the HTTP listener under /debug/pprof/.
	Pprof bool `yaml:"pprof"`
	// SyncBytes: a partition replica syncs (and lets the Raft log be
	// compacted) after this many bytes. Default 4 MiB.
	SyncBytes int64 `yaml:"sync_bytes"`
	// SegmentCacheBytes: how much of a partition's newest synced data a
	// sync leaves in the page cache (segment.Config.CacheBytes); -1 leaves
	// it all to the kernel. Default 16 MiB.
	SegmentCacheBytes int64 `yaml:"segment_cache_bytes"`
	// RaftLogStore is the Raft log store of a new data directory: eddy
	// (default), pebble or tan (multiraft.Config.RaftLogStore).
	RaftLogStore string `yaml:"raft_log_store"`
	// RaftLogRetainBytes: about how much Raft log a replicated partition
	// keeps behind a sync for lagging followers; a follower further behind
	// is sent a snapshot of the segments. Default 32 MiB.
	RaftLogRetainBytes int64 `yaml:"raft_log_retain_bytes"`
	// RaftMaxUnappliedBytes bounds a partition's Raft entries not yet
	// applied, on its leader or as a follower reports them; past it
	// the partition's writes pause (multiraft.Config). Default 64 MiB.
	RaftMaxUnappliedBytes int64 `yaml:"raft_max_unapplied_bytes"`
	// RetentionInterval is how often retention runs. Default 30s.
	RetentionInterval time.Duration `yaml:"retention_interval"`
	// CompactionInterval is how often compacted topics' logs are looked
	// at for compaction. Default 15s.
	CompactionInterval time.Duration `yaml:"compaction_interval"`
	// CompactionKeyBytes bounds one compaction's map of keys (Kafka's
	// log.cleaner.dedupe.buffer.size). Default 16 MiB.
	CompactionKeyBytes int64 `yaml:"compaction_key_bytes"`
	// CompactionBytesPerSec paces what compaction reads; -1: no pace.
	// Default 16 MiB/s.
	CompactionBytesPerSec int64 `yaml:"compaction_bytes_per_sec"`
	// SizeReportInterval is how often partition leaders report their
	// retained bytes, which storage quotas count cluster-wide. Default 5s.
	SizeReportInterval time.Duration `yaml:"size_report_interval"`
	// TransformDeadline bounds one batch in a transform. Default 200ms.
	TransformDeadline time.Duration `yaml:"transform_deadline"`
	// TransformBreakerFailures consecutive failed batches open a topic's
	// transform circuit breaker. Default 5.
	TransformBreakerFailures int `yaml:"transform_breaker_failures"`
	// TransformBreakerCooldown is how long an open breaker waits before
	// one batch probes the module again. Default 10s.
	TransformBreakerCooldown time.Duration `yaml:"transform_breaker_cooldown"`
	// TransformMaxCompiledBytes bounds the binaries of the transform
	// modules compiled on this node at once (compiled code takes about
	// three times as much memory), a tenant's at most half. Default 64 MiB.
	TransformMaxCompiledBytes int64 `yaml:"transform_max_compiled_bytes"`

	// HTTPMaxConnections and MQTTMaxConnections bound each listener's open
	// connections; more are closed at accept. Both are lowered at start to
	// fit three quarters of the process's descriptor limit (the rest is for
	// Raft, segments and peers). Defaults 4,096 and 10,000.
	HTTPMaxConnections int `yaml:"http_max_connections"`
	MQTTMaxConnections int `yaml:"mqtt_max_connections"`
	// MaxConnectionsPerIP bounds the open connections from one source
	// address, on each listener. Default 1,000.
	MaxConnectionsPerIP int `yaml:"max_connections_per_ip"`
	// AuthFailuresPerIP is the refused tokens one source address may
	// send a second, over time (ten times as many at once); past it, the
	// tokens it sends that did not verify before are refused unchecked
	// (tenants.FailureLimit). 0: no limit. Default 10.
	AuthFailuresPerIP float64 `yaml:"auth_failures_per_ip"`
	// MQTTConnectTimeout bounds the time from accept to an authenticated
	// CONNECT. Default 5s.
	MQTTConnectTimeout time.Duration `yaml:"mqtt_connect_timeout"`
	// MQTTMaxConnectBytes bounds the CONNECT packet, the only packet read
	// before authentication. Default 64 KiB.
	MQTTMaxConnectBytes int `yaml:"mqtt_max_connect_bytes"`
	// MQTTMaxPacketBytes bounds an MQTT packet after the CONNECT (the
	// listener reads a packet whole). Default 1 MiB, as EMQX's.
	MQTTMaxPacketBytes int `yaml:"mqtt_max_packet_bytes"`
	// MQTTMaxUserProperties bounds an MQTT 5 publish's user properties.
	// Default 64.
	MQTTMaxUserProperties int `yaml:"mqtt_max_user_properties"`
	// MQTTMaxSubscriptions bounds an MQTT connection's subscriptions, and
	// MQTTMaxFilterBytes a filter's length. Defaults 100 and 1 KiB.
	MQTTMaxSubscriptions int `yaml:"mqtt_max_subscriptions"`
	MQTTMaxFilterBytes   int `yaml:"mqtt_max_filter_bytes"`
	// MQTTMaxTopicAliases is the topic alias maximum offered to MQTT 5
	// clients. Default 10.
	MQTTMaxTopicAliases int `yaml:"mqtt_max_topic_aliases"`
	// MQTTStuckTimeout is how long a subscriber may leave its whole window
	// of deliveries unacknowledged before it is disconnected. Default 60s.
	MQTTStuckTimeout time.Duration `yaml:"mqtt_stuck_timeout"`
	// MQTTQoS0Wait is how long a QoS 0 publish that finds the node's QoS 0
	// queue full waits for room (holding its connection) before it is
	// dropped. Default 1s.
	MQTTQoS0Wait time.Duration `yaml:"mqtt_qos0_wait"`
	// MQTTQoS1Bytes bounds the bytes of a connection's QoS 1 publishes not
	// yet acknowledged; past it the node reads no more of the connection
	// until some are. Default 1 MiB.
	MQTTQoS1Bytes int `yaml:"mqtt_qos1_bytes"`
	// MQTTPublishRate bounds the publishes one MQTT connection may send a
	// second (and at once); past it the node reads no more of the
	// connection until the rate allows, as EMQX's per-client
	// messages_rate. 0 (the default): no bound but the tenant's quotas.
	MQTTPublishRate float64 `yaml:"mqtt_publish_rate"`
	// MQTTSessionExpiryMax bounds how long an MQTT persistent session is
	// kept after its device went. Default 168h (7 days).
	MQTTSessionExpiryMax time.Duration `yaml:"mqtt_session_expiry_max"`
	// MQTTRetainedBytes bounds the index of retained MQTT messages (names
	// and offsets), a tenant's at most half of it. Default 16 MiB.
	MQTTRetainedBytes int `yaml:"mqtt_retained_bytes"`
	// MemoryLimit is a soft limit on the process's memory, in bytes (Go's
	// GOMEMLIMIT): the garbage collector works harder as the heap nears it,
	// so memory goes back after a burst. 0 (the default) sets none, or,
	// inside a memory cgroup (a container, MemoryMax=), 3/4 of its limit.
	// Set it to about half of what the gateway can give Eddy; far below
	// the live heap it makes the collector run all the time.
	MemoryLimit int64 `yaml:"memory_limit"`
	// MemoryReleaseAfter: once the node has been quiet this long after a
	// burst (it allocated little meanwhile), it collects garbage and gives
	// the heap's free pages back to the OS at once, rather than over the
	// minutes Go's background scavenger takes. Default 10s; 0 turns it off.
	MemoryReleaseAfter time.Duration `yaml:"memory_release_after"`
	// GCHeapFloor is the least heap at which Go's garbage collector runs:
	// it collects at twice the live heap (GOGC 100) or at this, whichever
	// is larger, so a node whose live heap is a few megabytes does not
	// collect 25 times a second under load. Default 32 MiB; 0 leaves Go's
	// own pacing; ignored when GOGC is set in the environment. Read at
	// start, for the process.
	GCHeapFloor int64 `yaml:"gc_heap_floor"`
	// MaxTimestampAhead refuses records whose create time is further ahead
	// of the node's clock (Kafka's message.timestamp.after.max.ms).
	// Default 1h.
	MaxTimestampAhead time.Duration `yaml:"max_timestamp_ahead"`
	// TenantDefaults are the quotas of a tenant created without them (the
	// default tenant, the operator's own, stays unlimited). Defaults: 64
	// topics, 128 partitions, 4 GiB stored, 16 transforms holding 64 MiB
	// of modules, 256 MiB of transform memory, transform CPU of a fifth of
	// the node's cores (200 ms a second per core), 1,000 MQTT connections
	// per node; produce rates unlimited.
	TenantDefaults tenants.Quotas `yaml:"tenant_defaults"`
	// LinkAllowedTargets are the networks other than the public Internet
	// (CIDRs or addresses) a tenant's links may connect to: by default
	// none, so a tenant's link cannot reach the node's own ports, its LAN
	// or a cloud's metadata service. Every address a link dials is
	// checked after its name resolves. The operator's own tenant (default)
	// is not bound. Example: [10.20.0.0/16] for a cloud behind a VPN.
	LinkAllowedTargets []string `yaml:"link_allowed_targets"`
}

// DefaultConfig returns the configuration `eddy serve` runs with when given
// nothing.
func DefaultConfig() Config {
	td := tenants.DefaultQuotas()
	td.TransformCPUMillisPerSec = int64(runtime.GOMAXPROCS(0)) * 200
	return Config{
		NodeID:                1,
		ClusterName:           "eddy",
		DataDir:               "eddy-data",
		HTTPAddr:              ":8080",
		RaftAddr:              "127.0.0.1:7100",
		MQTTAddr:              ":1883",
		KafkaAddr:             ":9092",
		Console:               true,
		ConsoleSeries:         true,
		ConsoleSeriesStep:     10 * time.Second,
		LogLevel:              "info",
		LogFormat:             "text",
		Linger:                0,
		MaxBatchBytes:         256 << 10,
		MaxBodyBytes:          16 << 20,
		MaxRequestMemory:      128 << 20,
		FetchMaxBytes:         16 << 20,
		MinFreeBytes:          64 << 20,
		DiskReserveBytes:      64 << 20,
		RetentionInterval:     30 * time.Second,
		CompactionInterval:    15 * time.Second,
		CompactionKeyBytes:    16 << 20,
		CompactionBytesPerSec: 16 << 20,
		SizeReportInterval:    5 * time.Second,

		TransformDeadline:         200 * time.Millisecond,
		TransformBreakerFailures:  5,
		TransformBreakerCooldown:  10 * time.Second,
		TransformMaxCompiledBytes: 64 << 20,

		HTTPMaxConnections:          4096,
		MQTTMaxConnections:          10_000,
		KafkaMaxConnections:         10_000,
		KafkaMaxCommitMetadataBytes: 512,
		MaxConnectionsPerIP:         1000,
		AuthFailuresPerIP:           10,
		MQTTConnectTimeout:          5 * time.Second,
		MQTTMaxConnectBytes:         64 << 10,
		MQTTMaxPacketBytes:          1 << 20,
		MQTTMaxUserProperties:       64,
		MQTTMaxSubscriptions:        100,
		MQTTMaxFilterBytes:          1 << 10,
		MQTTMaxTopicAliases:         10,
		MQTTStuckTimeout:            time.Minute,
		MemoryReleaseAfter:          10 * time.Second,
		GCHeapFloor:                 32 << 20,
		RaftMaxUnappliedBytes:       64 << 20,
		TenantControllerInFlight:    4,
		RaftMaxHandshakes:           256,
		MQTTQoS0Wait:                time.Second,
		MQTTQoS1Bytes:               1 << 20,
		MQTTSessionExpiryMax:        7 * 24 * time.Hour,
		MQTTRetainedBytes:           16 << 20,
		TenantDefaults:              td,
		MaxTimestampAhead:           time.Hour,
	}
}

// Load returns the defaults overlaid with the YAML file (if file is not
// empty) and then the EDDY_* variables lookup finds. It does not validate.
func Load(file string, lookup func(string) (string, bool)) (Config, error) {
	c := DefaultConfig()
	if file != "" {
		if err := c.LoadFile(file); err != nil {
			return c, err
		}
	}
	return c, c.ApplyEnv(lookup)
}

// LoadFile overlays a YAML file on c. Unknown keys are errors.
func (c *Config) LoadFile(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read config: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) { // an empty file is fine
		return fmt.Errorf("config %s: %w", path, err)
	}
	return nil
}

// envVars maps environment variables to config setters.
var envVars = []struct {
	name string
	set  func(c *Config, v string) error
}{
	{"EDDY_NODE_ID", func(c *Config, v string) (err error) { c.NodeID, err = strconv.ParseUint(v, 10, 64); return }},
	{"EDDY_DATA_DIR", func(c *Config, v string) error { c.DataDir = v; return nil }},
	{"EDDY_HTTP_ADDR", func(c *Config, v string) error { c.HTTPAddr = v; return nil }},
	{"EDDY_HTTP_TLS_CERT", func(c *Config, v string) error { c.HTTPTLSCert = v; return nil }},
	{"EDDY_HTTP_TLS_KEY", func(c *Config, v string) error { c.HTTPTLSKey = v; return nil }},
	{"EDDY_ADVERTISE_HTTP_ADDR", func(c *Config, v string) error { c.AdvertiseHTTPAddr = v; return nil }},
	{"EDDY_RAFT_ADDR", func(c *Config, v string) error { c.RaftAddr = v; return nil }},
	{"EDDY_MQTT_ADDR", func(c *Config, v string) error { c.MQTTAddr = v; return nil }},
	{"EDDY_MQTT_WS_ADDR", func(c *Config, v string) error { c.MQTTWSAddr = v; return nil }},
	{"EDDY_MQTT_TLS_CERT", func(c *Config, v string) error { c.MQTTTLSCert = v; return nil }},
	{"EDDY_MQTT_TLS_KEY", func(c *Config, v string) error { c.MQTTTLSKey = v; return nil }},
	{"EDDY_KAFKA_ADDR", func(c *Config, v string) error { c.KafkaAddr = v; return nil }},
	{"EDDY_ADVERTISE_KAFKA_ADDR", func(c *Config, v string) error { c.AdvertiseKafkaAddr = v; return nil }},
	{"EDDY_RAFT_TLS_CERT", func(c *Config, v string) error { c.RaftTLSCert = v; return nil }},
	{"EDDY_RAFT_TLS_KEY", func(c *Config, v string) error { c.RaftTLSKey = v; return nil }},
	{"EDDY_RAFT_TLS_CA", func(c *Config, v string) error { c.RaftTLSCA = v; return nil }},
	{"EDDY_RAFT_MAX_HANDSHAKES", func(c *Config, v string) (err error) { c.RaftMaxHandshakes, err = strconv.Atoi(v); return }},
	{"EDDY_RAFT_TLS_PERMISSIVE", func(c *Config, v string) (err error) { c.RaftTLSPermissive, err = strconv.ParseBool(v); return }},
	{"EDDY_KAFKA_TLS_CERT", func(c *Config, v string) error { c.KafkaTLSCert = v; return nil }},
	{"EDDY_KAFKA_TLS_KEY", func(c *Config, v string) error { c.KafkaTLSKey = v; return nil }},
	{"EDDY_PEERS", func(c *Config, v string) (err error) { c.Peers, err = ParsePeers(v); return }},
	{"EDDY_JOIN", func(c *Config, v string) (err error) { c.Join, err = strconv.ParseBool(v); return }},
	{"EDDY_PPROF", func(c *Config, v string) (err error) { c.Pprof, err = strconv.ParseBool(v); return }},
	{"EDDY_CLUSTER_NAME", func(c *Config, v string) error { c.ClusterName = v; return nil }},
	{"EDDY_METRICS_PUBLIC", func(c *Config, v string) (err error) { c.MetricsPublic, err = strconv.ParseBool(v); return }},
	{"EDDY_CONSOLE", func(c *Config, v string) (err error) { c.Console, err = strconv.ParseBool(v); return }},
	{"EDDY_CONSOLE_SERIES", func(c *Config, v string) (err error) { c.ConsoleSeries, err = strconv.ParseBool(v); return }},
	{"EDDY_CONSOLE_SERIES_STEP", func(c *Config, v string) (err error) { c.ConsoleSeriesStep, err = time.ParseDuration(v); return }},
	{"EDDY_LOG_LEVEL", func(c *Config, v string) error { c.LogLevel = v; return nil }},
	{"EDDY_LOG_FORMAT", func(c *Config, v string) error { c.LogFormat = v; return nil }},
	{"EDDY_LINGER", func(c *Config, v string) (err error) { c.Linger, err = time.ParseDuration(v); return }},
	{"EDDY_MAX_BODY_BYTES", func(c *Config, v string) (err error) { c.MaxBodyBytes, err = strconv.Atoi(v); return }},
	{"EDDY_MAX_REQUEST_MEMORY", func(c *Config, v string) (err error) { c.MaxRequestMemory, err = strconv.ParseInt(v, 10, 64); return }},
	{"EDDY_FETCH_MAX_BYTES", func(c *Config, v string) (err error) { c.FetchMaxBytes, err = strconv.Atoi(v); return }},
	{"EDDY_TENANT_READ_SLOTS", func(c *Config, v string) (err error) { c.TenantReadSlots, err = strconv.Atoi(v); return }},
	{"EDDY_TENANT_CONTROLLER_INFLIGHT", func(c *Config, v string) (err error) { c.TenantControllerInFlight, err = strconv.Atoi(v); return }},
	{"EDDY_RETENTION_INTERVAL", func(c *Config, v string) (err error) { c.RetentionInterval, err = time.ParseDuration(v); return }},
	{"EDDY_COMPACTION_INTERVAL", func(c *Config, v string) (err error) { c.CompactionInterval, err = time.ParseDuration(v); return }},
	{"EDDY_COMPACTION_KEY_BYTES", func(c *Config, v string) (err error) { c.CompactionKeyBytes, err = strconv.ParseInt(v, 10, 64); return }},
	{"EDDY_COMPACTION_BYTES_PER_SEC", func(c *Config, v string) (err error) {
		c.CompactionBytesPerSec, err = strconv.ParseInt(v, 10, 64)
		return
	}},
	{"EDDY_SIZE_REPORT_INTERVAL", func(c *Config, v string) (err error) { c.SizeReportInterval, err = time.ParseDuration(v); return }},
	{"EDDY_RAFT_LOG_STORE", func(c *Config, v string) error { c.RaftLogStore = v; return nil }},
	{"EDDY_SYNC_BYTES", func(c *Config, v string) (err error) { c.SyncBytes, err = strconv.ParseInt(v, 10, 64); return }},
	{"EDDY_SEGMENT_CACHE_BYTES", func(c *Config, v string) (err error) { c.SegmentCacheBytes, err = strconv.ParseInt(v, 10, 64); return }},
	{"EDDY_RAFT_LOG_RETAIN_BYTES", func(c *Config, v string) (err error) {
		c.RaftLogRetainBytes, err = strconv.ParseInt(v, 10, 64)
		return
	}},
	{"EDDY_RAFT_MAX_UNAPPLIED_BYTES", func(c *Config, v string) (err error) {
		c.RaftMaxUnappliedBytes, err = strconv.ParseInt(v, 10, 64)
		return
	}},
	{"EDDY_TRANSFORM_DEADLINE", func(c *Config, v string) (err error) { c.TransformDeadline, err = time.ParseDuration(v); return }},
	{"EDDY_TRANSFORM_BREAKER_FAILURES", func(c *Config, v string) (err error) { c.TransformBreakerFailures, err = strconv.Atoi(v); return }},
	{"EDDY_TRANSFORM_BREAKER_COOLDOWN", func(c *Config, v string) (err error) {
		c.TransformBreakerCooldown, err = time.ParseDuration(v)
		return
	}},
	{"EDDY_TRANSFORM_MAX_COMPILED_BYTES", func(c *Config, v string) (err error) {
		c.TransformMaxCompiledBytes, err = strconv.ParseInt(v, 10, 64)
		return
	}},
	{"EDDY_DISK_RESERVE_BYTES", func(c *Config, v string) (err error) { c.DiskReserveBytes, err = strconv.ParseInt(v, 10, 64); return }},
	{"EDDY_MIN_FREE_BYTES", func(c *Config, v string) (err error) { c.MinFreeBytes, err = strconv.ParseUint(v, 10, 64); return }},
	{"EDDY_HTTP_MAX_CONNECTIONS", func(c *Config, v string) (err error) { c.HTTPMaxConnections, err = strconv.Atoi(v); return }},
	{"EDDY_MQTT_MAX_CONNECTIONS", func(c *Config, v string) (err error) { c.MQTTMaxConnections, err = strconv.Atoi(v); return }},
	{"EDDY_KAFKA_MAX_CONNECTIONS", func(c *Config, v string) (err error) { c.KafkaMaxConnections, err = strconv.Atoi(v); return }},
	{"EDDY_KAFKA_MAX_COMMIT_METADATA_BYTES", func(c *Config, v string) (err error) {
		c.KafkaMaxCommitMetadataBytes, err = strconv.Atoi(v)
		return
	}},
	{"EDDY_MAX_CONNECTIONS_PER_IP", func(c *Config, v string) (err error) { c.MaxConnectionsPerIP, err = strconv.Atoi(v); return }},
	{"EDDY_AUTH_FAILURES_PER_IP", func(c *Config, v string) (err error) { c.AuthFailuresPerIP, err = strconv.ParseFloat(v, 64); return }},
	{"EDDY_MQTT_CONNECT_TIMEOUT", func(c *Config, v string) (err error) { c.MQTTConnectTimeout, err = time.ParseDuration(v); return }},
	{"EDDY_MQTT_MAX_CONNECT_BYTES", func(c *Config, v string) (err error) { c.MQTTMaxConnectBytes, err = strconv.Atoi(v); return }},
	{"EDDY_MQTT_MAX_PACKET_BYTES", func(c *Config, v string) (err error) { c.MQTTMaxPacketBytes, err = strconv.Atoi(v); return }},
	{"EDDY_MEMORY_RELEASE_AFTER", func(c *Config, v string) (err error) { c.MemoryReleaseAfter, err = time.ParseDuration(v); return }},
	{"EDDY_GC_HEAP_FLOOR", func(c *Config, v string) (err error) { c.GCHeapFloor, err = strconv.ParseInt(v, 10, 64); return }},
	{"EDDY_MEMORY_LIMIT", func(c *Config, v string) (err error) { c.MemoryLimit, err = strconv.ParseInt(v, 10, 64); return }},
	{"EDDY_MAX_TIMESTAMP_AHEAD", func(c *Config, v string) (err error) { c.MaxTimestampAhead, err = time.ParseDuration(v); return }},
	{"EDDY_MQTT_MAX_USER_PROPERTIES", func(c *Config, v string) (err error) { c.MQTTMaxUserProperties, err = strconv.Atoi(v); return }},
	{"EDDY_MQTT_MAX_SUBSCRIPTIONS", func(c *Config, v string) (err error) { c.MQTTMaxSubscriptions, err = strconv.Atoi(v); return }},
	{"EDDY_MQTT_MAX_FILTER_BYTES", func(c *Config, v string) (err error) { c.MQTTMaxFilterBytes, err = strconv.Atoi(v); return }},
	{"EDDY_MQTT_MAX_TOPIC_ALIASES", func(c *Config, v string) (err error) { c.MQTTMaxTopicAliases, err = strconv.Atoi(v); return }},
	{"EDDY_MQTT_STUCK_TIMEOUT", func(c *Config, v string) (err error) { c.MQTTStuckTimeout, err = time.ParseDuration(v); return }},
	{"EDDY_MQTT_QOS0_WAIT", func(c *Config, v string) (err error) { c.MQTTQoS0Wait, err = time.ParseDuration(v); return }},
	{"EDDY_MQTT_QOS1_BYTES", func(c *Config, v string) (err error) { c.MQTTQoS1Bytes, err = strconv.Atoi(v); return }},
	{"EDDY_MQTT_PUBLISH_RATE", func(c *Config, v string) (err error) { c.MQTTPublishRate, err = strconv.ParseFloat(v, 64); return }},
	{"EDDY_MQTT_SESSION_EXPIRY_MAX", func(c *Config, v string) (err error) { c.MQTTSessionExpiryMax, err = time.ParseDuration(v); return }},
	{"EDDY_MQTT_RETAINED_BYTES", func(c *Config, v string) (err error) { c.MQTTRetainedBytes, err = strconv.Atoi(v); return }},
	{"EDDY_LINK_ALLOWED_TARGETS", func(c *Config, v string) error { c.LinkAllowedTargets = strings.Split(v, ","); return nil }},
}

// ApplyEnv overlays EDDY_* environment variables.
func (c *Config) ApplyEnv(lookup func(string) (string, bool)) error {
	for _, e := range envVars {
		if v, ok := lookup(e.name); ok && v != "" {
			if err := e.set(c, v); err != nil {
				return fmt.Errorf("%s=%q: %w", e.name, v, err)
			}
		}
	}
	return nil
}

// ParsePeers parses "1=host:port,2=host:port".
func ParsePeers(s string) (map[uint64]string, error) {
	out := map[uint64]string{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		id, addr, ok := strings.Cut(part, "=")
		n, err := strconv.ParseUint(id, 10, 64)
		if !ok || err != nil || n == 0 {
			return nil, fmt.Errorf("peer %q is not id=host:port", part)
		}
		out[n] = addr
	}
	return out, nil
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	if c.NodeID == 0 {
		return errors.New("node_id must be 1 or more")
	}
	if c.ConsoleSeries && c.ConsoleSeriesStep < time.Second {
		return fmt.Errorf("console_series_step %s: at least 1s", c.ConsoleSeriesStep)
	}
	if c.ClusterName == "" {
		return errors.New("cluster_name is empty")
	}
	if c.CompactionInterval < time.Second || c.CompactionKeyBytes < 1<<20 || c.CompactionBytesPerSec == 0 || c.CompactionBytesPerSec < -1 {
		return fmt.Errorf("compaction_interval %s (at least 1s), compaction_key_bytes %d (at least 1 MiB), compaction_bytes_per_sec %d (positive, or -1 for no pace)",
			c.CompactionInterval, c.CompactionKeyBytes, c.CompactionBytesPerSec)
	}
	if c.DataDir == "" {
		return errors.New("data_dir is empty")
	}
	if (c.HTTPTLSCert == "") != (c.HTTPTLSKey == "") {
		return errors.New("http_tls_cert and http_tls_key go together")
	}
	if (c.RaftTLSCert == "") != (c.RaftTLSKey == "") || (c.RaftTLSCert == "") != (c.RaftTLSCA == "") {
		return errors.New("raft_tls_cert, raft_tls_key and raft_tls_ca go together: set all three or none")
	}
	if c.RaftTLSPermissive && c.RaftTLSCert == "" {
		return errors.New("raft_tls_permissive needs raft_tls_cert, raft_tls_key and raft_tls_ca (it lets a TLS node take plain peers too)")
	}
	if _, err := links.ParseTargets(c.LinkAllowedTargets); err != nil {
		return err
	}
	for name, a := range map[string]string{"http_addr": c.HTTPAddr, "raft_addr": c.RaftAddr} {
		if _, _, err := net.SplitHostPort(a); err != nil {
			return fmt.Errorf("%s %q: %w", name, a, err)
		}
	}
	if h, _, _ := net.SplitHostPort(c.RaftAddr); h == "" || h == "0.0.0.0" || h == "::" {
		return fmt.Errorf("raft_addr %q must name this node's reachable address, not a wildcard", c.RaftAddr)
	}
	for id, a := range c.Peers {
		if _, _, err := net.SplitHostPort(a); err != nil {
			return fmt.Errorf("peer %d %q: %w", id, a, err)
		}
	}
	if c.Join && len(c.Peers) > 0 {
		return fmt.Errorf("join and peers exclude each other: peers are a new cluster's first members; a node added later starts with join alone")
	}
	if len(c.Peers) > 0 {
		if a, ok := c.Peers[c.NodeID]; !ok || a != c.RaftAddr {
			return fmt.Errorf("peers must include this node (%d=%s)", c.NodeID, c.RaftAddr)
		}
	}
	if c.MQTTWSAddr != "" && c.MQTTWSAddr != "off" {
		if _, _, err := net.SplitHostPort(c.MQTTWSAddr); err != nil {
			return fmt.Errorf("mqtt_ws_addr %q: %w (or \"off\")", c.MQTTWSAddr, err)
		}
	}
	if c.MQTTAddr != "" && c.MQTTAddr != "off" {
		if _, _, err := net.SplitHostPort(c.MQTTAddr); err != nil {
			return fmt.Errorf("mqtt_addr %q: %w (or \"off\")", c.MQTTAddr, err)
		}
	}
	if c.KafkaAddr != "" && c.KafkaAddr != "off" {
		if _, _, err := net.SplitHostPort(c.KafkaAddr); err != nil {
			return fmt.Errorf("kafka_addr %q: %w (or \"off\")", c.KafkaAddr, err)
		}
	}
	if (c.KafkaTLSCert == "") != (c.KafkaTLSKey == "") {
		return fmt.Errorf("kafka_tls_cert and kafka_tls_key go together")
	}
	if err := c.validateBridges(); err != nil {
		return err
	}
	if (c.MQTTTLSCert == "") != (c.MQTTTLSKey == "") {
		return fmt.Errorf("mqtt_tls_cert and mqtt_tls_key go together")
	}
	for name, v := range map[string]int{"http_max_connections": c.HTTPMaxConnections, "mqtt_max_connections": c.MQTTMaxConnections,
		"kafka_max_connections":  c.KafkaMaxConnections,
		"max_connections_per_ip": c.MaxConnectionsPerIP, "mqtt_max_connect_bytes": c.MQTTMaxConnectBytes, "mqtt_max_packet_bytes": c.MQTTMaxPacketBytes, "mqtt_max_user_properties": c.MQTTMaxUserProperties,
		"mqtt_max_subscriptions": c.MQTTMaxSubscriptions, "mqtt_max_filter_bytes": c.MQTTMaxFilterBytes, "mqtt_max_topic_aliases": c.MQTTMaxTopicAliases,
		"mqtt_retained_bytes": c.MQTTRetainedBytes, "mqtt_qos1_bytes": c.MQTTQoS1Bytes} {
		if v <= 0 {
			return fmt.Errorf("%s must be positive, got %d", name, v)
		}
	}
	if c.MQTTPublishRate < 0 || c.MQTTPublishRate > 1e6 {
		return fmt.Errorf("mqtt_publish_rate %g: use 0 (no limit) to 1000000", c.MQTTPublishRate)
	}
	if c.AuthFailuresPerIP < 0 || c.AuthFailuresPerIP > 1e6 {
		return fmt.Errorf("auth_failures_per_ip %g: use 0 (no limit) to 1000000", c.AuthFailuresPerIP)
	}
	if c.MQTTConnectTimeout <= 0 || c.MQTTConnectTimeout > 5*time.Minute {
		return fmt.Errorf("mqtt_connect_timeout %s: use 1ms to 5m", c.MQTTConnectTimeout)
	}
	if c.MQTTStuckTimeout < time.Second || c.MQTTStuckTimeout > time.Hour {
		return fmt.Errorf("mqtt_stuck_timeout %s: use 1s to 1h", c.MQTTStuckTimeout)
	}
	if c.MQTTSessionExpiryMax < time.Second || c.MQTTSessionExpiryMax > 365*24*time.Hour {
		return fmt.Errorf("mqtt_session_expiry_max %s: use 1s to 8760h", c.MQTTSessionExpiryMax)
	}
	if c.MQTTQoS0Wait < time.Millisecond || c.MQTTQoS0Wait > time.Minute {
		return fmt.Errorf("mqtt_qos0_wait %s: use 1ms to 1m", c.MQTTQoS0Wait)
	}
	if c.RaftLogStore != "" && c.RaftLogStore != "pebble" && c.RaftLogStore != "tan" && c.RaftLogStore != "eddy" {
		return fmt.Errorf("raft_log_store %q: use eddy, pebble or tan", c.RaftLogStore)
	}
	if c.MaxRequestMemory < 2*int64(max(c.MaxBodyBytes, c.MQTTMaxPacketBytes)) {
		return fmt.Errorf("max_request_memory %d: use at least twice max_body_bytes and mqtt_max_packet_bytes (%d)",
			c.MaxRequestMemory, 2*max(c.MaxBodyBytes, c.MQTTMaxPacketBytes))
	}
	if c.FetchMaxBytes < 64<<10 || c.FetchMaxBytes > 1<<30 {
		return fmt.Errorf("fetch_max_bytes %d: use 64 KiB (65536) to 1 GiB", c.FetchMaxBytes)
	}
	if c.TenantReadSlots < 0 || c.TenantReadSlots > 1024 {
		return fmt.Errorf("tenant_read_slots %d: use 1 to 1024, or 0 for half the CPUs", c.TenantReadSlots)
	}
	if c.RaftMaxHandshakes < 16 || c.RaftMaxHandshakes > 65536 {
		return fmt.Errorf("raft_max_handshakes %d: use 16 to 65536", c.RaftMaxHandshakes)
	}
	if c.TenantControllerInFlight < 1 || c.TenantControllerInFlight > 1024 {
		return fmt.Errorf("tenant_controller_inflight %d: use 1 to 1024", c.TenantControllerInFlight)
	}
	if c.RaftMaxUnappliedBytes < 4<<20 {
		return fmt.Errorf("raft_max_unapplied_bytes %d: use at least 4 MiB (4194304)", c.RaftMaxUnappliedBytes)
	}
	if c.MemoryReleaseAfter != 0 && (c.MemoryReleaseAfter < time.Second || c.MemoryReleaseAfter > time.Hour) {
		return fmt.Errorf("memory_release_after %s: use 0 (off) or 1s to 1h", c.MemoryReleaseAfter)
	}
	if c.GCHeapFloor != 0 && (c.GCHeapFloor < 4<<20 || c.GCHeapFloor > 1<<30) {
		return fmt.Errorf("gc_heap_floor %d: use 0 (Go's own pacing) or 4 MiB to 1 GiB", c.GCHeapFloor)
	}
	if c.MemoryLimit != 0 && c.MemoryLimit < 32<<20 {
		return fmt.Errorf("memory_limit %d: use 0 (none) or at least 32 MiB", c.MemoryLimit)
	}
	if err := c.TenantDefaults.Validate(); err != nil {
		return fmt.Errorf("tenant_defaults: %s", eddy.AsError(err).Message)
	}
	if c.TransformDeadline < 0 || c.TransformDeadline > time.Minute {
		return fmt.Errorf("transform_deadline %s: use 0 (the default) to 1m", c.TransformDeadline)
	}
	if _, err := parseLevel(c.LogLevel); err != nil {
		return err
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		return fmt.Errorf("log_format %q: use text or json", c.LogFormat)
	}
	return nil
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("log_level %q: use debug, info, warn or error", s)
	}
	return l, nil
}

// fitConnections lowers the listeners' connection caps to three quarters
// of the descriptor limit nofile, in proportion, so that clients can never
// take the descriptors Raft, segments and peers need (at 1,024, 1,100
// idle sockets used to kill the accept loops). It reports whether it did.
func (c *Config) fitConnections(nofile uint64) bool {
	budget := int(min(nofile, 1<<30) * 3 / 4)
	want := c.HTTPMaxConnections
	if c.MQTTAddr != "" && c.MQTTAddr != "off" {
		want += c.MQTTMaxConnections
	}
	if c.kafkaOn() {
		want += c.KafkaMaxConnections
	}
	if want <= budget {
		return false
	}
	c.HTTPMaxConnections = max(16, c.HTTPMaxConnections*budget/want)
	c.MQTTMaxConnections = max(16, c.MQTTMaxConnections*budget/want)
	c.KafkaMaxConnections = max(16, c.KafkaMaxConnections*budget/want)
	return true
}

// logLevel is the level of the loggers NewLogger made.
var logLevel slog.LevelVar

// NewLogger returns the logger the configuration asks for, writing to w.
// Its level can change at run time (SIGHUP, Node.Reload).
func (c *Config) NewLogger(w *os.File) *slog.Logger {
	lvl, _ := parseLevel(c.LogLevel)
	logLevel.Set(lvl)
	opts := &slog.HandlerOptions{Level: &logLevel}
	if c.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// YAML renders the configuration as a config file.
func (c *Config) YAML() string {
	b, _ := yaml.Marshal(c)
	return string(b)
}

// validateBridges checks mqtt_bridges (at start and on a reload).
func (c *Config) validateBridges() error {
	names := map[string]bool{}
	for _, b := range c.MQTTBridges {
		if b.Name == "" || b.URL == "" || len(b.Filters) == 0 || b.Tenant == "" {
			return fmt.Errorf("mqtt_bridges: each needs name, url, filters and tenant")
		}
		if names[b.Name] {
			return fmt.Errorf("mqtt_bridges: two bridges are named %q", b.Name)
		}
		names[b.Name] = true
	}
	return nil
}

// ReadSlots is tenant_read_slots, 0 resolved to half the CPUs Go uses, at
// least 1.
func (c *Config) ReadSlots() int {
	if c.TenantReadSlots > 0 {
		return c.TenantReadSlots
	}
	return max(1, runtime.GOMAXPROCS(0)/2)
}
