package kafka

import (
	"github.com/eddy-broker/eddy"
	"github.com/eddy-broker/eddy/multiraft"
	"github.com/eddy-broker/eddy/tenants"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ListOffsets, v1-7: a partition's earliest (-2) or latest (-1) offset,
// or the first offset whose record is at or after a timestamp, found
// through the segments' and batches' max timestamps (one batch decoded).
// -3 (the record with the largest timestamp, v7) is not kept: INVALID_REQUEST.
// With no transactions, read_committed and read_uncommitted agree.

func init() { register(2, 1, 7, false, handleListOffsets) }

func handleListOffsets(c *conn, req kmsg.Request) (kmsg.Response, error) {
	r := req.(*kmsg.ListOffsetsRequest)
	resp := r.ResponseKind().(*kmsg.ListOffsetsResponse)
	for _, rt := range r.Topics {
		t := kmsg.NewListOffsetsResponseTopic()
		t.Topic = rt.Topic
		_, terr := c.topic(rt.Topic, tenants.Consume)
		for _, rp := range rt.Partitions {
			out := kmsg.NewListOffsetsResponseTopicPartition()
			out.Partition, out.Timestamp, out.Offset, out.LeaderEpoch = rp.Partition, -1, -1, -1
			if terr != nil {
				out.ErrorCode = kafkaCode(terr)
				t.Partitions = append(t.Partitions, out)
				continue
			}
			ref, p := eddy.TopicRef{Tenant: c.tenant, Name: eddy.TopicName(rt.Topic)}, eddy.Partition(rp.Partition)
			var err error
			switch rp.Timestamp {
			case -1, -2:
				var po multiraft.PartitionOffsets
				if po, err = c.l.b.Offsets(ref, p); err == nil {
					out.Offset = int64(po.HighWatermark)
					if rp.Timestamp == -2 {
						out.Offset = int64(po.LogStart)
					}
				}
			case -3:
				err = eddy.Errorf(eddy.CodeInvalid, "the offset of the largest timestamp is not kept")
			default:
				out.Offset, out.Timestamp, err = c.l.b.OffsetForTime(ref, p, rp.Timestamp)
			}
			if err != nil {
				out.ErrorCode = kafkaCode(err)
				if eddy.ErrorCode(err) == eddy.CodeUnavailable {
					out.ErrorCode = errNotLeaderOrFollower
				}
			}
			if meta, merr := c.l.b.Topic(ref); merr == nil {
				if _, term, ok := c.l.b.PartitionLeader(meta, p); ok {
					out.LeaderEpoch = int32(term)
				}
			}
			t.Partitions = append(t.Partitions, out)
		}
		resp.Topics = append(resp.Topics, t)
	}
	return resp, nil
}
