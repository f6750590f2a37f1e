package node

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"maps"
	"time"

	"github.com/eddy-broker/eddy/multiraft/catalog"

	"github.com/eddy-broker/eddy"
	mqttapi "github.com/eddy-broker/eddy/bridges/mqtt"
	"github.com/eddy-broker/eddy/ingest"
	"github.com/eddy-broker/eddy/multiraft"
)

// mqttIngest is what the MQTT listener and bridges need of the node: the
// produce path (ingest, shared with HTTP; it also serves the tenant's
// topic mapping from its cache) and the tenant's connection quota.
type mqttIngest struct {
	*ingest.Path
	host *multiraft.Host
}

var _ mqttapi.Ingest = mqttIngest{}

func (in mqttIngest) Ingest(ctx context.Context, ref eddy.TopicRef, recs []eddy.Record) error {
	_, err := in.Produce(ctx, ingest.Request{Ref: ref, Records: recs})
	return err
}

// MaxConnections is the tenant's connection quota on each listener of a
// node (0: unlimited).
func (in mqttIngest) MaxConnections(tenant eddy.TenantID) int64 {
	tm, err := in.host.Tenant(tenant)
	if err != nil {
		return 0
	}
	return tm.Quotas.MaxConnections
}

func (in mqttIngest) CreateTopic(ctx context.Context, ref eddy.TopicRef, partitions int32) error {
	_, err := in.host.CreateTopic(ctx, ref.Tenant, catalog.TopicSpec{Name: ref.Name, Partitions: partitions, ReplicationFactor: 1})
	return err
}

// mqttLog is what MQTT subscriptions read: the host's topics and its
// consume path (a local replica, or forwarded to one).
type mqttLog struct{ host *multiraft.Host }

var _ mqttapi.Log = mqttLog{}

func (l mqttLog) Topics(tenant eddy.TenantID) map[eddy.TopicName]int32 {
	out := map[eddy.TopicName]int32{}
	for _, m := range l.host.Topics(tenant) {
		out[m.Name] = m.Partitions
	}
	return out
}

func (l mqttLog) Bounds(ref eddy.TopicRef, p eddy.Partition) (int64, int64, error) {
	po, err := l.host.Offsets(ref, p)
	return int64(po.LogStart), int64(po.HighWatermark), err
}

func (l mqttLog) PartitionIncarnation(ref eddy.TopicRef, p eddy.Partition) (uint64, error) {
	return l.host.PartitionIncarnation(ref, p)
}

func (l mqttLog) BatchBytesAt(ref eddy.TopicRef, p eddy.Partition, offset int64) int {
	return l.host.BatchBytesAt(ref, p, eddy.Offset(offset))
}

func (l mqttLog) Read(ctx context.Context, ref eddy.TopicRef, p eddy.Partition, offset int64, maxBytes int, wait time.Duration) ([]eddy.FetchedRecord, int64, error) {
	res, err := l.host.Fetch(ctx, ref, p, eddy.Offset(offset), 1000, maxBytes, wait)
	if err != nil {
		return nil, offset, err
	}
	return res.Records, int64(res.NextOffset), nil
}

// mqttSessions keeps MQTT persistent sessions as the tenant's consumer
// groups mqtt.<client id> (a client id that is not a valid group name is
// hashed into one).
type mqttSessions struct{ host *multiraft.Host }

var _ mqttapi.Sessions = mqttSessions{}

func sessionGroup(client string) string {
	if g := "mqtt." + client; catalog.ValidateGroupName(g) == nil {
		return g
	}
	sum := sha256.Sum256([]byte(client))
	return "mqtt." + hex.EncodeToString(sum[:16])
}

func (s mqttSessions) Load(tenant eddy.TenantID, client string) ([]mqttapi.Filter, map[string]int64, bool) {
	g, err := s.host.Group(tenant, sessionGroup(client))
	if err != nil || g.MQTT == nil {
		return nil, nil, false
	}
	var fs []mqttapi.Filter
	for _, f := range g.MQTT.Filters {
		fs = append(fs, mqttapi.Filter{Filter: f.Filter, QoS: f.QoS, ID: f.ID, NoLocal: f.NoLocal, RetainAsPublished: f.RetainAsPublished})
	}
	return fs, maps.Clone(g.Offsets), true
}

func (s mqttSessions) Save(ctx context.Context, tenant eddy.TenantID, client string, filters []mqttapi.Filter, starts map[string]int64, expirySec int64) error {
	var sess *catalog.MQTTSession
	if len(filters) > 0 {
		sess = &catalog.MQTTSession{ExpirySec: expirySec}
		for _, f := range filters {
			sess.Filters = append(sess.Filters, catalog.MQTTFilter{Filter: f.Filter, QoS: f.QoS, ID: f.ID, NoLocal: f.NoLocal, RetainAsPublished: f.RetainAsPublished})
		}
	}
	err := s.host.MQTTSession(ctx, tenant, sessionGroup(client), sess, starts)
	if sess == nil && eddy.ErrorCode(err) == eddy.CodeNotFound {
		return nil
	}
	return err
}

func (s mqttSessions) Room(tenant eddy.TenantID, client string) error {
	return s.host.SessionRoom(tenant, sessionGroup(client))
}

func (s mqttSessions) Commit(ctx context.Context, tenant eddy.TenantID, client string, positions map[string]int64, expirySec int64) error {
	return s.host.SessionCommit(ctx, tenant, sessionGroup(client), positions, expirySec)
}

func (s mqttSessions) Presence(ctx context.Context, tenant eddy.TenantID, client string, expirySec int64, gone time.Time) error {
	var goneMs int64
	if !gone.IsZero() {
		goneMs = gone.UnixMilli()
	}
	return s.host.SessionPresence(ctx, tenant, sessionGroup(client), expirySec, goneMs)
}
