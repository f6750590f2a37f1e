package kafka

import (
	"strconv"
	"strings"

	"github.com/eddy-broker/eddy"
	"github.com/eddy-broker/eddy/multiraft/catalog"
	"github.com/eddy-broker/eddy/tenants"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// OffsetFetch, v0-8: a group's committed offsets (-1 where none), the
// named partitions or (v2+, no topics) every committed one the token may
// consume; v8 asks for several groups at once. HTTP groups' offsets are
// the same offsets.

func init() { register(9, 0, 8, false, handleOffsetFetch) }

type fetchTopic struct {
	name  string
	parts []int32
}

func handleOffsetFetch(c *conn, req kmsg.Request) (kmsg.Response, error) {
	r := req.(*kmsg.OffsetFetchRequest)
	resp := r.ResponseKind().(*kmsg.OffsetFetchResponse)
	if r.Version < 8 {
		var topics []fetchTopic
		if r.Topics != nil {
			topics = []fetchTopic{}
		}
		for _, t := range r.Topics {
			topics = append(topics, fetchTopic{t.Topic, t.Partitions})
		}
		code, got := c.committed(r.Group, topics)
		for _, t := range got {
			rt := kmsg.NewOffsetFetchResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewOffsetFetchResponseTopicPartition()
				rp.Partition, rp.Offset, rp.LeaderEpoch, rp.Metadata, rp.ErrorCode = p.Partition, p.Offset, -1, kmsg.StringPtr(p.Metadata), p.ErrorCode
				if r.Version < 2 && code != errNone {
					rp.ErrorCode = code
				}
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		resp.ErrorCode = code
		return resp, nil
	}
	for _, rg := range r.Groups {
		var topics []fetchTopic
		if rg.Topics != nil {
			topics = []fetchTopic{}
		}
		for _, t := range rg.Topics {
			topics = append(topics, fetchTopic{t.Topic, t.Partitions})
		}
		code, got := c.committed(rg.Group, topics)
		if r.Version >= 10 { // topics by id: not kept
			code, got = errUnsupportedVersion, nil
		}
		g := kmsg.NewOffsetFetchResponseGroup()
		g.Group, g.ErrorCode = rg.Group, code
		for _, t := range got {
			gt := kmsg.NewOffsetFetchResponseGroupTopic()
			gt.Topic = t.Topic
			for _, p := range t.Partitions {
				gp := kmsg.NewOffsetFetchResponseGroupTopicPartition()
				gp.Partition, gp.Offset, gp.LeaderEpoch, gp.Metadata, gp.ErrorCode = p.Partition, p.Offset, -1, kmsg.StringPtr(p.Metadata), p.ErrorCode
				gt.Partitions = append(gt.Partitions, gp)
			}
			g.Topics = append(g.Topics, gt)
		}
		resp.Groups = append(resp.Groups, g)
	}
	return resp, nil
}

type committedTopic struct {
	Topic      string
	Partitions []committedPartition
}

type committedPartition struct {
	Partition int32
	Offset    int64
	Metadata  string
	ErrorCode int16
}

// committed reads a group's offsets for topics (nil: every committed one).
func (c *conn) committed(group string, topics []fetchTopic) (int16, []committedTopic) {
	switch {
	case !c.l.coordinates():
		return errNotCoordinator, nil
	case catalog.ValidateGroupName(group) != nil:
		return errInvalidGroupID, nil
	case !c.p.Consumes():
		return errGroupAuthorization, nil
	}
	offsets, metadata := map[string]int64{}, map[string]string{}
	if g, err := c.l.b.Group(c.tenant, group); err == nil {
		offsets, metadata = g.Offsets, g.OffsetMetadata
	}
	if topics == nil { // every committed partition
		byTopic := map[string][]int32{}
		for k := range offsets {
			i := strings.LastIndexByte(k, '/')
			p, err := strconv.Atoi(k[i+1:])
			if i < 0 || err != nil {
				continue
			}
			byTopic[k[:i]] = append(byTopic[k[:i]], int32(p))
		}
		for t, ps := range byTopic {
			if c.p.Can(tenants.Consume, c.tenant, eddy.TopicName(t)) {
				topics = append(topics, fetchTopic{t, ps})
			}
		}
	}
	var out []committedTopic
	for _, t := range topics {
		ct := committedTopic{Topic: t.name}
		_, terr := c.topic(t.name, tenants.Consume)
		for _, p := range t.parts {
			cp := committedPartition{Partition: p, Offset: -1}
			key := t.name + "/" + strconv.Itoa(int(p))
			if off, ok := offsets[key]; ok {
				cp.Offset, cp.Metadata = off, metadata[key]
			}
			if terr != nil {
				cp = committedPartition{Partition: p, Offset: -1, ErrorCode: kafkaCode(terr)}
			}
			ct.Partitions = append(ct.Partitions, cp)
		}
		out = append(out, ct)
	}
	return errNone, out
}
