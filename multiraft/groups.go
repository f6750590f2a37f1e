package multiraft

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/eddy-broker/eddy/internal/logkey"

	"github.com/eddy-broker/eddy/multiraft/catalog"

	"github.com/eddy-broker/eddy"
)

// JoinGroup adds a member (a new id) and rebalances.
func (h *Host) JoinGroup(ctx context.Context, tenant eddy.TenantID, group string, topics []string, sessionTimeoutMs int64, fromEarliest bool) (*catalog.GroupMeta, string, error) {
	if err := catalog.ValidateGroupName(group); err != nil {
		return nil, "", err
	}
	if len(topics) == 0 || len(topics) > 100 {
		return nil, "", eddy.Errorf(eddy.CodeInvalid, "a member subscribes to 1 to 100 topics")
	}
	if sessionTimeoutMs == 0 {
		sessionTimeoutMs = catalog.DefaultSessionTimeout
	}
	if sessionTimeoutMs < catalog.MinSessionTimeoutMs || sessionTimeoutMs > catalog.MaxSessionTimeoutMs {
		return nil, "", eddy.Errorf(eddy.CodeInvalid, "session_timeout_ms must be %d to %d", catalog.MinSessionTimeoutMs, catalog.MaxSessionTimeoutMs)
	}
	var b [12]byte
	rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	now := time.Now().UnixMilli()
	res, err := h.tenantPropose(ctx, tenant, &catalog.Cmd{Op: catalog.OpJoinGroup, GroupCmd: &catalog.GroupCmd{Tenant: tenant, Group: group,
		Member: &catalog.MemberMeta{ID: id, Topics: topics, SessionTimeoutMs: sessionTimeoutMs, LastSeenMs: now, JoinedMs: now, FromEarliest: fromEarliest}}})
	if err != nil {
		return nil, "", err
	}
	return res.Group, id, nil
}

// LeaveGroup removes a member and rebalances.
func (h *Host) LeaveGroup(ctx context.Context, tenant eddy.TenantID, group, member string) error {
	_, err := h.tenantPropose(ctx, tenant, &catalog.Cmd{Op: catalog.OpLeaveGroup, GroupCmd: &catalog.GroupCmd{Tenant: tenant, Group: group, MemberID: member}})
	return err
}

// Heartbeat records that a member is alive.
func (h *Host) Heartbeat(ctx context.Context, tenant eddy.TenantID, group, member string) error {
	_, err := h.tenantPropose(ctx, tenant, &catalog.Cmd{Op: catalog.OpHeartbeat, GroupCmd: &catalog.GroupCmd{Tenant: tenant, Group: group, MemberID: member, NowMs: time.Now().UnixMilli()}})
	return err
}

// CommitOffsets commits a member's offsets ("topic/partition" -> next
// offset) in its generation.
func (h *Host) CommitOffsets(ctx context.Context, tenant eddy.TenantID, group, member string, generation int64, offsets map[string]int64) (*catalog.GroupMeta, error) {
	res, err := h.tenantPropose(ctx, tenant, &catalog.Cmd{Op: catalog.OpCommitOffsets, GroupCmd: &catalog.GroupCmd{Tenant: tenant, Group: group, MemberID: member,
		Generation: generation, Offsets: offsets, NowMs: time.Now().UnixMilli()}})
	if err != nil {
		return nil, err
	}
	return res.Group, nil
}

// KafkaGroup records a Kafka group's members and assignments, as its
// coordinator completed a rebalance.
func (h *Host) KafkaGroup(ctx context.Context, view *catalog.GroupMeta) error {
	_, err := h.tenantPropose(ctx, view.Tenant, &catalog.Cmd{Op: catalog.OpKafkaGroup, GroupCmd: &catalog.GroupCmd{Tenant: view.Tenant, Group: view.Name, View: view}})
	return err
}

// KafkaCommit commits offsets of a Kafka group, with their metadata
// strings (its coordinator checked the member and generation).
func (h *Host) KafkaCommit(ctx context.Context, tenant eddy.TenantID, group string, offsets map[string]int64, metadata map[string]string) error {
	_, err := h.tenantPropose(ctx, tenant, &catalog.Cmd{Op: catalog.OpCommitOffsets, GroupCmd: &catalog.GroupCmd{Tenant: tenant, Group: group, Offsets: offsets, Metadata: metadata, Kafka: true}})
	return err
}

// ResetOffsets replaces committed offsets of an empty group.
func (h *Host) ResetOffsets(ctx context.Context, tenant eddy.TenantID, group string, offsets map[string]int64) (*catalog.GroupMeta, error) {
	if err := catalog.ValidateGroupName(group); err != nil {
		return nil, err
	}
	res, err := h.tenantPropose(ctx, tenant, &catalog.Cmd{Op: catalog.OpCommitOffsets, GroupCmd: &catalog.GroupCmd{Tenant: tenant, Group: group, Offsets: offsets, Reset: true}})
	if err != nil {
		return nil, err
	}
	return res.Group, nil
}

// DeleteOffsets deletes a group's committed offsets of the partitions
// keys names ("topic/partition"), as Kafka's OffsetDelete: none of a
// topic a member reads (CodeConflict). It returns the group, or nil
// when it was left with neither members nor offsets and so is gone.
func (h *Host) DeleteOffsets(ctx context.Context, tenant eddy.TenantID, group string, keys []string) (*catalog.GroupMeta, error) {
	if err := catalog.ValidateGroupName(group); err != nil {
		return nil, err
	}
	if !h.allHave(catalog.FeatureDeleteOffsets) {
		return nil, eddy.Errorf(eddy.CodeConflict, "a node of an earlier build is in the cluster: a group's offsets can be deleted once every node is upgraded")
	}
	res, err := h.tenantPropose(ctx, tenant, &catalog.Cmd{Op: catalog.OpDeleteOffsets, GroupCmd: &catalog.GroupCmd{Tenant: tenant, Group: group, Drop: keys}})
	if err != nil {
		return nil, err
	}
	return res.Group, nil
}

// DeleteGroup deletes an empty group and its offsets.
func (h *Host) DeleteGroup(ctx context.Context, tenant eddy.TenantID, group string) error {
	_, err := h.tenantPropose(ctx, tenant, &catalog.Cmd{Op: catalog.OpDeleteGroup, GroupCmd: &catalog.GroupCmd{Tenant: tenant, Group: group}})
	return err
}

// Group returns a group as this node's controller replica has it (a
// shared copy: do not modify), or CodeNotFound.
func (h *Host) Group(tenant eddy.TenantID, group string) (*catalog.GroupMeta, error) {
	var g *catalog.GroupMeta
	h.ctrl.view(func(st *catalog.State) { g = st.Groups[catalog.GroupKey(tenant, group)] })
	if g == nil {
		return nil, eddy.Errorf(eddy.CodeNotFound, "group %s does not exist", group)
	}
	return g, nil
}

// Groups lists a tenant's groups by name.
func (h *Host) Groups(tenant eddy.TenantID) []*catalog.GroupMeta {
	var out []*catalog.GroupMeta
	h.ctrl.view(func(st *catalog.State) {
		for k, g := range st.Groups {
			if strings.HasPrefix(k, string(tenant)+"/") {
				out = append(out, g)
			}
		}
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// expireMembers runs on the controller leader: it removes members whose
// session timed out, and MQTT persistent sessions whose device has been
// gone longer than their expiry (by this node's clock).
func (h *Host) expireMembers() {
	if !h.leadsController() {
		return
	}
	now := time.Now().UnixMilli()
	var due, sessions []*catalog.GroupCmd
	h.ctrl.view(func(st *catalog.State) {
		for _, g := range st.Groups {
			if g.MQTT != nil && g.MQTT.Due(now) {
				sessions = append(sessions, &catalog.GroupCmd{Tenant: g.Tenant, Group: g.Name, NowMs: now})
			}
			if g.Kafka != nil {
				continue // its Kafka coordinator expires its members
			}
			for id, m := range g.Members {
				if m.LastSeenMs+m.SessionTimeoutMs < now {
					due = append(due, &catalog.GroupCmd{Tenant: g.Tenant, Group: g.Name, MemberID: id, NowMs: now})
				}
			}
		}
	})
	for _, c := range due {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if _, err := h.ctrlPropose(ctx, &catalog.Cmd{Op: catalog.OpExpireMember, GroupCmd: c}); err == nil {
			h.log.Info("consumer group member expired", logkey.Tenant, c.Tenant, logkey.Group, c.Group, logkey.Member, c.MemberID)
		}
		cancel()
	}
	for _, c := range sessions {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if _, err := h.ctrlPropose(ctx, &catalog.Cmd{Op: catalog.OpMQTTSession, GroupCmd: c}); err == nil {
			h.log.Info("mqtt session expired", logkey.Tenant, c.Tenant, logkey.Group, c.Group)
		}
		cancel()
	}
}

// SessionPresence records an MQTT persistent session's expiry and when its
// device went (goneMs; 0: connected); the controller leader drops it once
// it is due (expireMembers).
func (h *Host) SessionPresence(ctx context.Context, tenant eddy.TenantID, group string, expirySec, goneMs int64) error {
	_, err := h.tenantPropose(ctx, tenant, &catalog.Cmd{Op: catalog.OpCommitOffsets, GroupCmd: &catalog.GroupCmd{Tenant: tenant, Group: group, SessionOnly: true,
		Session: &catalog.MQTTSession{ExpirySec: expirySec, GoneMs: goneMs}}})
	return err
}

// MQTTSession records an MQTT persistent session's filters (nil: drops
// the session) and where its partitions without a position start.
func (h *Host) MQTTSession(ctx context.Context, tenant eddy.TenantID, group string, s *catalog.MQTTSession, starts map[string]int64) error {
	if err := catalog.ValidateGroupName(group); err != nil {
		return err
	}
	if s != nil && !h.allHave(catalog.FeatureSubscriptionOptions) {
		// A node of an earlier build would not keep the filters' MQTT 5
		// options: the catalog's replicas would differ. The connection
		// keeps them; a session resumed later does not.
		s = &catalog.MQTTSession{Filters: slices.Clone(s.Filters), ExpirySec: s.ExpirySec, GoneMs: s.GoneMs}
		for i, f := range s.Filters {
			s.Filters[i] = catalog.MQTTFilter{Filter: f.Filter, QoS: f.QoS}
		}
	}
	_, err := h.tenantPropose(ctx, tenant, &catalog.Cmd{Op: catalog.OpMQTTSession, GroupCmd: &catalog.GroupCmd{Tenant: tenant, Group: group, Session: s, Offsets: starts}})
	return err
}

// SessionRoom reports whether tenant may keep the MQTT persistent
// session group: it has it already, or room for another
// (max_mqtt_sessions); the error says why not. The controller decides
// again when the session is made.
func (h *Host) SessionRoom(tenant eddy.TenantID, group string) error {
	var err error
	h.ctrl.view(func(st *catalog.State) {
		if _, ok := st.Groups[catalog.GroupKey(tenant, group)]; !ok {
			err = st.NewSessionAllowed(tenant)
		}
	})
	return err
}

// SessionCommit records an MQTT persistent session's positions, from its
// connected device (so with its expiry, and not gone), in one entry with
// those of the tenant's other sessions committing meanwhile
// (sessioncommits.go).
func (h *Host) SessionCommit(ctx context.Context, tenant eddy.TenantID, group string, positions map[string]int64, expirySec int64) error {
	c := &catalog.GroupCmd{Tenant: tenant, Group: group, Offsets: positions, SessionOnly: true, Session: &catalog.MQTTSession{ExpirySec: expirySec}}
	if !h.allHave(catalog.FeatureSessionCommits) { // a node of an earlier build is in the cluster
		_, err := h.tenantPropose(ctx, tenant, &catalog.Cmd{Op: catalog.OpCommitOffsets, GroupCmd: c})
		return err
	}
	return h.sessionCommits.commit(ctx, tenant, c)
}
