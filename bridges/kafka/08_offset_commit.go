package kafka

import (
	"strconv"
	"time"

	"github.com/eddy-broker/eddy"
	"github.com/eddy-broker/eddy/multiraft/catalog"
	"github.com/eddy-broker/eddy/tenants"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// OffsetCommit, v0-8: a member commits the next offset to read, checked as
// Kafka does: its member id and generation (UNKNOWN_MEMBER_ID,
// ILLEGAL_GENERATION; REBALANCE_IN_PROGRESS between a join and its
// sync). Without
// a member (generation -1: kcat's assign mode, a standalone consumer) it
// commits only while the group has no members. Each topic needs the
// token's consume scope. The offsets of one request are one catalog
// entry, shared with the HTTP groups; each partition's metadata string
// (at most MaxCommitMetadataBytes, else OFFSET_METADATA_TOO_LARGE) is kept
// beside its offset and cleared by a commit without one.

func init() { register(8, 0, 8, false, handleOffsetCommit) }

func handleOffsetCommit(c *conn, req kmsg.Request) (kmsg.Response, error) {
	r := req.(*kmsg.OffsetCommitRequest)
	resp := r.ResponseKind().(*kmsg.OffsetCommitResponse)
	code := c.commitCheck(r)
	if r.Version >= 10 { // topics by id: not kept
		code = errUnsupportedVersion
	}
	offsets, metadata := map[string]int64{}, map[string]string{}
	for _, rt := range r.Topics {
		t := kmsg.NewOffsetCommitResponseTopic()
		t.Topic = rt.Topic
		meta, terr := c.topic(rt.Topic, tenants.Consume)
		for _, rp := range rt.Partitions {
			p := kmsg.NewOffsetCommitResponseTopicPartition()
			p.Partition, p.ErrorCode = rp.Partition, code
			switch {
			case code != errNone:
			case terr != nil:
				p.ErrorCode = kafkaCode(terr)
			case eddy.Partition(rp.Partition).Validate(meta.Partitions) != nil:
				p.ErrorCode = errUnknownTopicOrPartition
			case rp.Metadata != nil && c.l.cfg.MaxCommitMetadataBytes >= 0 && len(*rp.Metadata) > c.l.cfg.MaxCommitMetadataBytes:
				p.ErrorCode = errOffsetMetadataTooLarge
			default:
				key := rt.Topic + "/" + strconv.Itoa(int(rp.Partition))
				offsets[key] = rp.Offset
				if rp.Metadata != nil && c.l.cfg.MaxCommitMetadataBytes >= 0 && *rp.Metadata != "" {
					metadata[key] = *rp.Metadata
				}
			}
			t.Partitions = append(t.Partitions, p)
		}
		resp.Topics = append(resp.Topics, t)
	}
	if len(offsets) == 0 {
		return resp, nil
	}
	ctx, cancel := c.ctx(c.l.cfg.RequestTimeout)
	defer cancel()
	err := c.l.b.KafkaCommit(ctx, c.tenant, r.Group, offsets, metadata)
	if err == nil {
		return resp, nil
	}
	failed := kafkaCode(err)
	if eddy.ErrorCode(err) == eddy.CodeConflict { // the group's members are HTTP's
		failed = errInconsistentGroupProtocol
	}
	for i := range resp.Topics {
		for j := range resp.Topics[i].Partitions {
			if p := &resp.Topics[i].Partitions[j]; p.ErrorCode == errNone {
				p.ErrorCode = failed
			}
		}
	}
	return resp, nil
}

// commitCheck is the code a commit gets for its group, member and
// generation (0 when it may commit).
func (c *conn) commitCheck(r *kmsg.OffsetCommitRequest) int16 {
	switch {
	case !c.l.coordinates():
		return errNotCoordinator
	case catalog.ValidateGroupName(r.Group) != nil:
		return errInvalidGroupID
	case !c.p.Consumes():
		return errGroupAuthorization
	}
	co := c.l.groups
	co.mu.Lock()
	defer co.mu.Unlock()
	g, m := co.member(c.tenant, r.Group, r.MemberID)
	if r.Version == 0 || (r.Generation < 0 && r.MemberID == "") {
		if g != nil && len(g.members) > 0 {
			return errUnknownMemberID
		}
		return errNone
	}
	switch {
	case g.fenced(r.InstanceID, r.MemberID):
		return errFencedInstanceID
	case m == nil:
		return errUnknownMemberID
	case r.Generation != g.generation:
		return errIllegalGeneration
	case g.state == stateCompleting:
		// It has the new generation but not yet its assignment (Kafka's
		// rule). During the join phase a commit of the last generation
		// is still taken: the member learns of the rebalance from its
		// heartbeat, and its last positions are not lost.
		return errRebalanceInProgress
	}
	m.lastSeen = time.Now()
	return errNone
}
