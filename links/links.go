// Package links forwards topics to another Kafka cluster (a cloud Eddy or
// any Kafka-compatible cluster) exactly once, across outages of the
// uplink and restarts of either side. A link is a catalog object
// (multiraft/catalog/links.go); this package runs it: on every node, for
// each linked partition this node leads, a runner reads the log from the
// link's position and sends it upstream with franz-go's client, keeping
// its producer identity and the batch in flight in the controller.
package links

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/eddy-broker/eddy"
	"github.com/eddy-broker/eddy/internal/logkey"
	"github.com/eddy-broker/eddy/multiraft"
	"github.com/eddy-broker/eddy/multiraft/catalog"
)

// Source is what links need of the node; *multiraft.Host is one.
type Source interface {
	NodeID() uint64
	AllLinks() []*catalog.LinkMeta
	Topics(tenant eddy.TenantID) []*catalog.TopicMeta
	Leads(meta *catalog.TopicMeta, p eddy.Partition) bool
	FetchBatches(ctx context.Context, ref eddy.TopicRef, p eddy.Partition, offset eddy.Offset, maxBytes int, wait time.Duration) (eddy.FetchedBatches, error)
	// Await waits up to wait for a record at offset or later in this
	// node's replica, reading none; false at once without a replica here.
	Await(ctx context.Context, ref eddy.TopicRef, p eddy.Partition, offset eddy.Offset, wait time.Duration) bool
	LinkBacklog(meta *catalog.TopicMeta, p eddy.Partition, from, maxBytes, maxAgeMs int64) (multiraft.Backlog, error)
	LinkProgress(ctx context.Context, tenant eddy.TenantID, name string, ups []catalog.LinkProgress) (*catalog.LinkMeta, error)
}

// Config configures the runners. Zero values mean the defaults.
type Config struct {
	Logger  *slog.Logger
	Metrics *metrics.Set
	// Interval is how often the node looks for partitions it has come to
	// lead or lost (default 1 s; a catalog change also wakes it).
	Interval time.Duration
	// MaxBackoff bounds the wait between failed attempts (default 10 s;
	// three times that while the target refuses).
	MaxBackoff time.Duration
	// Targets bounds where tenants' links connect (link_allowed_targets).
	Targets Targets
}

// Manager starts and stops this node's runners as links and leadership
// change.
type Manager struct {
	src  Source
	cfg  Config
	log  *slog.Logger
	kick chan struct{}
	stop chan struct{}
	done chan struct{}

	mu     sync.Mutex
	links  map[string]*link  // by tenant/name@created
	failed map[string]string // links whose client could not be made, and why
}

// link is one link's state on this node: its client, its bandwidth and
// its runners.
type link struct {
	key     string // tenant/name
	tenant  eddy.TenantID
	name    string
	created int64
	up      *upstream
	bucket  *bucket
	uplink  backoff // shared while the target does not answer
	m       linkMetrics
	// progress writes the runners' progress to the controller, many
	// updates to an entry (progress.go).
	progress *committer

	rmu     sync.Mutex         // runners is read by the metrics' callbacks
	runners map[uint64]*runner // by source shard
}

// New builds a manager; Start runs it.
func New(src Source, cfg Config) *Manager {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Metrics == nil {
		cfg.Metrics = metrics.NewSet()
	}
	if cfg.Interval <= 0 {
		cfg.Interval = time.Second
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 10 * time.Second
	}
	return &Manager{src: src, cfg: cfg, log: cfg.Logger, kick: make(chan struct{}, 1), stop: make(chan struct{}),
		done: make(chan struct{}), links: map[string]*link{}, failed: map[string]string{}}
}

// Start runs the manager until Close.
func (m *Manager) Start() {
	go func() {
		defer close(m.done)
		t := time.NewTicker(m.cfg.Interval)
		defer t.Stop()
		for {
			m.reconcile()
			select {
			case <-m.stop:
				m.stopAll()
				return
			case <-t.C:
			case <-m.kick:
			}
		}
	}()
}

// Kick makes the manager look again now (a catalog change).
func (m *Manager) Kick() {
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

// Close stops every runner and waits for them.
func (m *Manager) Close() {
	close(m.stop)
	<-m.done
}

type want struct {
	meta *catalog.TopicMeta
	p    eddy.Partition
}

// reconcile starts runners for linked partitions this node leads and
// stops the others.
func (m *Manager) reconcile() {
	desired := map[string]map[uint64]want{}
	specs := map[string]*catalog.LinkMeta{}
	for _, l := range m.src.AllLinks() {
		key := catalog.LinkKey(l.Tenant, l.Name) + "@" + strconv.FormatInt(l.CreatedMs, 10)
		specs[key] = l
		ws := map[uint64]want{}
		for _, t := range m.src.Topics(l.Tenant) {
			if !l.Matches(t.Name) {
				continue
			}
			for p := range t.Partitions {
				if int(p) < len(t.Shards) && m.src.Leads(t, eddy.Partition(p)) {
					ws[t.Shards[p]] = want{t, eddy.Partition(p)}
				}
			}
		}
		desired[key] = ws
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for key := range m.failed {
		if _, ok := desired[key]; !ok {
			delete(m.failed, key)
		}
	}
	for key, lk := range m.links {
		ws := desired[key]
		for shard, r := range lk.runnersSnapshot() {
			if _, ok := ws[shard]; !ok {
				r.close()
				lk.rmu.Lock()
				delete(lk.runners, shard)
				lk.rmu.Unlock()
			}
		}
		if len(ws) == 0 {
			lk.close(m.cfg.Metrics)
			delete(m.links, key)
		}
	}
	for key, ws := range desired {
		if len(ws) == 0 {
			continue
		}
		lk := m.links[key]
		if lk == nil {
			l := specs[key]
			lk = &link{key: catalog.LinkKey(l.Tenant, l.Name), tenant: l.Tenant, name: l.Name, created: l.CreatedMs,
				bucket: newBucket(l.MaxBytesPerSec), runners: map[uint64]*runner{}}
			lk.m = newLinkMetrics(m.cfg.Metrics, lk)
			tenant, name := l.Tenant, l.Name
			lk.progress = newCommitter(func(ctx context.Context, ups []catalog.LinkProgress) error {
				_, err := m.src.LinkProgress(ctx, tenant, name, ups)
				return err
			}, func(n int) { lk.m.entries.Inc(); lk.m.updates.Add(n) })
			up, err := newUpstream(l, m.cfg.Targets, lk.m.connects)
			if err != nil {
				lk.m.unregister(m.cfg.Metrics)
				if m.failed[key] != err.Error() { // once, not every second
					m.failed[key] = err.Error()
					m.log.Warn("link cannot start", "link", key, logkey.Err, err)
				}
				continue
			}
			delete(m.failed, key)
			lk.up = up
			m.links[key] = lk
		}
		for shard, w := range ws {
			lk.rmu.Lock()
			_, ok := lk.runners[shard]
			if !ok {
				r := newRunner(m, lk, shard, w.meta, w.p)
				lk.runners[shard] = r
				go r.run()
			}
			lk.rmu.Unlock()
		}
	}
}

func (m *Manager) stopAll() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for key, lk := range m.links {
		for _, r := range lk.runnersSnapshot() {
			r.close()
		}
		lk.close(m.cfg.Metrics)
		delete(m.links, key)
	}
}

func (lk *link) close(set *metrics.Set) {
	lk.up.close()
	lk.m.unregister(set)
}

// current is the link's meta as the controller holds it now (nil when it
// was deleted or made again).
func (m *Manager) current(lk *link) *catalog.LinkMeta {
	for _, l := range m.src.AllLinks() {
		if l.Tenant == lk.tenant && l.Name == lk.name && l.CreatedMs == lk.created {
			return l
		}
	}
	return nil
}

// linkMetrics are a link's series on this node.
type linkMetrics struct {
	names                             []string
	bytes, records, dropped, resets   *metrics.Counter
	failures, connects                *metrics.Counter
	entries, updates                  *metrics.Counter // progress written to the controller
	backlogRecords, backlogBytes, age *metrics.Gauge
}

func newLinkMetrics(set *metrics.Set, lk *link) linkMetrics {
	label := fmt.Sprintf(`{link=%q}`, lk.key)
	var lm linkMetrics
	name := func(n string) string { lm.names = append(lm.names, n+label); return n + label }
	sum := func(f func(r *runner) float64, agg func(a, b float64) float64) func() float64 {
		return func() float64 {
			var v float64
			lk.each(func(r *runner) { v = agg(v, f(r)) })
			return v
		}
	}
	add := func(a, b float64) float64 { return a + b }
	lm.bytes = set.GetOrCreateCounter(name("eddy_link_sent_bytes_total"))
	lm.records = set.GetOrCreateCounter(name("eddy_link_sent_records_total"))
	lm.dropped = set.GetOrCreateCounter(name("eddy_link_dropped_records_total"))
	lm.resets = set.GetOrCreateCounter(name("eddy_link_producer_resets_total"))
	lm.failures = set.GetOrCreateCounter(name("eddy_link_send_failures_total"))
	lm.connects = set.GetOrCreateCounter(name("eddy_link_connects_total"))
	lm.entries = set.GetOrCreateCounter(name("eddy_link_progress_entries_total"))
	lm.updates = set.GetOrCreateCounter(name("eddy_link_progress_updates_total"))
	lm.backlogRecords = set.GetOrCreateGauge(name("eddy_link_backlog_records"), sum(func(r *runner) float64 { return float64(r.status().backlogRecords) }, add))
	lm.backlogBytes = set.GetOrCreateGauge(name("eddy_link_backlog_bytes"), sum(func(r *runner) float64 { return float64(r.status().backlogBytes) }, add))
	lm.age = set.GetOrCreateGauge(name("eddy_link_backlog_seconds"), sum(func(r *runner) float64 { return r.status().backlogSeconds() }, func(a, b float64) float64 { return max(a, b) }))
	return lm
}

func (lm linkMetrics) unregister(set *metrics.Set) {
	for _, n := range lm.names {
		set.UnregisterMetric(n)
	}
}

func (lk *link) each(fn func(r *runner)) {
	for _, r := range lk.runnersSnapshot() {
		fn(r)
	}
}

func (lk *link) runnersSnapshot() map[uint64]*runner {
	lk.rmu.Lock()
	defer lk.rmu.Unlock()
	out := make(map[uint64]*runner, len(lk.runners))
	for s, r := range lk.runners {
		out[s] = r
	}
	return out
}
