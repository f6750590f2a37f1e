package kafka

import (
	"github.com/eddy-broker/eddy/multiraft/catalog"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// LeaveGroup, v0-5: members leave at once (v3+: several, each answered);
// the others rebalance.

func init() { register(13, 0, 5, false, handleLeaveGroup) }

func handleLeaveGroup(c *conn, req kmsg.Request) (kmsg.Response, error) {
	r := req.(*kmsg.LeaveGroupRequest)
	resp := r.ResponseKind().(*kmsg.LeaveGroupResponse)
	if !c.l.coordinates() {
		resp.ErrorCode = errNotCoordinator
		return resp, nil
	}
	ids := []string{r.MemberID}
	if r.Version >= 3 {
		ids = ids[:0]
		for _, m := range r.Members {
			ids = append(ids, m.MemberID)
		}
	}
	co := c.l.groups
	co.mu.Lock()
	defer co.mu.Unlock()
	g := co.groups[catalog.GroupKey(c.tenant, r.Group)]
	var gone []string
	for _, id := range ids {
		code := errUnknownMemberID
		if g != nil && g.members[id] != nil {
			code = errNone
			gone = append(gone, id)
		}
		if r.Version >= 3 {
			lm := kmsg.NewLeaveGroupResponseMember()
			lm.MemberID, lm.ErrorCode = id, code
			resp.Members = append(resp.Members, lm)
		} else {
			resp.ErrorCode = code
		}
	}
	if len(gone) > 0 {
		co.remove(g, gone...)
	}
	return resp, nil
}
