package kafka

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/eddy-broker/eddy"
	"github.com/eddy-broker/eddy/internal/logkey"
	"github.com/eddy-broker/eddy/multiraft/catalog"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Consumer groups, the classic protocol: this node coordinates the groups
// when it leads the controller (FindCoordinator names it; the other
// nodes answer NOT_COORDINATOR). The join barrier, the sync, heartbeats
// and session timers live in memory here, as in Kafka, so a heartbeat is
// not a Raft entry. What must survive is written to the catalog: each
// completed rebalance (generation, members, assignments decoded from the
// leader's assignment, so `eddy group describe` shows them with their
// lag) and every offset commit. Committed offsets are the HTTP groups'
// own: an empty group may change protocol and keep them.
//
// A generation's assignment is recorded before any member learns it (the
// leader's SyncGroup waits for the write), so a coordinator that takes
// over serves the recorded generation on: members keep their ids,
// generation and assignments, their sessions start over, and a failover
// does not rebalance. A node that stops coordinating drops what it held.

// Group states, as DescribeGroups and ListGroups name them.
const (
	stateEmpty       = "Empty"
	statePreparing   = "PreparingRebalance"
	stateCompleting  = "CompletingRebalance"
	stateStable      = "Stable"
	stateDead        = "Dead"
	maxGroupMembers  = catalog.MaxGroupMembers
	consumerProtocol = "consumer"
)

// More Kafka error codes of the group APIs.
const (
	errCoordinatorLoadInProgress int16 = 14
	errInconsistentGroupProtocol int16 = 23
	errInvalidGroupID            int16 = 24
	errInvalidSessionTimeout     int16 = 26
	errRebalanceInProgress       int16 = 27
	errNonEmptyGroup             int16 = 68
	errGroupIDNotFound           int16 = 69
	errGroupMaxSizeReached       int16 = 81
	errMemberIDRequired          int16 = 79
)

// What a tenant's groups hold in the coordinator's memory is bounded
// (fixed): a member's protocol metadata, and the assignment its leader
// gives it, each at most maxMemberBytes (copied out of the request: the
// decoded request points into its frame, which a member kept whole for
// its session); a group's members and joins in progress at most
// maxGroupMembers; a tenant's, over all its groups, at most
// maxTenantMembers. A join past a bound is GROUP_MAX_SIZE_REACHED.
const (
	maxMemberBytes   = 32 << 10
	maxTenantMembers = 1024
)

type coordinator struct {
	l      *Listener
	mu     sync.Mutex
	groups map[string]*group // by "tenant/name"
	// held counts each tenant's members and joins in progress, as last
	// accounted for each group (account).
	held map[eddy.TenantID]int
	// repeats keeps the lines a tenant's clients cause (a rebalance, an
	// expiry) to one of a kind per tenant a window: a client joining and
	// leaving in a loop, across its tenant's groups, logged a line each
	// time.
	repeats *logkey.Repeats
}

// logTenant logs a line a tenant's clients caused, as repeats admits it.
func (co *coordinator) logTenant(level slog.Level, t eddy.TenantID, msg string, attrs ...any) {
	co.repeats.Log(co.l.log, level, msg+"|"+string(t), msg, append([]any{logkey.Tenant, t}, attrs...)...)
}

type group struct {
	tenant       eddy.TenantID
	name         string
	state        string
	generation   int32
	protocolType string
	protocol     string
	leader       string
	members      map[string]*member
	pending      map[string]time.Time // ids handed out (MEMBER_ID_REQUIRED), until they join
	static       map[string]string    // group.instance.id → member id (static members)
	joinTimer    *time.Timer
	initialDelay bool // the first rebalance of an empty group waits for more members
	held         int  // members and pending, as counted in coordinator.held

	// Records of the group reach the catalog in the order they were
	// taken: a write that finds a later one done is skipped.
	persistSeq uint64 // under coordinator.mu
	persistMu  sync.Mutex
	persisted  uint64 // under persistMu
	persists   sync.WaitGroup
}

type member struct {
	id, clientID, clientHost string
	instanceID               *string
	protocols                []kmsg.JoinGroupRequestProtocol
	session, rebalance       time.Duration
	lastSeen                 time.Time
	assignment               []byte
	join                     chan *kmsg.JoinGroupResponse // set while its JoinGroup waits
	sync                     chan *kmsg.SyncGroupResponse // set while its SyncGroup waits
}

// fail answers the member's waiting join and sync, if any, with code
// (under co.mu).
func (m *member) fail(code int16) {
	if m.join != nil {
		r := kmsg.NewPtrJoinGroupResponse()
		r.ErrorCode, r.MemberID, r.Generation = code, m.id, -1
		m.join <- r
		m.join = nil
	}
	if m.sync != nil {
		r := kmsg.NewPtrSyncGroupResponse()
		r.ErrorCode = code
		m.sync <- r
		m.sync = nil
	}
}

func newCoordinator(l *Listener) *coordinator {
	c := &coordinator{l: l, groups: map[string]*group{}, held: map[eddy.TenantID]int{}, repeats: logkey.NewRepeats(30 * time.Second)}
	l.wg.Add(1)
	go c.expire()
	return c
}

// account brings g's tenant's count of members and joins in progress up
// to date with g (under co.mu). The join that would add one accounts
// first, and the expiry loop accounts every group each tick.
func (co *coordinator) account(g *group) {
	n := len(g.members) + len(g.pending)
	co.held[g.tenant] += n - g.held
	g.held = n
	if co.held[g.tenant] <= 0 {
		delete(co.held, g.tenant)
	}
}

// forget takes a group that leaves this coordinator off its tenant's
// count (under co.mu).
func (co *coordinator) forget(g *group) {
	co.held[g.tenant] -= g.held
	g.held = 0
	if co.held[g.tenant] <= 0 {
		delete(co.held, g.tenant)
	}
}

// roomFor reports whether g, and its tenant, may hold one more member or
// join in progress, and if so counts the one the caller then adds (under
// co.mu).
func (co *coordinator) roomFor(g *group) bool {
	co.account(g)
	if len(g.members)+len(g.pending) >= maxGroupMembers || co.held[g.tenant] >= maxTenantMembers {
		return false
	}
	g.held++
	co.held[g.tenant]++
	return true
}

// ownProtocols copies a JoinGroup's protocols out of its request frame,
// or reports false when their metadata is over maxMemberBytes.
func ownProtocols(ps []kmsg.JoinGroupRequestProtocol) ([]kmsg.JoinGroupRequestProtocol, bool) {
	n := 0
	for _, p := range ps {
		n += len(p.Name) + len(p.Metadata)
	}
	if n > maxMemberBytes {
		return nil, false
	}
	out := slices.Clone(ps)
	for i := range out {
		out[i].Metadata = bytes.Clone(out[i].Metadata)
	}
	return out, true
}

// member finds a member of a group this coordinator holds (under co.mu);
// either may be nil.
func (co *coordinator) member(t eddy.TenantID, group, id string) (*group, *member) {
	g := co.lookup(t, group)
	if g == nil {
		return nil, nil
	}
	return g, g.members[id]
}

// coordinatorNode is the node coordinating every group: the controller's
// leader (this node while none is known).
func (l *Listener) coordinatorNode() uint64 {
	if n := l.b.ControllerLeader(); n != 0 {
		return n
	}
	return l.b.NodeID()
}

// coordinates reports whether this node coordinates groups now.
func (l *Listener) coordinates() bool { return l.coordinatorNode() == l.b.NodeID() }

// get returns the group, creating it when neither this coordinator nor
// the catalog knows it.
func (co *coordinator) get(t eddy.TenantID, name string) *group {
	if g := co.lookup(t, name); g != nil {
		return g
	}
	g := newGroup(t, name)
	if cg, err := co.l.b.Group(t, name); err == nil {
		g.generation = int32(cg.Generation) // an empty group's next generation is above it
	}
	co.groups[catalog.GroupKey(t, name)] = g
	return g
}

// lookup returns the group this coordinator holds or, after a failover,
// the generation the catalog recorded with members; nil if neither.
func (co *coordinator) lookup(t eddy.TenantID, name string) *group {
	key := catalog.GroupKey(t, name)
	if g := co.groups[key]; g != nil {
		return g
	}
	cg, err := co.l.b.Group(t, name)
	if err != nil || cg.Kafka == nil || len(cg.Members) == 0 {
		return nil
	}
	g := newGroup(t, name)
	g.restore(cg, time.Now())
	co.groups[key] = g
	co.logTenant(slog.LevelInfo, t, "kafka group taken over", logkey.Group, name, "generation", g.generation, "members", len(g.members))
	return g
}

func newGroup(t eddy.TenantID, name string) *group {
	return &group{tenant: t, name: name, state: stateEmpty, members: map[string]*member{},
		pending: map[string]time.Time{}, static: map[string]string{}}
}

// restore takes up a recorded generation: Stable, with its members'
// assignments; each member's session starts now. Their subscriptions
// stand in for the join metadata until they join again.
func (g *group) restore(cg *catalog.GroupMeta, now time.Time) {
	g.generation, g.state = int32(cg.Generation), stateStable
	g.protocolType, g.protocol, g.leader = cg.Kafka.ProtocolType, cg.Kafka.Protocol, cg.Kafka.Leader
	for id, mm := range cg.Members {
		m := &member{id: id, lastSeen: now, assignment: mm.Assignment,
			session:   time.Duration(mm.SessionTimeoutMs) * time.Millisecond,
			rebalance: time.Duration(max(mm.RebalanceTimeoutMs, mm.SessionTimeoutMs)) * time.Millisecond}
		proto := kmsg.NewJoinGroupRequestProtocol()
		proto.Name = g.protocol
		if g.protocolType == consumerProtocol {
			meta := kmsg.NewConsumerMemberMetadata()
			meta.Topics = mm.Topics
			proto.Metadata = meta.AppendTo(nil)
		}
		m.protocols = []kmsg.JoinGroupRequestProtocol{proto}
		if len(m.assignment) == 0 {
			m.assignment = emptyAssignment(g.protocolType)
		}
		if mm.InstanceID != "" {
			inst := mm.InstanceID
			m.instanceID = &inst
			g.static[inst] = id
		}
		g.members[id] = m
	}
}

func newMemberID(clientID string) string {
	var b [8]byte
	rand.Read(b[:])
	if clientID == "" {
		clientID = "member"
	}
	return clientID + "-" + hex.EncodeToString(b[:])
}

// supports reports whether every member supports the protocol.
func (g *group) supports(name string) bool {
	for _, m := range g.members {
		if !slices.ContainsFunc(m.protocols, func(p kmsg.JoinGroupRequestProtocol) bool { return p.Name == name }) {
			return false
		}
	}
	return true
}

// prepareRebalance starts a rebalance (under co.mu): waiting syncs are
// told to join again; the join completes when every member has rejoined,
// or at the deadline, without those that did not.
func (co *coordinator) prepareRebalance(g *group, reason string) {
	if g.state != stateEmpty {
		co.l.cfg.Metrics.GetOrCreateCounter(`eddy_kafka_group_rebalances_total{tenant="` + string(g.tenant) + `"}`).Inc()
		co.logTenant(slog.LevelInfo, g.tenant, "kafka group rebalancing", logkey.Group, g.name, "generation", g.generation, "state", g.state, "reason", reason)
	}
	for _, m := range g.members {
		if m.sync != nil {
			r := kmsg.NewPtrSyncGroupResponse()
			r.ErrorCode = errRebalanceInProgress
			m.sync <- r
			m.sync = nil
		}
	}
	wait := time.Duration(0)
	for _, m := range g.members {
		wait = max(wait, m.rebalance)
	}
	if g.state == stateEmpty {
		g.initialDelay = true
		wait = min(wait, co.l.cfg.GroupInitialRebalanceDelay)
	}
	g.state = statePreparing
	if g.joinTimer != nil {
		g.joinTimer.Stop()
	}
	gen := g.generation
	g.joinTimer = time.AfterFunc(wait, func() {
		co.mu.Lock()
		defer co.mu.Unlock()
		if g.state == statePreparing && g.generation == gen {
			g.initialDelay = false
			co.completeJoin(g)
		}
	})
}

// maybeCompleteJoin completes the join once every member is in it.
func (co *coordinator) maybeCompleteJoin(g *group) {
	if g.state != statePreparing || g.initialDelay {
		return
	}
	for _, m := range g.members {
		if m.join == nil {
			return
		}
	}
	co.completeJoin(g)
}

// completeJoin ends the join phase (under co.mu): members that did not
// rejoin are dropped; a new generation, protocol and leader; every joined
// member is answered, the leader with the members' metadata.
func (co *coordinator) completeJoin(g *group) {
	if g.joinTimer != nil {
		g.joinTimer.Stop()
	}
	for id, m := range g.members {
		if m.join == nil {
			delete(g.members, id)
		}
	}
	g.generation++
	if len(g.members) == 0 {
		g.state, g.protocol, g.leader = stateEmpty, "", ""
		co.persist(g)
		return
	}
	ids := slices.Sorted(maps.Keys(g.members))
	if g.members[g.leader] == nil {
		g.leader = ids[0]
	}
	g.protocol = ""
	for _, p := range g.members[g.leader].protocols {
		if g.supports(p.Name) {
			g.protocol = p.Name
			break
		}
	}
	g.state = stateCompleting
	for _, id := range ids {
		m := g.members[id]
		r := kmsg.NewPtrJoinGroupResponse()
		r.Generation, r.Protocol, r.ProtocolType = g.generation, kmsg.StringPtr(g.protocol), kmsg.StringPtr(g.protocolType)
		r.LeaderID, r.MemberID = g.leader, id
		if id == g.leader {
			r.Members = g.joinMembers()
		}
		m.lastSeen = time.Now()
		m.join <- r
		m.join = nil
	}
	// A leader that never syncs: rebalance again after its timeout.
	gen, wait := g.generation, g.members[g.leader].rebalance
	time.AfterFunc(wait, func() {
		co.mu.Lock()
		defer co.mu.Unlock()
		if g.state == stateCompleting && g.generation == gen {
			co.prepareRebalance(g, "the leader did not sync")
		}
	})
}

// joinMembers is what the leader's join answer lists: every member with
// its metadata for the group's protocol.
func (g *group) joinMembers() []kmsg.JoinGroupResponseMember {
	var out []kmsg.JoinGroupResponseMember
	for _, id := range slices.Sorted(maps.Keys(g.members)) {
		m := g.members[id]
		jm := kmsg.NewJoinGroupResponseMember()
		jm.MemberID, jm.InstanceID = id, m.instanceID
		for _, p := range m.protocols {
			if p.Name == g.protocol {
				jm.ProtocolMetadata = p.Metadata
			}
		}
		out = append(out, jm)
	}
	return out
}

// remove drops members (under co.mu) and rebalances the rest, or leaves
// the group empty.
func (co *coordinator) remove(g *group, ids ...string) {
	for _, id := range ids {
		m := g.members[id]
		if m == nil {
			continue
		}
		m.fail(errUnknownMemberID)
		if m.instanceID != nil && g.static[*m.instanceID] == id {
			delete(g.static, *m.instanceID)
		}
		delete(g.members, id)
	}
	switch {
	case len(g.members) == 0:
		if g.joinTimer != nil {
			g.joinTimer.Stop()
		}
		g.generation++
		g.state, g.protocol, g.leader = stateEmpty, "", ""
		co.persist(g)
	case g.state == statePreparing:
		co.maybeCompleteJoin(g)
	default:
		co.prepareRebalance(g, "a member left or expired")
	}
}

// expire drops members whose session passed without a heartbeat.
func (co *coordinator) expire() {
	defer co.l.wg.Done()
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-co.l.base.Done():
			return
		case now := <-t.C:
			co.mu.Lock()
			if len(co.groups) > 0 && !co.l.coordinates() {
				co.l.log.Info("kafka groups handed over: this node no longer coordinates", "groups", len(co.groups))
				co.drop()
			}
			for _, g := range co.groups {
				var gone []string
				for id, m := range g.members {
					if m.join == nil && now.Sub(m.lastSeen) > m.session {
						gone = append(gone, id)
					}
				}
				for id, at := range g.pending {
					if now.Sub(at) > time.Minute {
						delete(g.pending, id)
					}
				}
				if len(gone) > 0 {
					co.logTenant(slog.LevelInfo, g.tenant, "kafka group members expired", logkey.Group, g.name, "members", len(gone))
					co.remove(g, gone...)
				}
				co.account(g)
				if len(g.members) == 0 && len(g.pending) == 0 && g.state == stateEmpty && g.persistMu.TryLock() {
					// Memory for groups in use only: an empty one whose
					// records are all in the catalog is read from there
					// when it is next joined.
					if g.persisted >= g.persistSeq {
						delete(co.groups, catalog.GroupKey(g.tenant, g.name))
					}
					g.persistMu.Unlock()
				}
			}
			co.mu.Unlock()
		}
	}
}

// view is the group as the catalog records it (under co.mu).
func (g *group) view() *catalog.GroupMeta {
	v := &catalog.GroupMeta{Tenant: g.tenant, Name: g.name, Generation: int64(g.generation),
		Members: map[string]*catalog.MemberMeta{}, Assignments: map[string][]catalog.TopicPartition{},
		Kafka: &catalog.KafkaGroup{ProtocolType: g.protocolType, Protocol: g.protocol, Leader: g.leader}}
	for id, m := range g.members {
		mm := &catalog.MemberMeta{ID: id, SessionTimeoutMs: m.session.Milliseconds(), LastSeenMs: m.lastSeen.UnixMilli(),
			RebalanceTimeoutMs: m.rebalance.Milliseconds(), Assignment: m.assignment}
		if m.instanceID != nil {
			mm.InstanceID = *m.instanceID
		}
		if g.protocolType == consumerProtocol {
			for _, p := range m.protocols {
				var meta kmsg.ConsumerMemberMetadata
				if p.Name == g.protocol && meta.ReadFrom(p.Metadata) == nil {
					mm.Topics = meta.Topics
				}
			}
			var a kmsg.ConsumerMemberAssignment
			if a.ReadFrom(m.assignment) == nil {
				for _, t := range a.Topics {
					for _, p := range t.Partitions {
						v.Assignments[id] = append(v.Assignments[id], catalog.TopicPartition{Topic: t.Topic, Partition: eddy.Partition(p)})
					}
				}
			}
		}
		v.Members[id] = mm
	}
	return v
}

// persist records the group in the catalog (under co.mu: the view is
// taken now; the write, in the background, must not hold the lock). The
// channel gives the write's outcome.
func (co *coordinator) persist(g *group) <-chan error {
	done := make(chan error, 1)
	v := g.view()
	g.persistSeq++
	seq := g.persistSeq
	co.l.mu.Lock()
	if co.l.closing {
		co.l.mu.Unlock()
		done <- errClose
		return done
	}
	co.l.wg.Add(1)
	co.l.mu.Unlock()
	g.persists.Add(1)
	go func() {
		defer co.l.wg.Done()
		defer g.persists.Done()
		g.persistMu.Lock()
		defer g.persistMu.Unlock()
		if seq <= g.persisted {
			done <- nil // a later record of the group is in
			return
		}
		ctx, cancel := context.WithTimeout(co.l.base, co.l.cfg.RequestTimeout)
		defer cancel()
		err := co.l.b.KafkaGroup(ctx, v)
		if err != nil {
			co.logTenant(slog.LevelWarn, v.Tenant, "kafka group not recorded", logkey.Group, v.Name, logkey.Err, err)
		}
		g.persisted = seq
		done <- err
	}()
	return done
}

// record writes the group to the catalog and waits for it: co.mu is held
// on entry and on return, and released meanwhile, so the caller checks
// the group again.
func (co *coordinator) record(g *group) error {
	written := co.persist(g)
	co.mu.Unlock()
	defer co.mu.Lock()
	select {
	case err := <-written:
		return err
	case <-co.l.base.Done():
		return errClose
	}
}

// drop forgets every group (under co.mu) when this node no longer
// coordinates: the members waiting in a join or a sync are told
// NOT_COORDINATOR and find the new coordinator, which carries on from the
// catalog.
func (co *coordinator) drop() {
	for key, g := range co.groups {
		for _, m := range g.members {
			m.fail(errNotCoordinator)
		}
		if g.joinTimer != nil {
			g.joinTimer.Stop()
		}
		g.state = stateDead // timers of the old state find it gone
		delete(co.groups, key)
	}
	clear(co.held)
}

// emptyAssignment is what a member the leader gave nothing gets: a valid
// ConsumerMemberAssignment (an empty byte string breaks clients).
func emptyAssignment(protocolType string) []byte {
	if protocolType != consumerProtocol {
		return []byte{}
	}
	a := kmsg.NewConsumerMemberAssignment()
	return a.AppendTo(nil)
}
