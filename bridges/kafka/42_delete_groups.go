package kafka

import (
	"github.com/eddy-broker/eddy"
	"github.com/eddy-broker/eddy/multiraft/catalog"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DeleteGroups, v0-2: empty groups and their committed offsets (HTTP
// groups too). A group with members is NON_EMPTY_GROUP, a missing one
// GROUP_ID_NOT_FOUND.

func init() { register(42, 0, 2, false, handleDeleteGroups) }

func handleDeleteGroups(c *conn, req kmsg.Request) (kmsg.Response, error) {
	r := req.(*kmsg.DeleteGroupsRequest)
	resp := r.ResponseKind().(*kmsg.DeleteGroupsResponse)
	for _, name := range r.Groups {
		d := kmsg.NewDeleteGroupsResponseGroup()
		d.Group = name
		d.ErrorCode = c.deleteGroup(name)
		resp.Groups = append(resp.Groups, d)
	}
	return resp, nil
}

func (c *conn) deleteGroup(name string) int16 {
	switch {
	case !c.l.coordinates():
		return errNotCoordinator
	case catalog.ValidateGroupName(name) != nil:
		return errInvalidGroupID
	case !c.p.Consumes():
		return errGroupAuthorization
	}
	co := c.l.groups
	key := catalog.GroupKey(c.tenant, name)
	co.mu.Lock()
	g := co.lookup(c.tenant, name)
	if g != nil && len(g.members) > 0 {
		co.mu.Unlock()
		return errNonEmptyGroup
	}
	delete(co.groups, key)
	if g != nil {
		co.forget(g) // its joins in progress, if any
	}
	co.mu.Unlock()
	if g != nil {
		g.persists.Wait() // its last record lands before the delete, not after
	}
	ctx, cancel := c.ctx(c.l.cfg.RequestTimeout)
	defer cancel()
	switch err := c.l.b.DeleteGroup(ctx, c.tenant, name); eddy.ErrorCode(err) {
	case "":
		return errNone
	case eddy.CodeNotFound:
		return errGroupIDNotFound
	case eddy.CodeConflict:
		return errNonEmptyGroup
	default:
		return kafkaCode(err)
	}
}
