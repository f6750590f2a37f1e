package kafka

import (
	"bytes"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Static membership (KIP-345): a member named by group.instance.id keeps
// its place across restarts. The coordinator maps each instance to its
// current member id; a restarted instance joins with no member id and
// takes over its old member under a new one, and the old id is fenced.

const errFencedInstanceID int16 = 82

// fenced reports whether a request naming instance as member id is from a
// superseded incarnation of a static member (g may be nil).
func (g *group) fenced(instance *string, id string) bool {
	if g == nil || instance == nil {
		return false
	}
	known, ok := g.static[*instance]
	return ok && known != id
}

// replaceStatic moves the static member old to the new id (under co.mu),
// answering the old id's waiting calls with FENCED_INSTANCE_ID. While the
// group is stable and the member's protocols are unchanged it answers the
// join at once, in the current generation, so the member syncs for its
// old assignment and nobody rebalances; otherwise it returns nil and the
// join goes on as any other. Called and returning with co.mu held; it
// releases it while the new id is recorded.
func (co *coordinator) replaceStatic(g *group, old, id string, protocols []kmsg.JoinGroupRequestProtocol, session, rebalance time.Duration) *kmsg.JoinGroupResponse {
	m := g.members[old]
	m.fail(errFencedInstanceID)
	delete(g.members, old)
	m.id = id
	g.members[id] = m
	g.static[*m.instanceID] = id
	if g.leader == old {
		g.leader = id
	}
	m.session, m.rebalance, m.lastSeen = session, rebalance, time.Now()
	if g.state != stateStable || !sameSubscription(m.protocols, protocols, g.protocol, g.protocolType) {
		m.protocols = protocols
		return nil
	}
	// The new id is recorded before the member learns it: a coordinator
	// taking over must not fence it.
	gen := g.generation
	switch err := co.record(g); {
	case err == errClose || g.state == stateDead:
		return joinError(errNotCoordinator)
	case err != nil || g.generation != gen || g.members[id] == nil:
		return joinError(errRebalanceInProgress) // it joins again
	}
	r := kmsg.NewPtrJoinGroupResponse()
	r.Generation, r.Protocol, r.ProtocolType = g.generation, kmsg.StringPtr(g.protocol), kmsg.StringPtr(g.protocolType)
	r.LeaderID, r.MemberID = g.leader, id
	if id == g.leader {
		// Its client assigns again; the sync of a stable group keeps
		// the assignments it has.
		r.Members = g.joinMembers()
	}
	return r
}

// sameSubscription reports whether a member joining with protocols asks
// for what it had under the group's chosen protocol: for consumers the
// same topics (their metadata's owned partitions and generation, which
// cooperative assignors add, change with every generation and do not
// matter to the assignment), else the same bytes.
func sameSubscription(had, now []kmsg.JoinGroupRequestProtocol, protocol, protocolType string) bool {
	find := func(ps []kmsg.JoinGroupRequestProtocol) ([]byte, bool) {
		for _, p := range ps {
			if p.Name == protocol {
				return p.Metadata, true
			}
		}
		return nil, false
	}
	a, okA := find(had)
	b, okB := find(now)
	if !okA || !okB {
		return false
	}
	if protocolType != consumerProtocol {
		return bytes.Equal(a, b)
	}
	var ma, mb kmsg.ConsumerMemberMetadata
	if ma.ReadFrom(a) != nil || mb.ReadFrom(b) != nil {
		return false
	}
	ta, tb := slices.Clone(ma.Topics), slices.Clone(mb.Topics)
	slices.Sort(ta)
	slices.Sort(tb)
	return slices.Equal(ta, tb)
}

func joinError(code int16) *kmsg.JoinGroupResponse {
	r := kmsg.NewPtrJoinGroupResponse()
	r.ErrorCode, r.Generation = code, -1
	return r
}
