package kafka

import (
	"github.com/twmb/franz-go/pkg/kmsg"
)

// LeaveGroup, v0-5: members leave at once (v3+: several, each answered,
// a static member also by its group.instance.id alone); the others
// rebalance.

func init() { register(13, 0, 5, false, handleLeaveGroup) }

func handleLeaveGroup(c *conn, req kmsg.Request) (kmsg.Response, error) {
	r := req.(*kmsg.LeaveGroupRequest)
	resp := r.ResponseKind().(*kmsg.LeaveGroupResponse)
	if !c.l.coordinates() {
		resp.ErrorCode = errNotCoordinator
		return resp, nil
	}
	type leaver struct {
		id       string
		instance *string
	}
	leavers := []leaver{{id: r.MemberID}}
	if r.Version >= 3 {
		leavers = leavers[:0]
		for _, m := range r.Members {
			leavers = append(leavers, leaver{m.MemberID, m.InstanceID})
		}
	}
	co := c.l.groups
	co.mu.Lock()
	defer co.mu.Unlock()
	g := co.lookup(c.tenant, r.Group)
	var gone []string
	for _, l := range leavers {
		id, code := l.id, errUnknownMemberID
		if l.instance != nil && g != nil && g.static[*l.instance] != "" && id == "" {
			id = g.static[*l.instance] // a static member named by its instance alone
		}
		switch {
		case g.fenced(l.instance, id):
			code = errFencedInstanceID
		case g != nil && g.members[id] != nil:
			code = errNone
			gone = append(gone, id)
		}
		if r.Version >= 3 {
			lm := kmsg.NewLeaveGroupResponseMember()
			lm.MemberID, lm.InstanceID, lm.ErrorCode = l.id, l.instance, code
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
