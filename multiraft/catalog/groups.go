package catalog

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/eddy-broker/eddy"
)

// Consumer groups live in the controller: membership, the generation,
// assignments and committed offsets. Any node serves any member, and
// commits survive node failures. Heartbeats are proposed at most every
// third of a member's session timeout; the controller leader expires
// members whose last heartbeat is older than their timeout.

// GroupMeta is a consumer group of a tenant.
type GroupMeta struct {
	Tenant     eddy.TenantID          `json:"tenant"`
	Name       string                 `json:"name"`
	Generation int64                  `json:"generation"`
	Members    map[string]*MemberMeta `json:"members"`
	// Assignments are each member's partitions in this generation.
	Assignments map[string][]TopicPartition `json:"assignments"`
	// Offsets are committed offsets, by "topic/partition": the next
	// record to deliver.
	Offsets map[string]int64 `json:"offsets"`
	// OffsetMetadata is a Kafka commit's metadata string, by the same key
	// (absent when empty; any commit without one clears it).
	OffsetMetadata map[string]string `json:"offset_metadata,omitempty"`
	// Kafka is set for a group coordinated over the Kafka protocol: its
	// members and assignments are then what its coordinator last
	// completed (OpKafkaGroup), and its members are not expired here (the
	// coordinator does). Offsets are shared: an empty group may change
	// between HTTP and Kafka and keep them.
	Kafka *KafkaGroup `json:"kafka,omitempty"`
	// MQTT is set for an MQTT device's persistent session: the group
	// (named mqtt.<client id>) keeps its positions as offsets.
	MQTT *MQTTSession `json:"mqtt,omitempty"`
}

// MQTTSession is what an MQTT persistent session keeps besides its
// positions: the filters it subscribed to, and when it expires: ExpirySec
// after its device went (GoneMs; 0 while connected). ExpirySec 0 never
// expires.
type MQTTSession struct {
	Filters   []MQTTFilter `json:"filters"`
	ExpirySec int64        `json:"expiry_sec,omitempty"`
	GoneMs    int64        `json:"gone_ms,omitempty"`
}

// Due reports whether the session has expired at nowMs.
func (s *MQTTSession) Due(nowMs int64) bool {
	return s.GoneMs > 0 && s.ExpirySec > 0 && nowMs >= s.GoneMs+s.ExpirySec*1000
}

// MQTTFilter is one subscription of a session.
type MQTTFilter struct {
	Filter string `json:"filter"`
	QoS    byte   `json:"qos"`
	// MQTT 5 subscription options (FeatureSubscriptionOptions): the
	// subscription identifier, no local, retain as published.
	ID                int  `json:"id,omitempty"`
	NoLocal           bool `json:"no_local,omitempty"`
	RetainAsPublished bool `json:"retain_as_published,omitempty"`
}

// KafkaGroup is what a Kafka group adds: its protocol type ("consumer"),
// the assignor its members chose, and its leader.
type KafkaGroup struct {
	ProtocolType string `json:"protocol_type"`
	Protocol     string `json:"protocol,omitempty"`
	Leader       string `json:"leader,omitempty"`
}

// MemberMeta is a member of a group.
type MemberMeta struct {
	ID               string   `json:"id"`
	Topics           []string `json:"topics"`
	SessionTimeoutMs int64    `json:"session_timeout_ms"`
	LastSeenMs       int64    `json:"last_seen_ms"`
	JoinedMs         int64    `json:"joined_ms"`
	// FromEarliest: a partition without a committed offset starts at its
	// log start (else at its end, as Kafka's auto.offset.reset=latest).
	FromEarliest bool `json:"from_earliest,omitempty"`

	// A Kafka member's static id (group.instance.id), rebalance timeout
	// and the assignment its leader gave it, as sent: what a coordinator
	// that takes over needs to serve the generation on, unchanged.
	InstanceID         string `json:"instance_id,omitempty"`
	RebalanceTimeoutMs int64  `json:"rebalance_timeout_ms,omitempty"`
	Assignment         []byte `json:"assignment,omitempty"`
}

// TopicPartition names a partition of a topic of the group's tenant.
type TopicPartition struct {
	Topic     string         `json:"topic"`
	Partition eddy.Partition `json:"partition"`
}

// Key is "topic/partition", as committed offsets are keyed.
func (tp TopicPartition) Key() string { return tp.Topic + "/" + strconv.Itoa(int(tp.Partition)) }

// Group limits.
const (
	MaxGroupMembers       = 256
	MinSessionTimeoutMs   = 1_000
	MaxSessionTimeoutMs   = 300_000
	DefaultSessionTimeout = 30_000
)

// ValidateGroupName: 1 to 128 of A-Z a-z 0-9 . _ -.
func ValidateGroupName(name string) error {
	if len(name) < 1 || len(name) > 128 {
		return eddy.Errorf(eddy.CodeInvalid, "group name must be 1 to 128 characters")
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return eddy.Errorf(eddy.CodeInvalid, "group name %q: only A-Z, a-z, 0-9, '.', '_' and '-' are allowed", name)
		}
	}
	return nil
}

func GroupKey(t eddy.TenantID, name string) string { return string(t) + "/" + name }

// clone copies a group for copy-on-write (readers keep their copy).
func (g *GroupMeta) Clone() *GroupMeta {
	c := *g
	c.Members = make(map[string]*MemberMeta, len(g.Members))
	for id, m := range g.Members {
		mc := *m
		c.Members[id] = &mc
	}
	c.Assignments = make(map[string][]TopicPartition, len(g.Assignments))
	for id, a := range g.Assignments {
		c.Assignments[id] = a
	}
	c.Offsets = maps.Clone(g.Offsets)
	if c.Offsets == nil {
		c.Offsets = map[string]int64{}
	}
	c.OffsetMetadata = maps.Clone(g.OffsetMetadata)
	if g.Kafka != nil {
		k := *g.Kafka
		c.Kafka = &k
	}
	if g.MQTT != nil {
		m := *g.MQTT
		m.Filters = slices.Clone(m.Filters)
		c.MQTT = &m
	}
	return &c
}

// Topics are the topics the group reads or holds committed offsets for.
func (g *GroupMeta) Topics() []string {
	seen := map[string]bool{}
	for _, m := range g.Members {
		for _, t := range m.Topics {
			seen[t] = true
		}
	}
	for k := range g.Offsets {
		if i := strings.LastIndexByte(k, '/'); i > 0 {
			seen[k[:i]] = true
		}
	}
	return slices.Collect(maps.Keys(seen))
}

// commit sets committed offsets and their metadata (of a Kafka commit;
// nil otherwise) in a group being built.
func (g *GroupMeta) commit(offsets map[string]int64, metadata map[string]string) {
	for k, v := range offsets {
		g.Offsets[k] = v
		if m := metadata[k]; m != "" {
			if g.OffsetMetadata == nil {
				g.OffsetMetadata = map[string]string{}
			}
			g.OffsetMetadata[k] = m
		} else {
			delete(g.OffsetMetadata, k)
		}
	}
}

// rebalance starts a new generation and assigns every partition of the
// members' topics to exactly one member subscribed to it: balanced (counts
// differ by at most one among the members of a topic where possible), and
// sticky (a partition stays with its owner while that keeps the balance).
func (st *State) rebalance(g *GroupMeta) {
	g.Generation++
	old := g.Assignments
	g.Assignments = map[string][]TopicPartition{}
	ids := make([]string, 0, len(g.Members))
	for id := range g.Members {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	owner := map[string]string{}
	for id, tps := range old {
		if _, ok := g.Members[id]; ok {
			for _, tp := range tps {
				owner[tp.Key()] = id
			}
		}
	}
	// Topics, each with its subscribed members.
	subs := map[string][]string{}
	for _, id := range ids {
		for _, t := range g.Members[id].Topics {
			subs[t] = append(subs[t], id)
		}
	}
	topics := make([]string, 0, len(subs))
	for t := range subs {
		topics = append(topics, t)
	}
	sort.Strings(topics)
	load := map[string]int{}
	for _, t := range topics {
		meta, ok := st.Topics[string(g.Tenant)+"/"+t]
		if !ok {
			continue // deleted or not created yet: nothing to assign
		}
		members := subs[t]
		n := int(meta.Partitions)
		// Balanced: every member gets base partitions of the topic and
		// extra of them one more. A member keeps what it had (sticky) up to
		// that: with 4 partitions and a third member joining two that hold
		// 2 each, one gives one up (2, 1, 1), rather than the newcomer
		// getting nothing until someone leaves.
		base, extra := n/len(members), n%len(members)
		per := map[string]int{}
		keeps := func(o string) bool {
			switch {
			case per[o] < base:
				return true
			case per[o] == base && extra > 0:
				extra--
				return true
			}
			return false
		}
		var free []eddy.Partition
		for p := 0; p < n; p++ {
			tp := TopicPartition{Topic: t, Partition: eddy.Partition(p)}
			if o, ok := owner[tp.Key()]; ok && contains(members, o) && keeps(o) {
				g.Assignments[o] = append(g.Assignments[o], tp)
				per[o]++
				load[o]++
				continue
			}
			free = append(free, tp.Partition)
		}
		for _, p := range free {
			best := ""
			for _, id := range members {
				if best == "" || per[id] < per[best] || (per[id] == per[best] && load[id] < load[best]) {
					best = id
				}
			}
			g.Assignments[best] = append(g.Assignments[best], TopicPartition{Topic: t, Partition: p})
			per[best]++
			load[best]++
		}
	}
	for id := range g.Assignments {
		tps := g.Assignments[id]
		sort.Slice(tps, func(i, j int) bool {
			if tps[i].Topic != tps[j].Topic {
				return tps[i].Topic < tps[j].Topic
			}
			return tps[i].Partition < tps[j].Partition
		})
	}
}

func contains(s []string, x string) bool {
	for _, v := range s {
		if v == x {
			return true
		}
	}
	return false
}

// GroupCmd is the group part of a controller command.
type GroupCmd struct {
	Tenant     eddy.TenantID     `json:"tenant"`
	Group      string            `json:"group"`
	Member     *MemberMeta       `json:"member,omitempty"`
	MemberID   string            `json:"member_id,omitempty"`
	Generation int64             `json:"generation,omitempty"`
	Offsets    map[string]int64  `json:"offsets,omitempty"`
	Metadata   map[string]string `json:"metadata,omitempty"` // of a Kafka commit, by the offsets' keys
	NowMs      int64             `json:"now_ms,omitempty"`
	Reset      bool              `json:"reset,omitempty"` // offsets replace all (reset-offsets)
	Drop       []string          `json:"drop,omitempty"`  // keys of the offsets OpDeleteOffsets deletes
	// Kafka: a commit or a view of a group its Kafka coordinator checked
	// (member and generation); View is the group after a rebalance.
	Kafka bool       `json:"kafka,omitempty"`
	View  *GroupMeta `json:"view,omitempty"`
	// Session: an MQTT persistent session's filters (OpMQTTSession; nil
	// drops the session: with NowMs, only if it is due to expire then).
	// SessionOnly: a commit of one's positions, with (Session set) its
	// expiry and presence.
	Session     *MQTTSession `json:"session,omitempty"`
	SessionOnly bool         `json:"session_only,omitempty"`
}

// MaxGroupsDefault and MaxMQTTSessionsDefault bound a tenant's groups
// and MQTT persistent sessions when its quota says unlimited: every node
// holds every one.
const (
	MaxGroupsDefault       = 4096
	MaxMQTTSessionsDefault = 65536
)

// NewSessionAllowed refuses tenant t's next MQTT persistent session over
// its max_mqtt_sessions (nil: it may make one).
func (st *State) NewSessionAllowed(t eddy.TenantID) error {
	if r := st.newGroupAllowed(t, true); r != nil {
		return eddy.Errorf(r.Err.Code, "%s", r.Err.Message)
	}
	return nil
}

// newGroupAllowed refuses a tenant's next group over its max_groups, or
// (session: an MQTT persistent session) its max_mqtt_sessions. Each counts
// its own kind.
func (st *State) newGroupAllowed(t eddy.TenantID, session bool) *Result {
	limit, quota, what := int64(MaxGroupsDefault), int64(0), "consumer groups; delete groups it no longer uses"
	tm, ok := st.Tenants[t]
	if ok {
		quota = tm.Quotas.MaxGroups
	}
	if session {
		limit, what = MaxMQTTSessionsDefault, "MQTT persistent sessions; a session ends when its device connects with a clean start, or its expiry passes"
		if ok {
			quota = tm.Quotas.MaxMQTTSessions
		}
	}
	if quota > 0 {
		limit = quota
	}
	var n int64
	for _, g := range st.Groups {
		if g.Tenant == t && (g.MQTT != nil) == session {
			n++
		}
	}
	if n >= limit {
		r := errResult(eddy.CodeLimitExceeded, fmt.Sprintf("tenant %s is at its limit of %d %s", t, limit, what))
		return &r
	}
	return nil
}

// httpMembers reports whether g has members joined over HTTP.
func (g *GroupMeta) httpMembers() bool { return g != nil && g.Kafka == nil && len(g.Members) > 0 }

// kafkaMembers reports whether g has members joined over Kafka.
func (g *GroupMeta) kafkaMembers() bool { return g != nil && g.Kafka != nil && len(g.Members) > 0 }

func (st *State) applyGroup(op string, c *GroupCmd) Result {
	if c == nil {
		return errResult(eddy.CodeInvalid, "group: missing command")
	}
	if st.Groups == nil {
		st.Groups = map[string]*GroupMeta{}
	}
	key := GroupKey(c.Tenant, c.Group)
	cur := st.Groups[key]
	session := op == OpMQTTSession && c.Session != nil
	creates := op == OpJoinGroup || op == OpKafkaGroup || (op == OpCommitOffsets && !c.SessionOnly) || session
	if cur == nil && creates {
		if r := st.newGroupAllowed(c.Tenant, session); r != nil {
			return *r
		}
	}
	switch op {
	case OpJoinGroup:
		if _, ok := st.Tenants[c.Tenant]; !ok {
			return errResult(eddy.CodeNotFound, "tenant "+string(c.Tenant)+" does not exist")
		}
		for _, t := range c.Member.Topics {
			if _, ok := st.Topics[string(c.Tenant)+"/"+t]; !ok {
				return errResult(eddy.CodeNotFound, "topic "+t+" does not exist")
			}
		}
		if cur != nil && cur.MQTT != nil {
			return errResult(eddy.CodeConflict, "group "+c.Group+" is an MQTT device's session")
		}
		if cur.kafkaMembers() {
			return errResult(eddy.CodeConflict, "group "+c.Group+" has members over the Kafka protocol; an HTTP member may join once it is empty")
		}
		g := &GroupMeta{Tenant: c.Tenant, Name: c.Group, Members: map[string]*MemberMeta{}, Assignments: map[string][]TopicPartition{}, Offsets: map[string]int64{}}
		if cur != nil {
			g = cur.Clone()
			g.Kafka = nil
		}
		if len(g.Members) >= MaxGroupMembers {
			return errResult(eddy.CodeLimitExceeded, fmt.Sprintf("group %s has %d members, the most it may", c.Group, MaxGroupMembers))
		}
		m := *c.Member
		g.Members[m.ID] = &m
		st.rebalance(g)
		st.Groups[key] = g
		return Result{Group: g}
	case OpLeaveGroup, OpExpireMember:
		if cur == nil || cur.Members[c.MemberID] == nil {
			return errResult(eddy.CodeUnknownMember, "member "+c.MemberID+" is not in group "+c.Group)
		}
		if op == OpExpireMember && cur.Members[c.MemberID].LastSeenMs+cur.Members[c.MemberID].SessionTimeoutMs > c.NowMs {
			return errResult(eddy.CodeConflict, "member "+c.MemberID+" was seen since")
		}
		g := cur.Clone()
		delete(g.Members, c.MemberID)
		st.rebalance(g)
		st.Groups[key] = g
		return Result{Group: g}
	case OpHeartbeat:
		if cur == nil || cur.Members[c.MemberID] == nil {
			return errResult(eddy.CodeUnknownMember, "member "+c.MemberID+" is not in group "+c.Group+" (it left or its session expired): join again")
		}
		g := cur.Clone()
		g.Members[c.MemberID].LastSeenMs = max(g.Members[c.MemberID].LastSeenMs, c.NowMs)
		st.Groups[key] = g
		return Result{Group: g}
	case OpKafkaGroup:
		if cur != nil && cur.MQTT != nil {
			return errResult(eddy.CodeConflict, "group "+c.Group+" is an MQTT device's session")
		}
		if cur.httpMembers() {
			return errResult(eddy.CodeConflict, "group "+c.Group+" has members over HTTP; a Kafka member may join once it is empty")
		}
		if c.View == nil || c.View.Kafka == nil {
			return errResult(eddy.CodeInvalid, "kafka group: missing view")
		}
		if cur != nil && c.View.Generation < cur.Generation {
			// A coordinator that lost the group records late: the
			// newer generation stands.
			return Result{Group: cur}
		}
		g := c.View.Clone()
		g.Tenant, g.Name, g.Offsets = c.Tenant, c.Group, map[string]int64{}
		if cur != nil {
			kept := cur.Clone()
			g.Offsets, g.OffsetMetadata = kept.Offsets, kept.OffsetMetadata
		}
		st.Groups[key] = g
		return Result{Group: g}
	case OpCommitOffsets:
		if c.SessionOnly {
			if cur == nil || cur.MQTT == nil {
				return errResult(eddy.CodeNotFound, "MQTT session "+c.Group+" does not exist")
			}
			g := cur.Clone()
			g.commit(c.Offsets, nil)
			if c.Session != nil {
				g.MQTT.ExpirySec, g.MQTT.GoneMs = c.Session.ExpirySec, c.Session.GoneMs
			}
			st.Groups[key] = g
			return Result{Group: g}
		}
		if c.Kafka {
			if cur.httpMembers() {
				return errResult(eddy.CodeConflict, "group "+c.Group+" has members over HTTP")
			}
			g := &GroupMeta{Tenant: c.Tenant, Name: c.Group, Members: map[string]*MemberMeta{}, Assignments: map[string][]TopicPartition{},
				Offsets: map[string]int64{}, Kafka: &KafkaGroup{ProtocolType: "consumer"}}
			if cur != nil {
				g = cur.Clone()
				if g.Kafka == nil {
					g.Kafka = &KafkaGroup{ProtocolType: "consumer"}
				}
			}
			g.commit(c.Offsets, c.Metadata)
			st.Groups[key] = g
			return Result{Group: g}
		}
		if c.Reset {
			if cur != nil && len(cur.Members) > 0 {
				return errResult(eddy.CodeConflict, fmt.Sprintf("group %s has %d members; offsets can be reset only when it is empty", c.Group, len(cur.Members)))
			}
			g := &GroupMeta{Tenant: c.Tenant, Name: c.Group, Members: map[string]*MemberMeta{}, Assignments: map[string][]TopicPartition{}, Offsets: map[string]int64{}}
			if cur != nil {
				g = cur.Clone()
			}
			g.commit(c.Offsets, nil)
			st.Groups[key] = g
			return Result{Group: g}
		}
		if cur == nil || cur.Members[c.MemberID] == nil {
			return errResult(eddy.CodeUnknownMember, "member "+c.MemberID+" is not in group "+c.Group+" (it left or its session expired): join again")
		}
		if c.Generation != cur.Generation {
			return errResult(eddy.CodeStaleGeneration, fmt.Sprintf("generation %d is stale: group %s is at generation %d; fetch to learn the new assignment, then commit again", c.Generation, c.Group, cur.Generation))
		}
		owned := map[string]bool{}
		for _, tp := range cur.Assignments[c.MemberID] {
			owned[tp.Key()] = true
		}
		for k := range c.Offsets {
			if !owned[k] {
				return errResult(eddy.CodeStaleGeneration, "partition "+k+" is not assigned to member "+c.MemberID+" in generation "+strconv.FormatInt(cur.Generation, 10))
			}
		}
		g := cur.Clone()
		g.commit(c.Offsets, nil)
		g.Members[c.MemberID].LastSeenMs = max(g.Members[c.MemberID].LastSeenMs, c.NowMs)
		st.Groups[key] = g
		return Result{Group: g}
	case OpMQTTSession:
		if cur != nil && cur.MQTT == nil {
			return errResult(eddy.CodeConflict, "group "+c.Group+" is not an MQTT session")
		}
		if c.Session == nil {
			if c.NowMs > 0 && (cur == nil || !cur.MQTT.Due(c.NowMs)) {
				return errResult(eddy.CodeConflict, "MQTT session "+c.Group+" is not due to expire")
			}
			delete(st.Groups, key) // a clean start, every filter gone, or expired
			return Result{}
		}
		g := &GroupMeta{Tenant: c.Tenant, Name: c.Group, Members: map[string]*MemberMeta{}, Assignments: map[string][]TopicPartition{}, Offsets: map[string]int64{}}
		if cur != nil {
			g = cur.Clone()
		}
		m := MQTTSession{Filters: slices.Clone(c.Session.Filters), ExpirySec: c.Session.ExpirySec}
		if g.MQTT != nil {
			m.GoneMs = g.MQTT.GoneMs
			if m.ExpirySec == 0 {
				m.ExpirySec = g.MQTT.ExpirySec
			}
		}
		g.MQTT = &m
		for k, v := range c.Offsets { // where a new subscription starts; positions held stay
			if _, held := g.Offsets[k]; !held {
				g.Offsets[k] = v
			}
		}
		st.Groups[key] = g
		return Result{Group: g}
	case OpDeleteGroup:
		if cur == nil {
			return errResult(eddy.CodeNotFound, "group "+c.Group+" does not exist")
		}
		if len(cur.Members) > 0 {
			return errResult(eddy.CodeConflict, "group "+c.Group+" has members")
		}
		delete(st.Groups, key)
		return Result{}
	case OpDeleteOffsets:
		return st.deleteOffsets(key, cur, c)
	}
	return errResult(eddy.CodeInvalid, "controller: unknown op "+op)
}

// deleteOffsets deletes the committed offsets c.Drop names, as Kafka's
// OffsetDelete does: none of a topic a member subscribes to or is
// assigned (its consumer would start over at its reset policy), none of
// an MQTT session (its positions go with its subscriptions), and none of
// a group with members whose subscriptions the catalog does not know (a
// Kafka group of another protocol type). A group left with neither
// members nor offsets is gone, as an empty Kafka group without offsets
// is: it no longer counts against the tenant's groups.
func (st *State) deleteOffsets(key string, cur *GroupMeta, c *GroupCmd) Result {
	switch {
	case cur == nil:
		return errResult(eddy.CodeNotFound, "group "+c.Group+" does not exist")
	case cur.MQTT != nil:
		return errResult(eddy.CodeConflict, "group "+c.Group+" is an MQTT device's session: its positions go with its subscriptions")
	case cur.Kafka != nil && cur.Kafka.ProtocolType != "consumer" && len(cur.Members) > 0:
		return errResult(eddy.CodeConflict, "group "+c.Group+" has members (protocol type "+cur.Kafka.ProtocolType+")")
	}
	for _, k := range c.Drop {
		if t := topicOfKey(k); cur.subscribes(t) {
			return errResult(eddy.CodeConflict, "group "+c.Group+" has members subscribed to topic "+t+"; its offsets can be deleted once none is")
		}
	}
	g := cur.Clone()
	for _, k := range c.Drop {
		delete(g.Offsets, k)
		delete(g.OffsetMetadata, k)
	}
	if len(g.Members) == 0 && len(g.Offsets) == 0 {
		delete(st.Groups, key)
		return Result{}
	}
	st.Groups[key] = g
	return Result{Group: g}
}

// subscribes reports whether a member of g subscribes to topic t or is
// assigned one of its partitions.
func (g *GroupMeta) subscribes(t string) bool {
	for id, m := range g.Members {
		if slices.Contains(m.Topics, t) || slices.ContainsFunc(g.Assignments[id], func(tp TopicPartition) bool { return tp.Topic == t }) {
			return true
		}
	}
	return false
}

// topicOfKey is the topic of an offset's key, "topic/partition".
func topicOfKey(k string) string {
	if i := strings.LastIndexByte(k, '/'); i >= 0 {
		return k[:i]
	}
	return k
}
