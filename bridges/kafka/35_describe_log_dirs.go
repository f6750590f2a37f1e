package kafka

import (
	"github.com/eddy-broker/eddy/tenants"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeLogDirs, v0-5: the replicas this node holds of the tenant's
// topics the token may describe, each with the bytes it retains, in one
// log directory, the node's data directory (kafka-log-dirs, kadm's
// DescribeAllLogDirs, a console's topic sizes: AKHQ's topic list failed
// without it). A client asks each broker for its own replicas, as it asks
// Kafka's. v4's TotalBytes and UsableBytes (the volume's size and free
// space) go to an operator's token only; a tenant's gets -1, unknown:
// the disk is every tenant's. OffsetLag is 0 (a replica serves reads up
// to what it has applied) and no replica is a future one.

func init() { register(35, 0, 5, false, handleDescribeLogDirs) }

func handleDescribeLogDirs(c *conn, req kmsg.Request) (kmsg.Response, error) {
	r := req.(*kmsg.DescribeLogDirsRequest)
	resp := r.ResponseKind().(*kmsg.DescribeLogDirsResponse)
	var asked map[string]map[int32]bool // nil: every partition
	if r.Topics != nil {
		asked = map[string]map[int32]bool{}
		for _, t := range r.Topics {
			if asked[t.Topic] == nil {
				asked[t.Topic] = map[int32]bool{}
			}
			for _, p := range t.Partitions {
				asked[t.Topic][p] = true
			}
		}
	}
	d := kmsg.NewDescribeLogDirsResponseDir()
	path, total, usable, ok := c.l.b.Volume()
	d.Dir = path
	if ok && c.p.Operator() {
		d.TotalBytes, d.UsableBytes = int64(total), int64(usable)
	}
	for _, rs := range c.l.b.LocalReplicas(c.tenant) { // by topic, then partition
		topic, p := string(rs.Topic), int32(rs.Partition)
		if !c.p.Can(tenants.Describe, c.tenant, rs.Topic) || asked != nil && !asked[topic][p] {
			continue
		}
		if n := len(d.Topics); n == 0 || d.Topics[n-1].Topic != topic {
			dt := kmsg.NewDescribeLogDirsResponseDirTopic()
			dt.Topic = topic
			d.Topics = append(d.Topics, dt)
		}
		dp := kmsg.NewDescribeLogDirsResponseDirTopicPartition()
		dp.Partition, dp.Size = p, rs.Bytes
		dt := &d.Topics[len(d.Topics)-1]
		dt.Partitions = append(dt.Partitions, dp)
	}
	resp.Dirs = []kmsg.DescribeLogDirsResponseDir{d}
	return resp, nil
}
