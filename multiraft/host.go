package multiraft

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eddy-broker/eddy/internal/logkey"

	"github.com/eddy-broker/eddy"
	"github.com/eddy-broker/eddy/multiraft/catalog"
	"github.com/eddy-broker/eddy/multiraft/raftlog"
	"github.com/eddy-broker/eddy/tenants"
	"github.com/lni/dragonboat/v4"
	"github.com/lni/dragonboat/v4/config"
	"github.com/lni/dragonboat/v4/plugin/tan"
	"github.com/lni/dragonboat/v4/raftio"
	sm "github.com/lni/dragonboat/v4/statemachine"
)

// Host is one node's Raft side: a dragonboat NodeHost with the controller
// shard and the partition shards this node replicates.
type Host struct {
	cfg     Config
	log     *slog.Logger
	nh      *dragonboat.NodeHost
	ctrl    *controllerSM
	metrics hostMetrics
	shares  tenantShares
	// sessionCommits groups MQTT sessions' position commits.
	sessionCommits sessionCommits
	// peers is the Raft transport's TLS mode (peertls.go).
	peers *peerMode

	producerID int64
	seqMu      sync.Mutex
	seqs       map[uint64]int32 // next sequence of stopped proposers, by shard

	// overLedSince is when this node began to lead more than its share
	// (zero: it does not); only balanceLeaders reads and writes it.
	overLedSince time.Time

	mu    sync.RWMutex
	parts map[uint64]*localPartition
	// byTenant are the local replicas of each tenant's partitions, by shard.
	byTenant map[eddy.TenantID]map[uint64]*localPartition
	rr       map[eddy.TopicRef]*atomic.Uint32 // round-robin counters by topic
	// quarantined are local replicas whose log could not be opened: not
	// started, so the node and its other partitions serve (quarantine.go).
	quarantined map[uint64]*Quarantine

	live           liveness
	leaders        leaderWatch
	keyCache       sync.Map     // catalog.KeyRef -> *tenants.Key, parsed
	operatorPublic atomic.Value // *tenants.Key

	reconcileC chan struct{}
	planC      chan struct{} // kicks the membership planner
	syncC      chan struct{} // kicks the sync policy (a partition reached SyncBytes)
	nudging    atomic.Bool   // nudgeIdle runs
	allAliveAt atomic.Bool   // every node answered at the sync policy's last round (for pinning)
	stop       chan struct{}
	wg         sync.WaitGroup
	diskFull   atomic.Bool
	reserve    *diskReserve
	logStore   string                        // the Raft log store the data directory keeps: pebble, tan or eddy
	sinceCheck atomic.Int64                  // bytes admitted since the last disk check
	raftLog    atomic.Pointer[raftlog.Store] // Eddy's Raft log store, when the node uses it
	readyOnce  atomic.Bool
	caughtUp   atomic.Bool // every replica applied what its leader had committed, once, after start
	closeOnce  sync.Once
}

type localPartition struct {
	replicaID uint64 // this node's ReplicaID in the shard
	replicas  int
	ref       eddy.TopicRef
	partition eddy.Partition
	shardID   uint64
	sm        *partitionSM
	prop      *proposer
	kept      atomic.Uint64 // Raft entries the last requested sync kept
	pinned    atomic.Bool   // the Raft log store asked for a sync (Host.pinning)
	nudged    atomic.Bool   // nudgeIdle's no-ops are in: sync it
}

type hostMetrics struct{ hooks Hooks }

func (m *hostMetrics) proposal(records, bytes int, d time.Duration) {
	if m.hooks.OnProposal != nil {
		m.hooks.OnProposal(records, bytes, d)
	}
}

func (m *hostMetrics) partitionSync(d time.Duration) {
	if m.hooks.OnPartitionSync != nil {
		m.hooks.OnPartitionSync(d)
	}
}

// New validates the configuration. It does no I/O.
func New(cfg Config) (*Host, error) {
	cfg.setDefaults()
	if cfg.NodeID > catalog.MaxNodeID {
		return nil, fmt.Errorf("multiraft: node id %d is above the maximum %d", cfg.NodeID, catalog.MaxNodeID)
	}
	if _, ok := cfg.Peers[cfg.NodeID]; !ok {
		return nil, fmt.Errorf("multiraft: node %d is not among the peers", cfg.NodeID)
	}
	h := &Host{cfg: cfg, log: cfg.Logger, metrics: hostMetrics{hooks: cfg.Hooks},
		parts: map[uint64]*localPartition{}, byTenant: map[eddy.TenantID]map[uint64]*localPartition{}, rr: map[eddy.TopicRef]*atomic.Uint32{}, quarantined: map[uint64]*Quarantine{},
		shares:     tenantShares{limit: cfg.TenantControllerInFlight, by: map[eddy.TenantID]*tenantShare{}},
		peers:      newPeerMode(cfg.PeerTLS, cfg.PeerTLSPermissive),
		reconcileC: make(chan struct{}, 1), planC: make(chan struct{}, 1), syncC: make(chan struct{}, 1), stop: make(chan struct{})}
	h.sessionCommits.h = h
	return h, nil
}

// Start opens the NodeHost, joins the controller, registers this node,
// allocates its producer id and starts the local partition replicas. It
// returns once the controller has a leader and this node is registered.
func (h *Host) Start(ctx context.Context) error {
	installLogger(h.log)
	shrinkDragonboatQueues()
	raftDir := filepath.Join(h.cfg.Dir, "raft")
	if err := os.MkdirAll(raftDir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", raftDir, err)
	}
	h.reserve = &diskReserve{path: filepath.Join(h.cfg.Dir, "disk-reserve"), size: h.cfg.DiskReserveBytes, log: h.log,
		onRelease: func() { h.diskFull.Store(true) }}
	h.reserve.hold()
	h.cfg.FS = segmentFS{h.cfg.FS, h.reserve}
	// The Raft log store: Eddy's own (multiraft/raftlog); or dragonboat's
	// pebble-based LogDB, one shard, in memtables of 16 MiB (at most 3),
	// without dragonboat's manual compactions (logdb.go); or tan
	// (RaftLogStore). A data directory keeps the store it was made with.
	// Measured: docs/DESIGN.md.
	logdb := config.GetTinyMemLogDBConfig()
	logdb.Shards = 1
	logdb.KVWriteBufferSize = 16 << 20
	logdb.KVMaxWriteBufferNumber = 3
	nhc := config.NodeHostConfig{
		DeploymentID:        h.cfg.DeploymentID,
		NodeHostDir:         raftDir,
		RTTMillisecond:      uint64(h.cfg.RTT / time.Millisecond),
		RaftAddress:         h.cfg.RaftAddr,
		RaftEventListener:   &leaderListener{h: h},
		MaxSendQueueSize:    64 << 20,
		MaxReceiveQueueSize: 64 << 20,
		Expert: config.ExpertConfig{FS: h.reserve.raftFS(),
			TransportFactory: &transportFactory{log: h.log, peers: h.peers,
				maxHandshakes: h.cfg.MaxPeerHandshakes, onRefused: h.cfg.Hooks.OnPeerRefused}},
	}
	// The stores by name; a data directory keeps the one it was made with
	// (dragonboat records it), so the configured one is tried first and
	// the others after it. (A node moves to another store by being
	// replaced: add a new node, remove this one; docs/operations.md.)
	tanLogDB := config.GetTinyMemLogDBConfig()
	tanLogDB.KVWriteBufferSize, tanLogDB.KVMaxWriteBufferNumber = 1<<20, 2
	stores := []struct {
		name    string
		logdb   config.LogDBConfig
		factory config.LogDBFactory
	}{
		{"eddy", logdb, raftLogFactory{noSpace: h.reserve.release, pinning: h.pinning, opened: h.raftLog.Store}},
		{"pebble", logdb, pebbleLogDB{}},
		{"tan", tanLogDB, tan.Factory},
	}
	want := h.cfg.RaftLogStore
	if want == "" {
		want = "eddy"
	}
	sort.SliceStable(stores, func(i, j int) bool { return stores[i].name == want && stores[j].name != want })
	var nh *dragonboat.NodeHost
	var err error
	for _, st := range stores {
		c := nhc
		c.Expert.LogDB, c.Expert.LogDBFactory = st.logdb, st.factory
		if f := h.cfg.Hooks.OnLogSync; f != nil {
			c.Expert.LogDBFactory = timedFactory{c.Expert.LogDBFactory, f}
		}
		h.logStore = st.name
		nh, err = dragonboat.NewNodeHost(c)
		if err == nil && st.name != want {
			h.log.Warn("this data directory keeps the Raft log store it was made with (raft_log_store applies to new data directories); replace the node to move it to another",
				"store", st.name, "configured", want)
		}
		if err == nil || !strings.Contains(err.Error(), "logdb type changed") {
			break
		}
	}
	if err != nil {
		return explainNodeHostError(err, h.cfg)
	}
	h.nh = nh
	h.ctrl = &controllerSM{st: catalog.NewState(), onChange: h.kickReconcile,
		modules: &moduleStore{dir: filepath.Join(h.cfg.Dir, "modules")}, log: h.log}
	initial := map[uint64]dragonboat.Target{}
	ccfg := h.shardConfig(ControllerShardID, h.cfg.NodeID, len(h.cfg.Peers))
	ccfg.SnapshotEntries, ccfg.CompactionOverhead = 1000, 500
	join := false
	if !nh.HasNodeInfo(ControllerShardID, h.cfg.NodeID) {
		if h.cfg.Join {
			join = true
			if err := h.markJoined(); err != nil {
				nh.Close()
				return err
			}
		} else {
			for id, addr := range h.cfg.Peers {
				initial[id] = addr
			}
		}
	}
	// A node that joined starts its controller replica as non-voting
	// (see startsNonVoting).
	ccfg.IsNonVoting = h.joined()
	if err := nh.StartReplica(initial, join, func(uint64, uint64) sm.IStateMachine { return h.ctrl }, ccfg); err != nil {
		nh.Close()
		return fmt.Errorf("start controller: %w", err)
	}
	if err := h.waitControllerLeader(ctx); err != nil {
		nh.Close()
		return err
	}
	// Register (or refresh) this node, then take a producer id.
	self := catalog.NodeMeta{ID: h.cfg.NodeID, RaftAddr: h.cfg.RaftAddr, HTTPAddr: h.cfg.HTTPAddr, KafkaAddr: h.cfg.KafkaAddr, StartedMs: time.Now().UnixMilli(),
		Features: catalog.Features}
	if _, err := h.ctrlPropose(ctx, &catalog.Cmd{Op: catalog.OpRegisterNode, Node: &self}); err != nil {
		nh.Close()
		return fmt.Errorf("register node %d with the controller: %w", h.cfg.NodeID, err)
	}
	res, err := h.ctrlPropose(ctx, &catalog.Cmd{Op: catalog.OpAllocProducer})
	if err != nil {
		nh.Close()
		return fmt.Errorf("allocate producer id: %w", err)
	}
	h.producerID = res.ProducerID
	// The default tenant always exists.
	exists := false
	h.ctrl.view(func(st *catalog.State) { _, exists = st.Tenants[eddy.DefaultTenant] })
	if !exists {
		if _, err := h.createTenant(ctx, eddy.DefaultTenant, tenants.Quotas{}); err != nil && eddy.ErrorCode(err) != eddy.CodeTenantExists {
			nh.Close()
			return fmt.Errorf("create the default tenant: %w", err)
		}
	}
	h.checkDisk()
	h.reconcile(ctx)
	h.probePeers()
	if h.replicasCaughtUp() { // at once for a lone node or a brief restart
		h.caughtUp.Store(true)
	}
	h.wg.Add(13)
	go h.awaitCaughtUp()
	go h.loop(2*time.Second, h.planC, h.planMembership)
	go h.loop(time.Second, nil, h.driveMoves)
	go h.loop(2*time.Second, nil, h.probePeers)
	go h.loop(10*time.Second, nil, h.balanceLeaders)
	go h.loop(min(h.cfg.SyncInterval/4, time.Second), h.syncC, h.syncDue)
	go h.loop(time.Second, nil, h.compactModules)
	go h.loop(5*time.Second, h.reconcileC, h.reconcileNow)
	go h.loop(time.Second, nil, h.checkDisk)
	go h.loop(time.Second, nil, h.expireMembers)
	go h.loop(h.cfg.RetentionInterval, nil, func() { h.applyRetention(time.Now()) })
	go h.loop(h.cfg.CompactionInterval, nil, func() { h.compactLogs(time.Now()) })
	go h.loop(h.cfg.SizeReportInterval, nil, h.reportSizes)
	return nil
}

// nodeHostErrors explains dragonboat's refusals to open a data directory.
// Those errors live in dragonboat's internal/server package and cannot be
// matched with errors.Is, so their messages are matched here, in one place.
var nodeHostErrors = []struct{ msg, why string }{
	{"hostname changed", "was created on a host with another hostname; dragonboat binds Raft data to the hostname"},
	{"not the owner of the data directory", "belongs to another Raft address or node; the Raft address cannot change across restarts"},
	{"deployment ID changed", "belongs to another cluster (deployment id)"},
	{"failed to lock data directory", "is in use by another process"},
}

func explainNodeHostError(err error, cfg Config) error {
	for _, e := range nodeHostErrors {
		if strings.Contains(err.Error(), e.msg) {
			return fmt.Errorf("refusing to start: the data directory %s %s (raft address %s, node %d): %w", cfg.Dir, e.why, cfg.RaftAddr, cfg.NodeID, err)
		}
	}
	return fmt.Errorf("start raft: %w", err)
}

func (h *Host) waitControllerLeader(ctx context.Context) error {
	for {
		if _, _, ok, _ := h.nh.GetLeaderID(ControllerShardID); ok {
			return nil
		}
		select {
		case <-ctx.Done():
			if h.cfg.Join {
				return fmt.Errorf("no cluster contacted this node: add it first (eddy cluster add-node --id %d --raft-addr %s) and check a majority of the cluster is up: %w", h.cfg.NodeID, h.cfg.RaftAddr, ctx.Err())
			}
			return fmt.Errorf("the controller elected no leader (are a majority of the peers %v up?): %w", h.cfg.Peers, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// electionTicks is the election timeout in RTTs: a follower campaigns after
// a random 8-16 ticks (0.8-1.6 s at the default 100 ms RTT) without hearing
// from its leader. 10 (dragonboat's usual) put the median failover at about
// 1.5 s; 8 still leaves 8 missed heartbeats before anyone campaigns, and
// PreVote keeps a slow follower from deposing a live leader.
const electionTicks = 8

func (h *Host) shardConfig(shardID, replicaID uint64, members int) config.Config {
	election := uint64(electionTicks)
	if members == 1 {
		election = 3 // a single replica elects itself; no failover to wait for
	}
	return config.Config{
		ShardID:      shardID,
		ReplicaID:    replicaID,
		ElectionRTT:  election,
		HeartbeatRTT: 1,
		CheckQuorum:  true,
		PreVote:      true,
		// Snapshots of an on-disk state machine are metadata only: they
		// call Sync and let the Raft log be compacted. syncLoop asks for
		// them by volume and time; SnapshotEntries is the backstop. The
		// overhead keeps enough log for a briefly lagging follower.
		SnapshotEntries:    10_000,
		CompactionOverhead: 1_000,
		MaxInMemLogSize:    uint64(h.cfg.MaxUnappliedBytes),
	}
}

// ctrlPropose proposes a controller command and waits for its result.
func (h *Host) ctrlPropose(ctx context.Context, cmd *catalog.Cmd) (catalog.Result, error) {
	b, _ := json.Marshal(cmd)
	ctx, cancel := context.WithTimeout(ctx, h.cfg.ProposeTimeout)
	defer cancel()
	sess := h.nh.GetNoOPSession(ControllerShardID)
	for {
		r, err := h.nh.SyncPropose(ctx, sess, b)
		if err == nil {
			var res catalog.Result
			if err := json.Unmarshal(r.Data, &res); err != nil {
				return res, eddy.Errorf(eddy.CodeInternal, "controller result: %v", err)
			}
			return res, res.Err.AsError()
		}
		if errors.Is(err, dragonboat.ErrShardNotReady) || errors.Is(err, dragonboat.ErrSystemBusy) {
			select {
			case <-time.After(20 * time.Millisecond):
				continue
			case <-ctx.Done():
			}
		}
		if ctx.Err() != nil {
			return catalog.Result{}, &eddy.Error{Code: eddy.CodeNoQuorum, RetryAfterMs: 1000,
				Message: "the controller did not answer in time: no quorum of its nodes is reachable"}
		}
		return catalog.Result{}, eddy.Errorf(eddy.CodeUnavailable, "controller: %v", err)
	}
}

// kickReconcile wakes the reconciler and the membership planner (each
// loop has its own channel: a shared one would hand a kick to only one).
func (h *Host) kickReconcile() {
	for _, c := range []chan struct{}{h.reconcileC, h.planC} {
		select {
		case c <- struct{}{}:
		default:
		}
	}
}

// loop runs fn every interval, and whenever kick receives (kick may be
// nil), until the host stops.
func (h *Host) loop(interval time.Duration, kick <-chan struct{}, fn func()) {
	defer h.wg.Done()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-h.stop:
			return
		case <-kick:
		case <-t.C:
		}
		fn()
	}
}

// Close stops proposers (in-flight commits finish), then the NodeHost.
func (h *Host) Close() error {
	h.closeOnce.Do(func() {
		if h.nh != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			h.transferLeadership(ctx)
			cancel()
		}
		close(h.stop)
		h.wg.Wait()
		h.mu.Lock()
		parts := make([]*localPartition, 0, len(h.parts))
		for _, lp := range h.parts {
			parts = append(parts, lp)
		}
		h.mu.Unlock()
		var wg sync.WaitGroup
		for _, lp := range parts {
			wg.Add(1)
			go func() { defer wg.Done(); lp.prop.close() }()
		}
		wg.Wait()
		if h.nh != nil {
			h.nh.Close()
		}
	})
	return nil
}

// Booting reports whether this node has not yet been ready since it
// started: its replicas may not know their leaders, so writes and reads
// sent to it would wait. The HTTP API answers 503 unavailable meanwhile.
func (h *Host) Booting() bool {
	if h.readyOnce.Load() {
		return false
	}
	if h.Ready() == nil {
		h.readyOnce.Store(true)
		return false
	}
	return true
}

// Ready reports nil when storage is open and every local shard has a leader.
func (h *Host) Ready() error {
	if h.nh == nil {
		return eddy.Errorf(eddy.CodeUnavailable, "raft is not started")
	}
	if _, _, ok, err := h.nh.GetLeaderID(ControllerShardID); err != nil || !ok {
		return eddy.Errorf(eddy.CodeUnavailable, "the controller has no leader")
	}
	if !h.caughtUp.Load() {
		return eddy.Errorf(eddy.CodeUnavailable, "catching up: the replicas are applying the log they missed while down")
	}
	h.mu.RLock()
	defer h.mu.RUnlock()
	for id, lp := range h.parts {
		if _, err := lp.sm.log(); err != nil {
			return eddy.Errorf(eddy.CodeUnavailable, "%s partition %d: %v", lp.ref, lp.partition, err)
		}
		if _, _, ok, err := h.nh.GetLeaderID(id); err != nil || !ok {
			return eddy.Errorf(eddy.CodeUnavailable, "%s partition %d has no leader", lp.ref, lp.partition)
		}
	}
	return nil
}

// awaitCaughtUp marks the node caught up once a ReadIndex has succeeded on
// every local replica: each has applied everything its leader had committed
// when asked. Until then the node is not ready. A node that restarts under
// load otherwise reports ready while still applying what it missed, and
// taking the next node down then leaves every partition's quorum waiting on
// it: the stall a rolling restart must not have.
func (h *Host) awaitCaughtUp() {
	defer h.wg.Done()
	start := time.Now()
	for !h.caughtUp.Load() {
		if h.replicasCaughtUp() {
			h.caughtUp.Store(true)
			h.log.Info("replicas caught up", "took", time.Since(start).Round(time.Millisecond))
			return
		}
		if time.Since(start) > 2*time.Minute {
			h.caughtUp.Store(true)
			h.log.Warn("replicas did not all catch up within 2m; reporting ready anyway")
			return
		}
		select {
		case <-h.stop:
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (h *Host) replicasCaughtUp() bool {
	shards := []uint64{ControllerShardID}
	h.mu.RLock()
	for id := range h.parts {
		shards = append(shards, id)
	}
	h.mu.RUnlock()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var failed atomic.Bool
	var wg sync.WaitGroup
	for _, id := range shards {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var q any
			if id != ControllerShardID {
				q = offsetsQuery{}
			}
			if _, err := h.nh.SyncRead(ctx, id, q); err != nil {
				failed.Store(true)
			}
		}()
	}
	wg.Wait()
	return !failed.Load()
}

// leaderListener forwards dragonboat's leader events (on its own goroutine).
type leaderListener struct{ h *Host }

func (l *leaderListener) LeaderUpdated(info raftio.LeaderInfo) {
	l.h.log.Debug("shard leader changed", logkey.Shard, info.ShardID, "leader", info.LeaderID, "term", info.Term)
	l.h.leaders.changed(info.ShardID)
	if f := l.h.cfg.Hooks.OnLeaderChange; f != nil {
		f(info.ShardID, info.LeaderID)
	}
}

// leaderWatch broadcasts leader changes per shard: the channel for a shard
// is closed (and replaced) when its leader changes.
type leaderWatch struct {
	mu sync.Mutex
	ch map[uint64]chan struct{}
}

// watch returns a channel closed at the shard's next leader change.
func (w *leaderWatch) watch(shard uint64) <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ch == nil {
		w.ch = map[uint64]chan struct{}{}
	}
	c, ok := w.ch[shard]
	if !ok {
		c = make(chan struct{})
		w.ch[shard] = c
	}
	return c
}

func (w *leaderWatch) changed(shard uint64) {
	w.mu.Lock()
	if c, ok := w.ch[shard]; ok {
		close(c)
		delete(w.ch, shard)
	}
	w.mu.Unlock()
}
