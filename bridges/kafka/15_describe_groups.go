package kafka

import (
	"github.com/eddy-broker/eddy/multiraft/catalog"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeGroups, v0-5: a group's state, protocol and members with their
// metadata and assignments, as this coordinator holds them; a group only
// the catalog knows (empty, or joined over HTTP) is described from it; one
// that does not exist is Dead.

func init() { register(15, 0, 5, false, handleDescribeGroups) }

func handleDescribeGroups(c *conn, req kmsg.Request) (kmsg.Response, error) {
	r := req.(*kmsg.DescribeGroupsRequest)
	resp := r.ResponseKind().(*kmsg.DescribeGroupsResponse)
	for _, name := range r.Groups {
		d := kmsg.NewDescribeGroupsResponseGroup()
		d.Group, d.State = name, stateDead
		switch {
		case !c.l.coordinates():
			d.ErrorCode = errNotCoordinator
		case catalog.ValidateGroupName(name) != nil:
			d.ErrorCode = errInvalidGroupID
		case !c.p.Consumes():
			d.ErrorCode = errGroupAuthorization
		default:
			c.describe(&d)
		}
		resp.Groups = append(resp.Groups, d)
	}
	return resp, nil
}

func (c *conn) describe(d *kmsg.DescribeGroupsResponseGroup) {
	co := c.l.groups
	co.mu.Lock()
	g := co.lookup(c.tenant, d.Group)
	if g != nil && len(g.members) > 0 {
		d.State, d.ProtocolType, d.Protocol = g.state, g.protocolType, g.protocol
		for id, m := range g.members {
			dm := kmsg.NewDescribeGroupsResponseGroupMember()
			dm.MemberID, dm.InstanceID, dm.ClientID, dm.ClientHost, dm.MemberAssignment = id, m.instanceID, m.clientID, m.clientHost, m.assignment
			for _, p := range m.protocols {
				if p.Name == g.protocol {
					dm.ProtocolMetadata = p.Metadata
				}
			}
			d.Members = append(d.Members, dm)
		}
		co.mu.Unlock()
		return
	}
	co.mu.Unlock()
	cg, err := c.l.b.Group(c.tenant, d.Group)
	if err != nil {
		return // Dead
	}
	d.State = stateEmpty
	if cg.Kafka != nil { // its members, if any, are this coordinator's
		d.ProtocolType = cg.Kafka.ProtocolType
		return
	}
	for id := range cg.Members { // members over HTTP
		d.State = stateStable
		dm := kmsg.NewDescribeGroupsResponseGroupMember()
		dm.MemberID, dm.ClientID = id, "eddy-http"
		d.Members = append(d.Members, dm)
	}
}
