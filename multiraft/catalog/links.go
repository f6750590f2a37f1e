package catalog

import (
	"crypto/x509"
	"fmt"
	"path"
	"sort"
	"strings"

	"github.com/eddy-broker/eddy"
)

// A link forwards a tenant's topics to a Kafka cluster (another Eddy, or
// any Kafka-compatible one) exactly once. Its spec lives here; so does,
// per source partition, what the link has durably done: the offsets
// acknowledged upstream, the batch in flight, and the producer identity
// (id, epoch, sequence) that lets the target deduplicate a batch that was
// sent but whose acknowledgement was lost. The link runs on the node that
// leads each source partition (package links); it writes its progress
// here with compare-and-set commands, so a runner on a node that lost
// leadership cannot overwrite the newer one's.

// MaxLinksPerTenant bounds a tenant's links: each runs a client and a
// goroutine per linked partition on the nodes that lead them.
const MaxLinksPerTenant = 16

// LinkSpec is what a user configures.
type LinkSpec struct {
	// To lists the target's bootstrap brokers, host:port.
	To []string `json:"to"`
	// Topics are the source topics, names or globs (path.Match, as
	// "metrics-*").
	Topics []string `json:"topics"`
	// Priority lists topic globs sent first, in this order, when the
	// link's bandwidth is short (catching up); others come after.
	Priority []string `json:"priority,omitempty"`
	// TargetPrefix is put before each topic's name on the target.
	TargetPrefix string `json:"target_prefix,omitempty"`
	// SASL: "plain" or "oauthbearer" (the password is then the token);
	// empty: none.
	SASL     string `json:"sasl,omitempty"`
	Username string `json:"username,omitempty"`
	// Password is a secret: it is kept here, in the controller's log and
	// snapshots (as the cluster's signing key is), and never shown.
	Password string `json:"password,omitempty"`
	// TLS to the target; CAPEM trusts these roots instead of the
	// system's; InsecureSkipVerify only for tests.
	TLS                bool   `json:"tls,omitempty"`
	CAPEM              string `json:"ca_pem,omitempty"`
	ServerName         string `json:"server_name,omitempty"`
	InsecureSkipVerify bool   `json:"insecure_skip_verify,omitempty"`
	// Compression of the batches sent: none, gzip, snappy, lz4, zstd.
	Compression string `json:"compression,omitempty"`
	// MaxBytesPerSec caps the link's bytes on the wire (0: no cap).
	MaxBytesPerSec int64 `json:"max_bytes_per_sec,omitempty"`
	// Start is where a partition the link has not seen begins: earliest
	// (the default) or latest.
	Start string `json:"start,omitempty"`
	// MaxBacklogBytes and MaxBacklogAgeMs cap what retention must keep
	// for the link: past either, the oldest unsent records are dropped
	// (counted). 0: the defaults, DefaultMaxBacklogBytes and none.
	MaxBacklogBytes int64 `json:"max_backlog_bytes,omitempty"`
	MaxBacklogAgeMs int64 `json:"max_backlog_age_ms,omitempty"`
	// LingerMs is how long a partition with little to send waits to fill
	// a batch (default 50): fewer, larger requests on a metered uplink.
	LingerMs int64 `json:"linger_ms,omitempty"`
	// MaxBatchBytes bounds one batch sent upstream (default 1 MiB, under
	// Kafka's default max.message.bytes).
	MaxBatchBytes int64 `json:"max_batch_bytes,omitempty"`
	// NoCreateTopics: never create missing topics on the target.
	NoCreateTopics bool `json:"no_create_topics,omitempty"`
}

// Link defaults.
const (
	DefaultMaxBacklogBytes = 1 << 30
	DefaultLingerMs        = 50
	DefaultMaxBatchBytes   = 1 << 20
	maxLinkTopics          = 64
	maxLinkBrokers         = 16
)

// LinkMeta is a link as the controller holds it.
type LinkMeta struct {
	Tenant eddy.TenantID `json:"tenant"`
	Name   string        `json:"name"`
	LinkSpec
	Paused    bool  `json:"paused,omitempty"`
	CreatedMs int64 `json:"created_ms"`
	// Partitions by the source partition's shard (a topic deleted and
	// created again starts afresh).
	Partitions map[uint64]*LinkPartition `json:"partitions,omitempty"`
}

// LinkPartition is one source partition's progress.
type LinkPartition struct {
	Topic     eddy.TopicName `json:"topic"`
	Partition eddy.Partition `json:"partition"`
	// Sent: every record below it is acknowledged by the target.
	Sent int64 `json:"sent"`
	// InFlight is the end of the batch sent (or about to be) and not yet
	// acknowledged, [Sent, InFlight); equal to Sent when none is. After a
	// restart exactly this batch is sent again, with the same producer id,
	// epoch and sequence, so the target drops it if it had it.
	InFlight   int64 `json:"in_flight"`
	ProducerID int64 `json:"producer_id"`
	Epoch      int16 `json:"epoch"`
	// Seq is the producer sequence of the record at Sent.
	Seq int32 `json:"seq"`
	// Dropped counts unsent records the link gave up (past its backlog
	// caps, or removed before they were sent); Resets counts producer
	// resets (a new epoch or id after the target forgot or refused the
	// sequence): each may duplicate the batch then in flight.
	Dropped int64 `json:"dropped,omitempty"`
	Resets  int64 `json:"resets,omitempty"`
	// Bytes counts bytes acknowledged by the target (on the wire).
	Bytes int64 `json:"bytes,omitempty"`
	// What the runner last reported, for status: not checked.
	Node         uint64 `json:"node,omitempty"`
	State        string `json:"state,omitempty"`
	Error        string `json:"error,omitempty"`
	End          int64  `json:"end,omitempty"`
	BacklogBytes int64  `json:"backlog_bytes,omitempty"`
	OldestMs     int64  `json:"oldest_ms,omitempty"` // timestamp of the record at Sent
	UpdatedMs    int64  `json:"updated_ms,omitempty"`
}

// Link states a runner reports.
const (
	LinkConnected  = "connected"
	LinkBackingOff = "backing_off"
	LinkFailing    = "failing"
	LinkPaused     = "paused"
)

// sameDurable reports whether the fields a compare-and-set checks match.
func (p *LinkPartition) sameDurable(o *LinkPartition) bool {
	return p.Sent == o.Sent && p.InFlight == o.InFlight && p.ProducerID == o.ProducerID && p.Epoch == o.Epoch && p.Seq == o.Seq
}

// LinkCmd carries a link command.
type LinkCmd struct {
	Tenant eddy.TenantID `json:"tenant"`
	Name   string        `json:"name"`
	Spec   *LinkSpec     `json:"spec,omitempty"`
	Paused bool          `json:"paused,omitempty"`
	NowMs  int64         `json:"now_ms,omitempty"`
	// Progress: compare-and-set updates, by shard, all or none.
	Progress []LinkProgress `json:"progress,omitempty"`
}

// LinkProgress moves one partition from Expect (nil: the link has no
// state for it yet) to Next. With StatusOnly, only the reported fields
// change and Expect is not checked.
type LinkProgress struct {
	Shard      uint64         `json:"shard"`
	Expect     *LinkPartition `json:"expect,omitempty"`
	Next       LinkPartition  `json:"next"`
	StatusOnly bool           `json:"status_only,omitempty"`
}

// Link commands.
const (
	OpCreateLink   = "create_link"
	OpDeleteLink   = "delete_link"
	OpPauseLink    = "pause_link" // Paused true or false
	OpLinkProgress = "link_progress"
)

// LinkKey names a link in the controller.
func LinkKey(t eddy.TenantID, name string) string { return string(t) + "/" + name }

// Validate checks a spec and fills its defaults.
func (s *LinkSpec) Validate() error {
	if len(s.To) == 0 || len(s.To) > maxLinkBrokers {
		return eddy.Errorf(eddy.CodeInvalid, "a link names 1 to %d target brokers (host:port), got %d", maxLinkBrokers, len(s.To))
	}
	for _, b := range s.To {
		if h, p, ok := strings.Cut(b, ":"); !ok || h == "" || p == "" || strings.ContainsAny(b, "/ ") {
			return eddy.Errorf(eddy.CodeInvalid, "target broker %q is not host:port", b)
		}
	}
	if len(s.Topics) == 0 || len(s.Topics) > maxLinkTopics {
		return eddy.Errorf(eddy.CodeInvalid, "a link names 1 to %d topics or globs, got %d", maxLinkTopics, len(s.Topics))
	}
	for _, list := range [][]string{s.Topics, s.Priority} {
		for _, g := range list {
			if err := validGlob(g); err != nil {
				return err
			}
		}
	}
	if s.TargetPrefix != "" {
		if err := eddy.TopicName(s.TargetPrefix + "x").Validate(); err != nil {
			return eddy.Errorf(eddy.CodeInvalid, "target prefix %q: %s", s.TargetPrefix, eddy.AsError(err).Message)
		}
	}
	switch s.SASL {
	case "":
		if s.Username != "" || s.Password != "" {
			return eddy.Errorf(eddy.CodeInvalid, "a username or password needs --sasl plain or oauthbearer")
		}
	case "plain", "oauthbearer":
		if s.Password == "" || (s.SASL == "plain" && s.Username == "") {
			return eddy.Errorf(eddy.CodeInvalid, "sasl %s needs a password%s", s.SASL, map[bool]string{true: " and a username"}[s.SASL == "plain"])
		}
	default:
		return eddy.Errorf(eddy.CodeInvalid, "sasl %q: plain or oauthbearer", s.SASL)
	}
	if s.CAPEM != "" && !x509.NewCertPool().AppendCertsFromPEM([]byte(s.CAPEM)) {
		return eddy.Errorf(eddy.CodeInvalid, "the link's CA holds no PEM certificate")
	}
	switch s.Compression {
	case "", "none", "gzip", "snappy", "lz4", "zstd":
	default:
		return eddy.Errorf(eddy.CodeInvalid, "compression %q: none, gzip, snappy, lz4 or zstd", s.Compression)
	}
	switch s.Start {
	case "":
		s.Start = "earliest"
	case "earliest", "latest":
	default:
		return eddy.Errorf(eddy.CodeInvalid, "start %q: earliest or latest", s.Start)
	}
	if s.MaxBytesPerSec < 0 || s.MaxBacklogBytes < 0 || s.MaxBacklogAgeMs < 0 || s.LingerMs < 0 || s.MaxBatchBytes < 0 {
		return eddy.Errorf(eddy.CodeInvalid, "link limits cannot be negative")
	}
	if s.MaxBytesPerSec > 0 && s.MaxBytesPerSec < 1024 {
		return eddy.Errorf(eddy.CodeInvalid, "max bytes per second %d is under 1 KiB", s.MaxBytesPerSec)
	}
	if s.MaxBatchBytes != 0 && (s.MaxBatchBytes < 4096 || s.MaxBatchBytes > 16<<20) {
		return eddy.Errorf(eddy.CodeInvalid, "max batch bytes %d: 4 KiB to 16 MiB", s.MaxBatchBytes)
	}
	if s.LingerMs > 60_000 {
		return eddy.Errorf(eddy.CodeInvalid, "linger %d ms is over a minute", s.LingerMs)
	}
	return nil
}

func validGlob(g string) error {
	if _, err := path.Match(g, ""); err != nil || g == "" || strings.ContainsAny(g, "/ ") {
		return eddy.Errorf(eddy.CodeInvalid, "topic pattern %q is not a topic name or glob", g)
	}
	return nil
}

// Matches reports whether the link forwards the topic.
func (s *LinkSpec) Matches(topic eddy.TopicName) bool { return matchAny(s.Topics, topic) >= 0 }

// PriorityOf is the topic's rank: 0 first, len(Priority) for the rest.
func (s *LinkSpec) PriorityOf(topic eddy.TopicName) int {
	if i := matchAny(s.Priority, topic); i >= 0 {
		return i
	}
	return len(s.Priority)
}

func matchAny(globs []string, topic eddy.TopicName) int {
	for i, g := range globs {
		if ok, _ := path.Match(g, string(topic)); ok {
			return i
		}
	}
	return -1
}

// Effective limits, defaults filled.
func (s *LinkSpec) BacklogBytes() int64 { return orDefault(s.MaxBacklogBytes, DefaultMaxBacklogBytes) }
func (s *LinkSpec) Linger() int64       { return orDefault(s.LingerMs, DefaultLingerMs) }
func (s *LinkSpec) BatchBytes() int64   { return orDefault(s.MaxBatchBytes, DefaultMaxBatchBytes) }

func orDefault(v, def int64) int64 {
	if v == 0 {
		return def
	}
	return v
}

// Redacted is the link without its secret, for listings.
func (l *LinkMeta) Redacted() *LinkMeta {
	c := *l
	if c.Password != "" {
		c.Password = "********"
	}
	c.Partitions = make(map[uint64]*LinkPartition, len(l.Partitions))
	for s, p := range l.Partitions {
		cp := *p
		c.Partitions[s] = &cp
	}
	return &c
}

func (st *State) applyLink(op string, c *LinkCmd) Result {
	if c == nil {
		return errResult(eddy.CodeInvalid, op+": missing link")
	}
	if st.Links == nil {
		st.Links = map[string]*LinkMeta{}
	}
	key := LinkKey(c.Tenant, c.Name)
	cur, ok := st.Links[key]
	if !ok && op != OpCreateLink {
		return errResult(eddy.CodeNotFound, "link "+c.Name+" does not exist")
	}
	switch op {
	case OpCreateLink:
		if _, ok := st.Tenants[c.Tenant]; !ok {
			return errResult(eddy.CodeNotFound, "tenant "+string(c.Tenant)+" does not exist")
		}
		if err := ValidateTransformName(c.Name); err != nil {
			return errResult(eddy.CodeInvalid, strings.Replace(eddy.AsError(err).Message, "transform", "link", 1))
		}
		if ok {
			return errResult(eddy.CodeConflict, "link "+c.Name+" already exists")
		}
		if c.Spec == nil {
			return errResult(eddy.CodeInvalid, "create_link: missing spec")
		}
		spec := *c.Spec
		if err := spec.Validate(); err != nil {
			return errResult(eddy.CodeInvalid, eddy.AsError(err).Message)
		}
		n := 0
		for _, l := range st.Links {
			if l.Tenant == c.Tenant {
				n++
			}
		}
		if n >= MaxLinksPerTenant {
			return errResult(eddy.CodeLimitExceeded, fmt.Sprintf("tenant %s has %d links, the most it may", c.Tenant, MaxLinksPerTenant))
		}
		l := &LinkMeta{Tenant: c.Tenant, Name: c.Name, LinkSpec: spec, CreatedMs: c.NowMs}
		st.Links[key] = l
		return Result{Link: l.Redacted()}
	case OpDeleteLink:
		delete(st.Links, key)
		return Result{}
	case OpPauseLink:
		cp := *cur
		cp.Paused = c.Paused
		st.Links[key] = &cp
		return Result{Link: cp.Redacted()}
	case OpLinkProgress:
		return st.linkProgress(cur, c.Progress)
	}
	return errResult(eddy.CodeInvalid, "unknown link command "+op)
}

// linkProgress applies compare-and-set updates, all or none: a runner
// that lost the partition's leadership (its Expect is stale) is refused
// and reloads.
func (st *State) linkProgress(l *LinkMeta, ups []LinkProgress) Result {
	live := map[uint64]bool{}
	for _, t := range st.Topics {
		if t.Tenant == l.Tenant {
			for _, s := range t.Shards {
				live[s] = true
			}
		}
	}
	for _, u := range ups {
		if !live[u.Shard] {
			return errResult(eddy.CodeNotFound, fmt.Sprintf("link %s: shard %d is no partition of tenant %s", l.Name, u.Shard, l.Tenant))
		}
		cur := l.Partitions[u.Shard]
		if u.StatusOnly {
			if cur == nil {
				return errResult(eddy.CodeConflict, fmt.Sprintf("link %s: no progress for shard %d yet", l.Name, u.Shard))
			}
			continue
		}
		switch {
		case cur == nil && u.Expect != nil, cur != nil && (u.Expect == nil || !cur.sameDurable(u.Expect)):
			return errResult(eddy.CodeConflict, fmt.Sprintf("link %s: progress of shard %d changed underneath (another node runs it)", l.Name, u.Shard))
		}
		n := u.Next
		if n.InFlight < n.Sent || n.Sent < 0 || (cur != nil && n.Sent < cur.Sent && n.ProducerID == cur.ProducerID) {
			return errResult(eddy.CodeInvalid, fmt.Sprintf("link %s: shard %d: progress cannot go back", l.Name, u.Shard))
		}
	}
	cp := *l
	cp.Partitions = make(map[uint64]*LinkPartition, len(l.Partitions)+len(ups))
	for s, p := range l.Partitions {
		if live[s] {
			cp.Partitions[s] = p
		}
	}
	for _, u := range ups {
		n := u.Next
		if u.StatusOnly {
			d := *cp.Partitions[u.Shard]
			d.Node, d.State, d.Error, d.End, d.BacklogBytes, d.OldestMs, d.UpdatedMs = n.Node, n.State, n.Error, n.End, n.BacklogBytes, n.OldestMs, n.UpdatedMs
			n = d
		}
		cp.Partitions[u.Shard] = &n
	}
	st.Links[LinkKey(l.Tenant, l.Name)] = &cp
	return Result{Link: cp.Redacted()}
}

// LinksOf lists a tenant's links, by name.
func (st *State) LinksOf(t eddy.TenantID) []*LinkMeta {
	var out []*LinkMeta
	for _, l := range st.Links {
		if l.Tenant == t {
			out = append(out, l)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// LinkHold is the lowest offset of a partition some link has not sent
// (-1: no link holds it back): retention keeps it, up to the link's caps,
// which the link enforces by dropping what is past them.
func (st *State) LinkHold(shard uint64) int64 {
	hold := int64(-1)
	for _, l := range st.Links {
		if p, ok := l.Partitions[shard]; ok && (hold < 0 || p.Sent < hold) {
			hold = p.Sent
		}
	}
	return hold
}
