package node

import (
	"context"

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

// MaxConnections is the tenant's MQTT connection quota (0: unlimited).
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
