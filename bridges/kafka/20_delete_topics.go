package kafka

import (
	"github.com/eddy-broker/eddy"
	"github.com/eddy-broker/eddy/tenants"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DeleteTopics, v0-5: the tenant's topics by name (v6's topic ids are not
// kept). Needs the tenant's admin scope.

func init() { register(20, 0, 5, false, handleDeleteTopics) }

func handleDeleteTopics(c *conn, req kmsg.Request) (kmsg.Response, error) {
	r := req.(*kmsg.DeleteTopicsRequest)
	resp := r.ResponseKind().(*kmsg.DeleteTopicsResponse)
	names := r.TopicNames
	for _, t := range r.Topics { // v6+
		if t.Topic != nil {
			names = append(names, *t.Topic)
		}
	}
	for _, name := range names {
		t := kmsg.NewDeleteTopicsResponseTopic()
		t.Topic = kmsg.StringPtr(name)
		var err error
		if !c.p.Can(tenants.Admin, c.tenant, "") {
			err = eddy.Errorf(eddy.CodeForbidden, "deleting topics needs the tenant's admin scope")
		} else {
			ctx, cancel := c.ctx(c.l.cfg.RequestTimeout)
			err = c.l.b.DeleteTopic(ctx, eddy.TopicRef{Tenant: c.tenant, Name: eddy.TopicName(name)})
			cancel()
		}
		t.ErrorCode, t.ErrorMessage = kafkaCode(err), errMessage(err)
		resp.Topics = append(resp.Topics, t)
	}
	return resp, nil
}
