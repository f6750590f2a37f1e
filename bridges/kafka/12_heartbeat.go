package kafka

import (
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Heartbeat, v0-4: keeps a member's session. REBALANCE_IN_PROGRESS tells
// it to join again; a stale generation is ILLEGAL_GENERATION, a member
// the group no longer has UNKNOWN_MEMBER_ID, a static member's id
// replaced by a newer instance FENCED_INSTANCE_ID.

func init() { register(12, 0, 4, false, handleHeartbeat) }

func handleHeartbeat(c *conn, req kmsg.Request) (kmsg.Response, error) {
	r := req.(*kmsg.HeartbeatRequest)
	resp := r.ResponseKind().(*kmsg.HeartbeatResponse)
	if !c.l.coordinates() {
		resp.ErrorCode = errNotCoordinator
		return resp, nil
	}
	co := c.l.groups
	co.mu.Lock()
	defer co.mu.Unlock()
	g, m := co.member(c.tenant, r.Group, r.MemberID)
	switch {
	case g.fenced(r.InstanceID, r.MemberID):
		resp.ErrorCode = errFencedInstanceID
	case m == nil:
		resp.ErrorCode = errUnknownMemberID
	case r.Generation != g.generation:
		resp.ErrorCode = errIllegalGeneration
	case g.state == statePreparing:
		m.lastSeen = time.Now()
		resp.ErrorCode = errRebalanceInProgress
	default:
		m.lastSeen = time.Now()
	}
	return resp, nil
}
