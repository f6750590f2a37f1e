package kafka

import (
	"net"
	"strconv"

	"github.com/eddy-broker/eddy"
	"github.com/eddy-broker/eddy/multiraft/catalog"
	"github.com/eddy-broker/eddy/tenants"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Metadata, v0-12: the brokers are the cluster's nodes at their
// advertised Kafka addresses; the topics are the tenant's, named without
// any prefix. A partition's leader is its Raft leader and the leader epoch
// its Raft term (it grows at every change of leader, which librdkafka
// 2.1-2.6 needs to follow one); replicas and ISR are its voters. A topic
// of another tenant, or none, is UNKNOWN_TOPIC_OR_PARTITION; one the token
// may not describe is TOPIC_AUTHORIZATION_FAILED. Topics are never created
// by a Metadata request (no auto-creation: create them).

func init() { register(3, 0, 12, false, handleMetadata) }

func handleMetadata(c *conn, req kmsg.Request) (kmsg.Response, error) {
	r := req.(*kmsg.MetadataRequest)
	resp := r.ResponseKind().(*kmsg.MetadataResponse)
	resp.Brokers = c.brokers()
	resp.ClusterID = &c.l.cfg.ClusterID
	resp.ControllerID = int32(c.l.b.ControllerLeader())
	if resp.ControllerID == 0 {
		resp.ControllerID = int32(c.l.b.NodeID())
	}
	var metas []*catalog.TopicMeta
	all := r.Topics == nil || (r.Version == 0 && len(r.Topics) == 0)
	if all {
		for _, m := range c.l.b.Topics(c.tenant) {
			if c.p.Can(tenants.Describe, c.tenant, m.Name) {
				metas = append(metas, m)
			}
		}
		for _, m := range metas {
			resp.Topics = append(resp.Topics, c.topicMetadata(m))
		}
		return resp, nil
	}
	for _, rt := range r.Topics {
		name := ""
		if rt.Topic != nil {
			name = *rt.Topic
		}
		t := kmsg.NewMetadataResponseTopic()
		t.Topic = kmsg.StringPtr(name)
		m, err := c.topic(name, tenants.Describe)
		if err != nil {
			t.ErrorCode = kafkaCode(err)
			resp.Topics = append(resp.Topics, t)
			continue
		}
		resp.Topics = append(resp.Topics, c.topicMetadata(m))
	}
	return resp, nil
}

// topic resolves one of the tenant's topics for an action: not found
// (also for a name that is not valid), or forbidden inside the tenant.
func (c *conn) topic(name string, a tenants.Action) (*catalog.TopicMeta, error) {
	ref := eddy.TopicRef{Tenant: c.tenant, Name: eddy.TopicName(name)}
	m, err := c.l.b.Topic(ref)
	if err != nil {
		return nil, err
	}
	if !c.p.Can(a, c.tenant, ref.Name) {
		return nil, eddy.Errorf(eddy.CodeForbidden, "the token may not use topic %s", name)
	}
	return m, nil
}

func (c *conn) topicMetadata(m *catalog.TopicMeta) kmsg.MetadataResponseTopic {
	t := kmsg.NewMetadataResponseTopic()
	t.Topic = kmsg.StringPtr(string(m.Name))
	for p := range m.Partitions {
		mp := kmsg.NewMetadataResponseTopicPartition()
		mp.Partition = p
		for _, n := range m.Replicas[p] {
			mp.Replicas = append(mp.Replicas, int32(n))
		}
		mp.ISR = mp.Replicas
		mp.OfflineReplicas = []int32{}
		if node, term, ok := c.l.b.PartitionLeader(m, eddy.Partition(p)); ok {
			mp.Leader, mp.LeaderEpoch = int32(node), int32(term)
		} else if len(mp.Replicas) > 0 {
			// Unknown here (no local replica): any replica serves it.
			mp.Leader, mp.LeaderEpoch = mp.Replicas[0], -1
		} else {
			mp.ErrorCode, mp.Leader = errLeaderNotAvailable, -1
		}
		t.Partitions = append(t.Partitions, mp)
	}
	return t
}

// brokers are the nodes with a Kafka address; this node always, at the
// address it advertises.
func (c *conn) brokers() []kmsg.MetadataResponseBroker {
	self := c.l.b.NodeID()
	host, port := c.l.advertised()
	out := []kmsg.MetadataResponseBroker{{NodeID: int32(self), Host: host, Port: port}}
	for _, n := range c.l.b.Nodes() {
		if n.ID == self || n.KafkaAddr == "" {
			continue
		}
		h, p, err := net.SplitHostPort(n.KafkaAddr)
		if err != nil {
			continue
		}
		pn, _ := strconv.Atoi(p)
		out = append(out, kmsg.MetadataResponseBroker{NodeID: int32(n.ID), Host: h, Port: int32(pn)})
	}
	return out
}
