package kafka

import (
	"github.com/eddy-broker/eddy"
	"github.com/eddy-broker/eddy/multiraft/catalog"
	"github.com/eddy-broker/eddy/tenants"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// CreateTopics, v0-7: topics of the connection's tenant, with partitions
// (-1: 1), replication factor (-1: 1) and configs by Kafka's names
// (retention.ms, retention.bytes, segment.bytes, max.message.bytes,
// cleanup.policy delete or compact, ...; others are INVALID_CONFIG). Explicit replica
// assignments are refused (Eddy places replicas). ValidateOnly (v1+)
// checks without creating. Needs the tenant's admin scope:
// TOPIC_AUTHORIZATION_FAILED otherwise.

func init() { register(19, 0, 7, false, handleCreateTopics) }

func handleCreateTopics(c *conn, req kmsg.Request) (kmsg.Response, error) {
	r := req.(*kmsg.CreateTopicsRequest)
	resp := r.ResponseKind().(*kmsg.CreateTopicsResponse)
	for _, rt := range r.Topics {
		t := kmsg.NewCreateTopicsResponseTopic()
		t.Topic, t.NumPartitions, t.ReplicationFactor = rt.Topic, -1, -1
		meta, code, err := c.createTopic(r, rt)
		if err != nil {
			t.ErrorCode, t.ErrorMessage = code, errMessage(err)
		} else {
			t.NumPartitions, t.ReplicationFactor = meta.Partitions, int16(meta.ReplicationFactor)
			for k, v := range meta.EffectiveConfig() {
				cfg := kmsg.NewCreateTopicsResponseTopicConfig()
				cfg.Name, cfg.Value, cfg.Source = k, kmsg.StringPtr(v), 5 // DEFAULT_CONFIG
				if _, set := meta.Config[k]; set {
					cfg.Source = 1 // DYNAMIC_TOPIC_CONFIG
				}
				t.Configs = append(t.Configs, cfg)
			}
		}
		resp.Topics = append(resp.Topics, t)
	}
	return resp, nil
}

// createTopic creates (or, ValidateOnly, checks) one topic; a refusal
// comes with its Kafka code, each field checked on its own so the code
// names it.
func (c *conn) createTopic(r *kmsg.CreateTopicsRequest, rt kmsg.CreateTopicsRequestTopic) (*catalog.TopicMeta, int16, error) {
	if !c.p.Can(tenants.Admin, c.tenant, "") {
		err := eddy.Errorf(eddy.CodeForbidden, "creating topics needs the tenant's admin scope")
		return nil, kafkaCode(err), err
	}
	if len(rt.ReplicaAssignment) > 0 {
		return nil, errInvalidRequest, eddy.Errorf(eddy.CodeInvalid, "replica assignments are not accepted: Eddy places replicas")
	}
	spec := catalog.TopicSpec{Name: eddy.TopicName(rt.Topic), Partitions: 1, ReplicationFactor: 1, Config: map[string]string{}}
	if rt.NumPartitions > 0 {
		spec.Partitions = rt.NumPartitions
	}
	if rt.ReplicationFactor > 0 {
		spec.ReplicationFactor = int(rt.ReplicationFactor)
	}
	for _, cfg := range rt.Configs {
		if cfg.Value != nil {
			spec.Config[cfg.Name] = *cfg.Value
		}
	}
	for _, check := range []struct {
		code int16
		err  error
	}{
		{errInvalidTopic, spec.Name.Validate()},
		{errInvalidPartitions, catalog.ValidatePartitions(spec.Partitions)},
		{errInvalidReplicationFactor, catalog.ValidateReplicationFactor(spec.ReplicationFactor, len(c.l.b.Nodes()))},
		{errInvalidConfig, catalog.ValidateConfig(spec.Config)},
	} {
		if check.err != nil {
			return nil, check.code, check.err
		}
	}
	if r.ValidateOnly {
		if _, err := c.l.b.Topic(eddy.TopicRef{Tenant: c.tenant, Name: spec.Name}); err == nil {
			return nil, errTopicAlreadyExists, eddy.Errorf(eddy.CodeTopicExists, "topic %s already exists", spec.Name)
		}
		return &catalog.TopicMeta{Tenant: c.tenant, Name: spec.Name, Partitions: spec.Partitions,
			ReplicationFactor: spec.ReplicationFactor, Config: spec.Config}, errNone, nil
	}
	ctx, cancel := c.ctx(c.l.cfg.RequestTimeout)
	defer cancel()
	meta, err := c.l.b.CreateTopic(ctx, c.tenant, spec)
	return meta, kafkaCode(err), err
}
