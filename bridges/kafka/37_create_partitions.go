package kafka

import (
	"github.com/eddy-broker/eddy"
	"github.com/eddy-broker/eddy/tenants"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// CreatePartitions, v0-3: a topic grows to Count partitions (never
// shrinks: INVALID_PARTITIONS), placed as at creation; explicit
// assignments are refused (Eddy places replicas). Keys then map to other
// partitions, as in Kafka. Needs the tenant's admin scope.

func init() { register(37, 0, 3, false, handleCreatePartitions) }

func handleCreatePartitions(c *conn, req kmsg.Request) (kmsg.Response, error) {
	r := req.(*kmsg.CreatePartitionsRequest)
	resp := r.ResponseKind().(*kmsg.CreatePartitionsResponse)
	for _, rt := range r.Topics {
		out := kmsg.NewCreatePartitionsResponseTopic()
		out.Topic = rt.Topic
		err := c.createPartitions(rt, r.ValidateOnly)
		out.ErrorCode, out.ErrorMessage = kafkaCode(err), errMessage(err)
		if eddy.ErrorCode(err) == eddy.CodeInvalid {
			out.ErrorCode = errInvalidPartitions
		}
		resp.Topics = append(resp.Topics, out)
	}
	return resp, nil
}

func (c *conn) createPartitions(rt kmsg.CreatePartitionsRequestTopic, validateOnly bool) error {
	meta, err := c.topic(rt.Topic, tenants.Describe)
	switch {
	case err != nil:
		return err
	case !c.p.Can(tenants.Admin, c.tenant, ""):
		return eddy.Errorf(eddy.CodeForbidden, "adding partitions needs the tenant's admin scope")
	case len(rt.Assignment) > 0:
		return eddy.Errorf(eddy.CodeInvalid, "replica assignments are not accepted: Eddy places replicas")
	case rt.Count <= meta.Partitions:
		return eddy.Errorf(eddy.CodeInvalid, "topic %s has %d partitions; it can only grow", rt.Topic, meta.Partitions)
	case validateOnly:
		return nil
	}
	ctx, cancel := c.ctx(c.l.cfg.RequestTimeout)
	defer cancel()
	_, err = c.l.b.AlterTopic(ctx, meta.Ref(), nil, rt.Count)
	return err
}
