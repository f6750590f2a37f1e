package kafka

import (
	"net"
	"slices"
	"time"

	"github.com/eddy-broker/eddy/multiraft/catalog"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// JoinGroup, v0-7: a member joins (or rejoins) a group and waits for the
// rebalance to complete: until every member rejoined, or the largest
// rebalance timeout passed (the first rebalance of an empty group waits
// group_initial_rebalance_delay for more members, as Kafka's
// group.initial.rebalance.delay.ms). From v4 a member with no id is given
// one with MEMBER_ID_REQUIRED and joins again with it. The leader's answer
// carries every member's metadata; its client assigns (range, roundrobin,
// sticky, cooperative-sticky: any client-side assignor). A static member
// (group.instance.id, v5+) that restarts takes its member's place under a
// new id: while the group is stable and its subscription unchanged,
// without a rebalance; the old id is fenced (FENCED_INSTANCE_ID), and a
// static member is dropped only when its session ends. A group with members
// over HTTP is INCONSISTENT_GROUP_PROTOCOL; a token with no consume scope
// GROUP_AUTHORIZATION_FAILED. A follower of a stable group that joins
// again with the same subscription keeps its assignment and generation
// (no rebalance); a new member, a changed subscription or the leader's
// join rebalance.

func init() { register(11, 0, 7, false, handleJoinGroup) }

func handleJoinGroup(c *conn, req kmsg.Request) (kmsg.Response, error) {
	r := req.(*kmsg.JoinGroupRequest)
	resp := r.ResponseKind().(*kmsg.JoinGroupResponse)
	resp.Generation, resp.MemberID = -1, r.MemberID
	fail := func(code int16) (kmsg.Response, error) { resp.ErrorCode = code; return resp, nil }
	session := time.Duration(r.SessionTimeoutMillis) * time.Millisecond
	rebalance := time.Duration(r.RebalanceTimeoutMillis) * time.Millisecond
	if r.Version == 0 {
		rebalance = session
	}
	switch {
	case !c.l.coordinates():
		return fail(errNotCoordinator)
	case catalog.ValidateGroupName(r.Group) != nil:
		return fail(errInvalidGroupID)
	case !c.p.Consumes():
		return fail(errGroupAuthorization)
	case r.ProtocolType == "" || len(r.Protocols) == 0:
		return fail(errInconsistentGroupProtocol)
	case session < catalog.MinSessionTimeoutMs*time.Millisecond || session > catalog.MaxSessionTimeoutMs*time.Millisecond:
		return fail(errInvalidSessionTimeout)
	}
	rebalance = min(max(rebalance, session), 10*time.Minute)
	var ok bool
	if r.Protocols, ok = ownProtocols(r.Protocols); !ok {
		return fail(errGroupMaxSizeReached) // a member's metadata over maxMemberBytes
	}
	if cg, err := c.l.b.Group(c.tenant, r.Group); err == nil && cg.Kafka == nil && len(cg.Members) > 0 {
		return fail(errInconsistentGroupProtocol) // its members joined over HTTP
	}
	co := c.l.groups
	co.mu.Lock()
	g := co.get(c.tenant, r.Group)
	if len(g.members) > 0 && (g.protocolType != r.ProtocolType || !slices.ContainsFunc(r.Protocols, func(p kmsg.JoinGroupRequestProtocol) bool { return g.supports(p.Name) })) {
		co.mu.Unlock()
		return fail(errInconsistentGroupProtocol)
	}
	id := r.MemberID
	static := r.Version >= 5 && r.InstanceID != nil
	if static {
		switch known := g.static[*r.InstanceID]; {
		case known != "" && id != "" && id != known:
			co.mu.Unlock()
			return fail(errFencedInstanceID)
		case known != "" && id == "": // the instance restarted
			id = newMemberID(*r.InstanceID)
			if jr := co.replaceStatic(g, known, id, r.Protocols, session, rebalance); jr != nil {
				co.mu.Unlock()
				jr.Version = r.Version
				return jr, nil
			}
		case id == "": // a static member needs no MEMBER_ID_REQUIRED round
			if !co.roomFor(g) {
				co.mu.Unlock()
				return fail(errGroupMaxSizeReached)
			}
			id = newMemberID(*r.InstanceID)
			g.pending[id] = time.Now()
		}
	}
	if id == "" {
		id = newMemberID(clientIDOf(c))
		if r.Version >= 4 {
			if !co.roomFor(g) {
				co.mu.Unlock()
				return fail(errGroupMaxSizeReached)
			}
			g.pending[id] = time.Now()
			co.mu.Unlock()
			resp.MemberID = id
			return fail(errMemberIDRequired)
		}
	} else if g.members[id] == nil {
		if _, ok := g.pending[id]; !ok {
			co.mu.Unlock()
			return fail(errUnknownMemberID)
		}
	}
	_, wasPending := g.pending[id] // counted already
	delete(g.pending, id)
	m := g.members[id]
	if m == nil {
		if len(g.members) >= maxGroupMembers || (!wasPending && !co.roomFor(g)) {
			co.mu.Unlock()
			return fail(errGroupMaxSizeReached)
		}
		host, _, _ := net.SplitHostPort(c.remote)
		m = &member{id: id, clientID: clientIDOf(c), clientHost: "/" + host}
		g.members[id] = m
	}
	if g.state == stateStable && m.join == nil && id != g.leader && sameSubscription(m.protocols, r.Protocols, g.protocol, g.protocolType) {
		// A follower that joins again with what it had (after an error
		// of its own, or a coordinator failover): its assignment stands,
		// so it gets the current generation and syncs for it, as Kafka
		// answers; nobody else rebalances.
		m.protocols, m.session, m.rebalance, m.lastSeen = r.Protocols, session, rebalance, time.Now()
		jr := kmsg.NewPtrJoinGroupResponse()
		jr.Version, jr.Generation, jr.Protocol, jr.ProtocolType = r.Version, g.generation, kmsg.StringPtr(g.protocol), kmsg.StringPtr(g.protocolType)
		jr.LeaderID, jr.MemberID = g.leader, id
		co.mu.Unlock()
		return jr, nil
	}
	if m.join != nil { // a join it gave up on
		old := kmsg.NewPtrJoinGroupResponse()
		old.ErrorCode = errRebalanceInProgress
		m.join <- old
	}
	m.instanceID, m.protocols, m.session, m.rebalance, m.lastSeen = r.InstanceID, r.Protocols, session, rebalance, time.Now()
	if static {
		g.static[*r.InstanceID] = id
	}
	m.join = make(chan *kmsg.JoinGroupResponse, 1)
	wait := m.join
	g.protocolType = r.ProtocolType
	if g.state != statePreparing {
		why := "member " + id + " joined"
		switch {
		case id == g.leader:
			why = "the leader joined again"
		case g.state == stateStable:
			why = "member " + id + " joined with another subscription"
		}
		co.prepareRebalance(g, why)
	}
	co.maybeCompleteJoin(g)
	co.mu.Unlock()
	select {
	case jr := <-wait:
		jr.Version = r.Version
		return jr, nil
	case <-time.After(rebalance + 5*time.Second):
		return fail(errRebalanceInProgress)
	case <-c.l.base.Done():
		return nil, errClose
	}
}

// clientIDOf is the connection's client id (from its last request header).
func clientIDOf(c *conn) string { return c.clientID }
