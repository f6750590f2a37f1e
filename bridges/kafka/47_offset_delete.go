package kafka

import (
	"strconv"

	"github.com/eddy-broker/eddy"
	"github.com/eddy-broker/eddy/multiraft/catalog"
	"github.com/eddy-broker/eddy/tenants"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// OffsetDelete, v0: forgets a group's committed offsets of partitions
// (kafka-consumer-groups --delete-offsets, kadm's DeleteOffsets), so
// that a group which stopped reading a topic no longer shows lag on it.
// As Kafka's coordinator: a partition of a topic a member subscribes to
// is GROUP_SUBSCRIBED_TO_TOPIC (and so is every partition of an MQTT
// device's session, whose positions go with its subscriptions); a group
// with members of another protocol type is NON_EMPTY_GROUP, one that
// does not exist GROUP_ID_NOT_FOUND. A group left with neither members
// nor offsets is gone. HTTP groups' offsets are the same offsets.

func init() { register(47, 0, 0, false, handleOffsetDelete) }

const errGroupSubscribedToTopic int16 = 86

func handleOffsetDelete(c *conn, req kmsg.Request) (kmsg.Response, error) {
	r := req.(*kmsg.OffsetDeleteRequest)
	resp := r.ResponseKind().(*kmsg.OffsetDeleteResponse)
	switch {
	case !c.l.coordinates():
		resp.ErrorCode = errNotCoordinator
	case catalog.ValidateGroupName(r.Group) != nil:
		resp.ErrorCode = errInvalidGroupID
	case !c.p.Consumes():
		resp.ErrorCode = errGroupAuthorization
	}
	if resp.ErrorCode != errNone {
		return resp, nil
	}
	subscribed, code := c.l.groups.subscriptions(c.tenant, r.Group)
	if code != errNone {
		resp.ErrorCode = code
		return resp, nil
	}
	var keys []string // bounded by the tenant's partitions, however long the request
	seen := map[string]bool{}
	for _, t := range r.Topics {
		rt := kmsg.NewOffsetDeleteResponseTopic()
		rt.Topic = t.Topic
		m, terr := c.topic(t.Topic, tenants.Consume)
		for _, p := range t.Partitions {
			rp := kmsg.NewOffsetDeleteResponseTopicPartition()
			rp.Partition = p.Partition
			switch {
			case terr != nil:
				rp.ErrorCode = kafkaCode(terr)
			case p.Partition < 0 || p.Partition >= m.Partitions:
				rp.ErrorCode = errUnknownTopicOrPartition
			case subscribed[t.Topic]:
				rp.ErrorCode = errGroupSubscribedToTopic
			default:
				if k := t.Topic + "/" + strconv.Itoa(int(p.Partition)); !seen[k] { // a partition named twice is one key
					seen[k] = true
					keys = append(keys, k)
				}
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	if len(keys) == 0 {
		return resp, nil
	}
	ctx, cancel := c.ctx(c.l.cfg.RequestTimeout)
	defer cancel()
	_, err := c.l.b.DeleteOffsets(ctx, c.tenant, r.Group, keys)
	code = kafkaCode(err)
	switch eddy.ErrorCode(err) {
	case eddy.CodeNotFound:
		resp.ErrorCode = errGroupIDNotFound
		return resp, nil
	case eddy.CodeConflict: // an HTTP member or an MQTT session reads them, or a member joined since
		code = errGroupSubscribedToTopic
	}
	for i := range resp.Topics { // the partitions keys named share the outcome
		for j := range resp.Topics[i].Partitions {
			if rp := &resp.Topics[i].Partitions[j]; rp.ErrorCode == errNone {
				rp.ErrorCode = code
			}
		}
	}
	return resp, nil
}

// subscriptions is what the members of a group subscribe to or are
// assigned, as its coordinator holds them (OffsetDelete): NON_EMPTY_GROUP
// for a group with members of another protocol type, or one whose
// subscription cannot be read; GROUP_ID_NOT_FOUND when neither the
// coordinator nor the catalog has the group.
func (co *coordinator) subscriptions(t eddy.TenantID, name string) (map[string]bool, int16) {
	co.mu.Lock()
	defer co.mu.Unlock()
	g := co.lookup(t, name)
	if g == nil {
		if _, err := co.l.b.Group(t, name); err != nil {
			return nil, errGroupIDNotFound
		}
		return nil, errNone
	}
	if len(g.members) == 0 {
		return nil, errNone
	}
	if g.protocolType != consumerProtocol {
		return nil, errNonEmptyGroup
	}
	subs := map[string]bool{}
	for _, m := range g.members {
		for _, p := range m.protocols {
			var meta kmsg.ConsumerMemberMetadata
			if meta.ReadFrom(p.Metadata) != nil {
				return nil, errNonEmptyGroup
			}
			for _, topic := range meta.Topics {
				subs[topic] = true
			}
		}
		var a kmsg.ConsumerMemberAssignment
		if a.ReadFrom(m.assignment) == nil {
			for _, at := range a.Topics {
				subs[at.Topic] = true
			}
		}
	}
	return subs, errNone
}
