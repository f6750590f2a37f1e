package node

import (
	"context"
	"fmt"

	"github.com/eddy-broker/eddy"
	mqttapi "github.com/eddy-broker/eddy/bridges/mqtt"
	"github.com/eddy-broker/eddy/multiraft"
	"github.com/eddy-broker/eddy/tenants"
)

// ingest is the produce path of the non-HTTP listeners (MQTT now, Kafka
// next): the tenant's quotas, the topic's transform, then Produce, exactly
// as an HTTP produce.
type ingest struct {
	host    *multiraft.Host
	tx      *transformer
	limiter *tenants.Limiter
	n       *Node
}

var _ mqttapi.Ingest = (*ingest)(nil)

func (in *ingest) MaxMessageBytes(ref eddy.TopicRef) (int64, error) {
	meta, err := in.host.Topic(ref)
	if err != nil {
		return 0, err
	}
	return meta.ConfigInt(multiraft.ConfMaxMessageBytes), nil
}

func (in *ingest) Ingest(ctx context.Context, ref eddy.TopicRef, recs []eddy.Record) error {
	if err := in.host.AdmitProduce(in.limiter, ref.Tenant, recs); err != nil {
		if c := eddy.ErrorCode(err); c == eddy.CodeQuotaExceeded || c == eddy.CodeStorageQuota {
			in.n.metrics.GetOrCreateCounter(fmt.Sprintf(`eddy_tenant_quota_rejections_total{tenant=%q,code=%q}`, ref.Tenant, c)).Inc()
		}
		return err
	}
	meta, err := in.host.Topic(ref)
	if err != nil {
		return err
	}
	var parts []eddy.Partition
	if meta.Transform != nil {
		tr, err := in.tx.Transform(ctx, meta, recs, nil)
		if err != nil {
			return err
		}
		recs, parts = tr.Records, tr.Parts
		if len(recs) == 0 {
			return nil // dropped or dead-lettered: acknowledged
		}
	}
	_, err = in.host.Produce(ctx, ref, recs, parts)
	return err
}

// MaxConnections is the tenant's MQTT connection quota (0: unlimited).
func (in *ingest) MaxConnections(tenant eddy.TenantID) int64 {
	tm, err := in.host.Tenant(tenant)
	if err != nil {
		return 0
	}
	return tm.Quotas.MaxConnections
}

func (in *ingest) Mapping(tenant eddy.TenantID) *tenants.MQTTMapping {
	tm, err := in.host.Tenant(tenant)
	if err != nil {
		return nil
	}
	return tm.MQTT
}

func (in *ingest) CreateTopic(ctx context.Context, ref eddy.TopicRef, partitions int32) error {
	_, err := in.host.CreateTopic(ctx, ref.Tenant, multiraft.TopicSpec{Name: ref.Name, Partitions: partitions, ReplicationFactor: 1})
	return err
}
