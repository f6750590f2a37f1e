package multiraft

import (
	"crypto/tls"
	"log/slog"
	"time"

	"github.com/eddy-broker/eddy"
	"github.com/eddy-broker/eddy/multiraft/segment"
)

// Config configures a Host. The zero value of every field means its default.
type Config struct {
	// NodeID is this node's id, the ReplicaID of its replicas. Defaults to 1.
	NodeID uint64
	// RaftAddr is the Raft listener, host:port. It is baked into the data
	// directory and must not change across restarts. Defaults to 127.0.0.1:7100.
	RaftAddr string
	// HTTPAddr is the address other nodes and clients reach this node's
	// HTTP API at (advertised in the controller).
	HTTPAddr string
	// KafkaAddr is the address Kafka clients reach this node's listener at
	// (advertised in Metadata); empty when it is off.
	KafkaAddr string
	// Dir is the data directory: Raft state in Dir/raft, partition logs in
	// Dir/partitions.
	Dir string
	// Peers are the initial controller members (node id -> Raft address).
	// Empty means a cluster of this node alone.
	Peers map[uint64]string
	// Join: this node is not an initial member; it joins a running cluster
	// that added it (AddNode) and ignores Peers.
	Join bool
	// DeploymentID isolates clusters; it must never change. Defaults to 1.
	DeploymentID uint64
	// PeerTLS, when set, secures the Raft transport both ways: a node
	// accepts only peers presenting a certificate it trusts, and presents
	// its own (PeerTLSConfig builds one). Nil: plain TCP, for a Raft port
	// only the cluster's nodes can reach.
	PeerTLS *tls.Config
	// PeerTLSPermissive: with PeerTLS, plain peers are taken and tried too
	// while TLS is turned on or off node by node (peertls.go;
	// SetPeerTLSPermissive changes it).
	PeerTLSPermissive bool
	// MaxPeerHandshakes bounds the Raft port's connections not yet known
	// to be peers (in their TLS handshake, or before their first byte),
	// a sixteenth of it (at least 4) from one address. Defaults to 256.
	MaxPeerHandshakes int
	// RTT is dragonboat's tick. Elections take 10-20 ticks (3-6 for
	// single-replica shards, which cannot fail over anyway). Defaults to 100ms.
	RTT time.Duration
	// Linger, when above 0, is how long a proposer waits for more requests
	// before proposing a batch that is not full. 0 (the default): adaptive
	// group commit, proposing at once when nothing is in flight.
	Linger time.Duration
	// MaxBatchBytes is the target size of one proposal. Defaults to 256 KiB.
	MaxBatchBytes int
	// MaxInFlight is the proposals outstanding per partition. Defaults to
	// 4, at most segment.DedupWindow/2 (8).
	MaxInFlight int
	// QueueRecords and QueueBytes bound each partition's produce queue.
	// Default 50,000 records and 32 MiB.
	QueueRecords int
	QueueBytes   int
	// ProposeTimeout bounds how long a write is retried before the client
	// is told its outcome is unknown. Defaults to 10s.
	ProposeTimeout time.Duration
	// TenantControllerInFlight is how many controller commands each
	// tenant's clients may have in flight from this node (fairshare.go).
	// Defaults to 4.
	TenantControllerInFlight int
	// MinFreeBytes: writes are refused with CodeStorageFull while the data
	// directory's file system has less free space. Defaults to 64 MiB.
	MinFreeBytes uint64
	// DiskReserveBytes is space held in a file in Dir and given up the
	// moment a write meets a full disk, so writes in flight complete (see
	// diskReserve). Defaults to 64 MiB; below 16 MiB, 16 MiB.
	DiskReserveBytes int64
	// SyncBytes and SyncInterval are the sync policy: a partition replica
	// makes its segments durable (and lets dragonboat compact the Raft log
	// behind them) once this many bytes, or this long, have passed since
	// its last sync. They bound both the Raft log on disk and the work a
	// restart re-applies. Defaults 4 MiB and 10s: four syncs fit in the log
	// store's 16 MiB memtable, so a busy partition's entries mostly leave
	// the log before they are flushed to its sstables (DESIGN.md,
	// Replication).
	SyncBytes    int64
	SyncInterval time.Duration
	// SegmentCacheBytes is how much of a partition's newest synced data a
	// sync leaves in the page cache (segment.Config.CacheBytes: 0 is its
	// default, 16 MiB; negative leaves it all).
	SegmentCacheBytes int64
	// RaftLogStore is the Raft log store of a new data directory: "eddy"
	// (the default: multiraft/raftlog, one log shared by the partitions,
	// written once, over reused files), "pebble" (dragonboat's pebble
	// LogDB, the default before) or "tan" (dragonboat's tan: a log per
	// partition replica, up to 64 MiB each). A data directory keeps
	// the store it was made with, whatever this says.
	RaftLogStore string
	// RaftLogRetainBytes is about how much Raft log a replicated partition
	// keeps behind its last sync for lagging followers. Defaults to 32 MiB.
	RaftLogRetainBytes int64
	// MaxUnappliedBytes bounds a partition's Raft entries not yet
	// applied: the leader's own, or a follower's committed ones as it
	// reports them (dragonboat's MaxInMemLogSize, its in-memory rate
	// limiter). Past it the leader refuses proposals as busy, which the
	// proposer waits out, until the backlog is under 70% of it and ten
	// of the limiter's ticks (one per election timeout) have passed:
	// 8 s at least. It is the memory a partition replica may hold for a
	// follower slower than the writes. Defaults to 64 MiB.
	MaxUnappliedBytes int64
	// SizeReportInterval is how often partition leaders report their
	// retained bytes to the controller (for storage quotas cluster-wide).
	// Defaults to 5s.
	SizeReportInterval time.Duration
	// RetentionInterval is how often partition leaders check retention.
	// Defaults to 30s.
	RetentionInterval time.Duration
	// CompactionInterval is how often this node looks for replicas of
	// compacted topics to compact. Defaults to 15s.
	CompactionInterval time.Duration
	// CompactionKeyBytes bounds the map of keys one compaction holds
	// (Kafka's log.cleaner.dedupe.buffer.size). Defaults to 16 MiB.
	CompactionKeyBytes int64
	// CompactionBytesPerSec paces what compaction reads (and so writes),
	// leaving the disk to produce. Defaults to 16 MiB/s; negative: no pace.
	CompactionBytesPerSec int64
	// FS is the file system for partition logs. Defaults to the OS.
	FS segment.FS
	// Forwarder sends work for partitions this node holds no replica of to
	// nodes that do; nil means such requests get 503 unavailable.
	Forwarder Forwarder
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Hooks observe the host; each may be nil.
	Hooks Hooks
}

// Hooks are observability callbacks. They must not block.
type Hooks struct {
	// OnProposal: one proposal of records/bytes took d from propose to apply.
	OnProposal func(records, bytes int, d time.Duration)
	// OnLeaderChange: shardID has a new leader (0: none known).
	OnLeaderChange func(shardID, leaderID uint64)
	// OnLogSync: one write and fsync of the Raft log store took d.
	OnLogSync func(d time.Duration)
	// OnPartitionSync: a partition replica's Sync (its segments and
	// checkpoint made durable) held its applies for d.
	OnPartitionSync func(d time.Duration)
	// OnControllerWait: a tenant's controller command waited d for the
	// tenant's share of the controller (Config.TenantControllerInFlight).
	OnControllerWait func(tenant eddy.TenantID, d time.Duration)
	// OnCompaction: a compaction of one of tenant's partition logs
	// dropped records and freed bytes, or failed with err.
	OnCompaction func(tenant eddy.TenantID, records, bytes int64, err error)
	// OnPeerRefused: the Raft port closed a connection at accept, over
	// MaxPeerHandshakes (reason max_handshakes or max_handshakes_per_ip).
	OnPeerRefused func(reason string)
}

func (c *Config) setDefaults() {
	if c.NodeID == 0 {
		c.NodeID = 1
	}
	if c.RaftAddr == "" {
		c.RaftAddr = "127.0.0.1:7100"
	}
	if c.Dir == "" {
		c.Dir = "eddy-data"
	}
	if len(c.Peers) == 0 || c.Join {
		c.Peers = map[uint64]string{c.NodeID: c.RaftAddr}
	}
	if c.DeploymentID == 0 {
		c.DeploymentID = 1
	}
	if c.RTT <= 0 {
		c.RTT = 100 * time.Millisecond
	}
	if c.Linger < 0 {
		c.Linger = 0
	}
	if c.MaxBatchBytes <= 0 {
		c.MaxBatchBytes = 256 << 10
	}
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = 4
	}
	// A retried proposal must stay within the sequences the state machine
	// remembers (proposer.settleInOrder).
	c.MaxInFlight = min(c.MaxInFlight, segment.DedupWindow/2)
	if c.QueueRecords <= 0 {
		c.QueueRecords = 50_000
	}
	if c.QueueBytes <= 0 {
		c.QueueBytes = 32 << 20
	}
	if c.ProposeTimeout <= 0 {
		c.ProposeTimeout = 10 * time.Second
	}
	if c.TenantControllerInFlight <= 0 {
		c.TenantControllerInFlight = 4
	}
	if c.MinFreeBytes == 0 {
		c.MinFreeBytes = 64 << 20
	}
	if c.DiskReserveBytes <= 0 {
		c.DiskReserveBytes = 64 << 20
	}
	c.DiskReserveBytes = max(c.DiskReserveBytes, 16<<20)
	if c.SyncBytes <= 0 {
		c.SyncBytes = 4 << 20
	}
	if c.RaftLogRetainBytes <= 0 {
		c.RaftLogRetainBytes = 32 << 20
	}
	if c.MaxUnappliedBytes <= 0 {
		c.MaxUnappliedBytes = 64 << 20
	}
	if c.SyncInterval <= 0 {
		c.SyncInterval = 10 * time.Second
	}
	if c.SizeReportInterval <= 0 {
		c.SizeReportInterval = 5 * time.Second
	}
	if c.RetentionInterval <= 0 {
		c.RetentionInterval = 30 * time.Second
	}
	if c.CompactionInterval <= 0 {
		c.CompactionInterval = 15 * time.Second
	}
	if c.CompactionKeyBytes <= 0 {
		c.CompactionKeyBytes = 16 << 20
	}
	if c.CompactionBytesPerSec == 0 {
		c.CompactionBytesPerSec = 16 << 20
	}
	if c.FS == nil {
		c.FS = segment.OSFS{}
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}
