package kafka

import (
	"github.com/eddy-broker/eddy"
	"github.com/eddy-broker/eddy/tenants"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DeleteRecords, v0-2: a partition's log start moves to the offset asked
// (-1: its high watermark), as Kafka's, through any node (a client sends
// it to the leader; Host.DeleteRecords); past the high watermark is
// OFFSET_OUT_OF_RANGE, and past what the topic's link has sent
// POLICY_VIOLATION. Needs the tenant's admin scope, as deleting a topic.

func init() { register(21, 0, 2, false, handleDeleteRecords) }

func handleDeleteRecords(c *conn, req kmsg.Request) (kmsg.Response, error) {
	r := req.(*kmsg.DeleteRecordsRequest)
	resp := r.ResponseKind().(*kmsg.DeleteRecordsResponse)
	admin := c.p.Can(tenants.Admin, c.tenant, "")
	for _, rt := range r.Topics {
		t := kmsg.NewDeleteRecordsResponseTopic()
		t.Topic = rt.Topic
		_, terr := c.topic(rt.Topic, tenants.Describe)
		if terr == nil && !admin {
			terr = eddy.Errorf(eddy.CodeForbidden, "deleting records needs the tenant's admin scope")
		}
		for _, rp := range rt.Partitions {
			out := kmsg.NewDeleteRecordsResponseTopicPartition()
			out.Partition, out.LowWatermark = rp.Partition, -1
			err := terr
			if err == nil {
				ctx, cancel := c.ctx(c.l.cfg.RequestTimeout)
				out.LowWatermark, err = c.l.b.DeleteRecords(ctx, eddy.TopicRef{Tenant: c.tenant, Name: eddy.TopicName(rt.Topic)}, eddy.Partition(rp.Partition), rp.Offset)
				cancel()
			}
			out.ErrorCode = kafkaCode(err)
			switch eddy.ErrorCode(err) {
			case eddy.CodeUnavailable:
				out.ErrorCode = errNotLeaderOrFollower
			case eddy.CodeConflict:
				out.ErrorCode = errPolicyViolation
			}
			if err != nil {
				out.LowWatermark = -1
			}
			t.Partitions = append(t.Partitions, out)
		}
		resp.Topics = append(resp.Topics, t)
	}
	return resp, nil
}
