package kafka

import (
	"slices"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// ListGroups, v0-4: the tenant's groups, Kafka's and HTTP's (protocol type
// "consumer" or empty), with their state (v4, filtered by StatesFilter).

func init() { register(16, 0, 4, false, handleListGroups) }

func handleListGroups(c *conn, req kmsg.Request) (kmsg.Response, error) {
	r := req.(*kmsg.ListGroupsRequest)
	resp := r.ResponseKind().(*kmsg.ListGroupsResponse)
	if !c.l.coordinates() {
		resp.ErrorCode = errNotCoordinator
		return resp, nil
	}
	if !c.p.Consumes() {
		resp.ErrorCode = errGroupAuthorization
		return resp, nil
	}
	co := c.l.groups
	for _, cg := range c.l.b.Groups(c.tenant) {
		lg := kmsg.NewListGroupsResponseGroup()
		lg.Group, lg.GroupState = cg.Name, stateEmpty
		if cg.Kafka != nil {
			lg.ProtocolType = cg.Kafka.ProtocolType
		} else if len(cg.Members) > 0 {
			lg.GroupState = stateStable
		}
		co.mu.Lock()
		if g := co.lookup(c.tenant, cg.Name); g != nil && len(g.members) > 0 {
			lg.GroupState = g.state
		}
		co.mu.Unlock()
		if len(r.StatesFilter) > 0 && !slices.Contains(r.StatesFilter, lg.GroupState) {
			continue
		}
		resp.Groups = append(resp.Groups, lg)
	}
	return resp, nil
}
