package kafka

import (
	"bytes"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// SyncGroup, v0-5: after a join, the leader hands in every member's
// assignment and each member receives its own (an empty but valid one
// for a member the leader gave nothing). Members wait for the leader's,
// and the leader for the catalog to record the generation. A stale
// generation is ILLEGAL_GENERATION; a rebalance begun since,
// REBALANCE_IN_PROGRESS; a static member's id replaced by a newer
// instance, FENCED_INSTANCE_ID.

func init() { register(14, 0, 5, false, handleSyncGroup) }

func handleSyncGroup(c *conn, req kmsg.Request) (kmsg.Response, error) {
	r := req.(*kmsg.SyncGroupRequest)
	resp := r.ResponseKind().(*kmsg.SyncGroupResponse)
	fail := func(code int16) (kmsg.Response, error) { resp.ErrorCode = code; return resp, nil }
	if !c.l.coordinates() {
		return fail(errNotCoordinator)
	}
	co := c.l.groups
	co.mu.Lock()
	g, m := co.member(c.tenant, r.Group, r.MemberID)
	switch {
	case g.fenced(r.InstanceID, r.MemberID):
		co.mu.Unlock()
		return fail(errFencedInstanceID)
	case m == nil:
		co.mu.Unlock()
		return fail(errUnknownMemberID)
	case r.Generation != g.generation:
		co.mu.Unlock()
		return fail(errIllegalGeneration)
	case (r.ProtocolType != nil && *r.ProtocolType != g.protocolType) || (r.Protocol != nil && *r.Protocol != g.protocol):
		co.mu.Unlock()
		return fail(errInconsistentGroupProtocol)
	case g.state == statePreparing:
		co.mu.Unlock()
		return fail(errRebalanceInProgress)
	}
	m.lastSeen = time.Now()
	resp.ProtocolType, resp.Protocol = &g.protocolType, &g.protocol
	if g.state == stateStable {
		resp.MemberAssignment = m.assignment
		co.mu.Unlock()
		return resp, nil
	}
	if r.MemberID != g.leader {
		m.sync = make(chan *kmsg.SyncGroupResponse, 1)
		wait, timeout := m.sync, m.rebalance
		co.mu.Unlock()
		select {
		case sr := <-wait:
			sr.Version = r.Version
			return sr, nil
		case <-time.After(timeout + 5*time.Second):
			return fail(errRebalanceInProgress)
		case <-c.l.base.Done():
			return nil, errClose
		}
	}
	given := map[string][]byte{}
	for _, a := range r.GroupAssignment {
		if len(a.MemberAssignment) > maxMemberBytes {
			co.mu.Unlock()
			return fail(errInvalidRequest) // a member's assignment over maxMemberBytes
		}
		given[a.MemberID] = bytes.Clone(a.MemberAssignment) // not the request's frame
	}
	for id, o := range g.members {
		o.assignment = given[id]
		if len(o.assignment) == 0 {
			o.assignment = emptyAssignment(g.protocolType)
		}
	}
	// The generation is recorded before any member learns its part, so a
	// coordinator that takes over serves the same assignment on.
	gen := g.generation
	err := co.record(g)
	defer co.mu.Unlock()
	switch {
	case err == errClose:
		return nil, errClose
	case g.state == stateDead:
		return fail(errNotCoordinator)
	case g.generation != gen || g.state != stateCompleting || g.members[r.MemberID] == nil:
		return fail(errRebalanceInProgress) // a member joined or left meanwhile
	case err != nil:
		co.prepareRebalance(g, "the generation was not recorded") // join again
		return fail(errRebalanceInProgress)
	}
	for _, o := range g.members {
		if o.sync != nil {
			sr := kmsg.NewPtrSyncGroupResponse()
			sr.ProtocolType, sr.Protocol, sr.MemberAssignment = &g.protocolType, &g.protocol, o.assignment
			o.sync <- sr
			o.sync = nil
		}
	}
	g.state = stateStable
	resp.MemberAssignment = m.assignment
	return resp, nil
}
