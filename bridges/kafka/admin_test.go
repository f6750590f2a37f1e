package kafka

import (
	"testing"

	"github.com/eddy-broker/eddy"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestTopicAdmin: CreateTopics with configs, DescribeConfigs, both ways
// of altering configs (fixed keys refused), CreatePartitions (growing
// only), DescribeCluster and DeleteTopics, at the ends of their ranges.
func TestTopicAdmin(t *testing.T) {
	e := newEnv(t)
	c := e.login("default", e.token)
	for _, v := range []int16{0, 7} {
		ct := kmsg.NewPtrCreateTopicsRequest()
		ct.Version, ct.TimeoutMillis = v, 5000
		name := "adm" + string(rune('0'+v))
		ct.Topics = []kmsg.CreateTopicsRequestTopic{{Topic: name, NumPartitions: 2, ReplicationFactor: -1,
			Configs: []kmsg.CreateTopicsRequestTopicConfig{{Name: "retention.ms", Value: kmsg.StringPtr("60000")}}}}
		if r := c.do(ct).(*kmsg.CreateTopicsResponse); r.Topics[0].ErrorCode != 0 {
			t.Fatalf("create v%d: %+v", v, r.Topics[0])
		}
		if r := c.do(ct).(*kmsg.CreateTopicsResponse); r.Topics[0].ErrorCode != errTopicAlreadyExists {
			t.Fatalf("create again v%d: %d", v, r.Topics[0].ErrorCode)
		}
	}
	// Each refused field has its own code, also when only validating.
	for _, bad := range []struct {
		topic      kmsg.CreateTopicsRequestTopic
		validating bool
		code       int16
	}{
		{kmsg.CreateTopicsRequestTopic{Topic: "a/b", NumPartitions: 1, ReplicationFactor: 1}, false, errInvalidTopic},
		{kmsg.CreateTopicsRequestTopic{Topic: "many", NumPartitions: 257, ReplicationFactor: 1}, true, errInvalidPartitions},
		{kmsg.CreateTopicsRequestTopic{Topic: "rf2", NumPartitions: 1, ReplicationFactor: 2}, false, errInvalidReplicationFactor},
		{kmsg.CreateTopicsRequestTopic{Topic: "rf3", NumPartitions: 1, ReplicationFactor: 3}, true, errInvalidReplicationFactor}, // one node
		{kmsg.CreateTopicsRequestTopic{Topic: "cfg", NumPartitions: 1, ReplicationFactor: 1,
			Configs: []kmsg.CreateTopicsRequestTopicConfig{{Name: "cleanup.policy", Value: kmsg.StringPtr("compress")}}}, false, errInvalidConfig},
		{kmsg.CreateTopicsRequestTopic{Topic: "asg", ReplicaAssignment: []kmsg.CreateTopicsRequestTopicReplicaAssignment{{Partition: 0, Replicas: []int32{1}}}}, false, errInvalidRequest},
	} {
		ct := kmsg.NewPtrCreateTopicsRequest()
		ct.Version, ct.TimeoutMillis, ct.ValidateOnly, ct.Topics = 7, 5000, bad.validating, []kmsg.CreateTopicsRequestTopic{bad.topic}
		if r := c.do(ct).(*kmsg.CreateTopicsResponse); r.Topics[0].ErrorCode != bad.code || r.Topics[0].ErrorMessage == nil {
			t.Fatalf("create %s: code %d, want %d (%v)", bad.topic.Topic, r.Topics[0].ErrorCode, bad.code, r.Topics[0].ErrorMessage)
		}
	}
	describe := func(v int16, name string) map[string]kmsg.DescribeConfigsResponseResourceConfig {
		dc := kmsg.NewPtrDescribeConfigsRequest()
		dc.Version = v
		dc.Resources = []kmsg.DescribeConfigsRequestResource{{ResourceType: resourceTopic, ResourceName: name}}
		r := c.do(dc).(*kmsg.DescribeConfigsResponse)
		if r.Resources[0].ErrorCode != 0 {
			t.Fatalf("describe v%d %s: %d", v, name, r.Resources[0].ErrorCode)
		}
		out := map[string]kmsg.DescribeConfigsResponseResourceConfig{}
		for _, cfg := range r.Resources[0].Configs {
			out[cfg.Name] = cfg
		}
		return out
	}
	// v0 says IsDefault; v1 on, the source.
	isDefault := func(v int16, cfg kmsg.DescribeConfigsResponseResourceConfig) bool {
		if v == 0 {
			return cfg.IsDefault
		}
		return cfg.Source == kmsg.ConfigSourceDefaultConfig
	}
	for _, v := range []int16{0, 4} {
		got := describe(v, "adm7")
		if rm := got["retention.ms"]; *rm.Value != "60000" || isDefault(v, rm) {
			t.Fatalf("describe v%d: retention.ms %+v", v, rm)
		}
		if sb := got["segment.bytes"]; !sb.ReadOnly || !isDefault(v, sb) {
			t.Fatalf("describe v%d: segment.bytes %+v", v, sb)
		}
	}
	ia := kmsg.NewPtrIncrementalAlterConfigsRequest()
	ia.Version = 1
	ia.Resources = []kmsg.IncrementalAlterConfigsRequestResource{{ResourceType: resourceTopic, ResourceName: "adm7",
		Configs: []kmsg.IncrementalAlterConfigsRequestResourceConfig{{Name: "retention.bytes", Op: kmsg.IncrementalAlterConfigOpSet, Value: kmsg.StringPtr("1048576")},
			{Name: "retention.ms", Op: kmsg.IncrementalAlterConfigOpDelete}}}}
	if r := c.do(ia).(*kmsg.IncrementalAlterConfigsResponse); r.Resources[0].ErrorCode != 0 {
		t.Fatalf("incremental alter: %+v", r.Resources[0])
	}
	if got := describe(4, "adm7"); *got["retention.bytes"].Value != "1048576" || !isDefault(4, got["retention.ms"]) {
		t.Fatalf("after the incremental alter: %v %v", got["retention.bytes"], got["retention.ms"])
	}
	ia.Resources[0].Configs = []kmsg.IncrementalAlterConfigsRequestResourceConfig{{Name: "segment.bytes", Op: kmsg.IncrementalAlterConfigOpSet, Value: kmsg.StringPtr("4096")}}
	if r := c.do(ia).(*kmsg.IncrementalAlterConfigsResponse); r.Resources[0].ErrorCode != errInvalidConfig {
		t.Fatalf("altering segment.bytes: %d", r.Resources[0].ErrorCode)
	}
	ac := kmsg.NewPtrAlterConfigsRequest()
	ac.Version = 2
	ac.Resources = []kmsg.AlterConfigsRequestResource{{ResourceType: resourceTopic, ResourceName: "adm7",
		Configs: []kmsg.AlterConfigsRequestResourceConfig{{Name: "max.message.bytes", Value: kmsg.StringPtr("2048")}}}}
	if r := c.do(ac).(*kmsg.AlterConfigsResponse); r.Resources[0].ErrorCode != 0 {
		t.Fatalf("alter: %+v", r.Resources[0])
	}
	if got := describe(4, "adm7"); *got["max.message.bytes"].Value != "2048" || !isDefault(4, got["retention.bytes"]) {
		t.Fatalf("after the alter (a whole set): %v %v", got["max.message.bytes"], got["retention.bytes"])
	}
	for _, v := range []int16{0, 3} {
		cp := kmsg.NewPtrCreatePartitionsRequest()
		cp.Version, cp.TimeoutMillis = v, 5000
		cp.Topics = []kmsg.CreatePartitionsRequestTopic{{Topic: "adm0", Count: int32(3 + v)}}
		if r := c.do(cp).(*kmsg.CreatePartitionsResponse); r.Topics[0].ErrorCode != 0 {
			t.Fatalf("create partitions v%d: %+v", v, r.Topics[0])
		}
	}
	meta, err := e.h.Topic(eddy.TopicRef{Tenant: eddy.DefaultTenant, Name: "adm0"})
	if err != nil || meta.Partitions != 6 {
		t.Fatalf("adm0 after growing: %v %v", meta, err)
	}
	cp := kmsg.NewPtrCreatePartitionsRequest()
	cp.Topics = []kmsg.CreatePartitionsRequestTopic{{Topic: "adm0", Count: 2}}
	if r := c.do(cp).(*kmsg.CreatePartitionsResponse); r.Topics[0].ErrorCode != errInvalidPartitions {
		t.Fatalf("shrinking: %d", r.Topics[0].ErrorCode)
	}
	dcl := kmsg.NewPtrDescribeClusterRequest()
	dcl.Version = 1
	if r := c.do(dcl).(*kmsg.DescribeClusterResponse); r.ControllerID != 1 || len(r.Brokers) != 1 {
		t.Fatalf("describe cluster: %+v", r)
	}
	for _, v := range []int16{0, 5} {
		dt := kmsg.NewPtrDeleteTopicsRequest()
		dt.Version, dt.TimeoutMillis, dt.TopicNames = v, 5000, []string{"adm" + string(rune('0'+7*(v/5)))}
		if r := c.do(dt).(*kmsg.DeleteTopicsResponse); r.Topics[0].ErrorCode != 0 {
			t.Fatalf("delete v%d: %d", v, r.Topics[0].ErrorCode)
		}
	}
}

// TestDeleteRecordsRequest: DeleteRecords at both ends of its versions,
// on an empty partition (its high watermark is 0), past the high
// watermark, of a partition the topic does not have, and without the
// tenant's admin scope.
func TestDeleteRecordsRequest(t *testing.T) {
	e := newEnv(t)
	admin := e.login("default", e.token)
	ct := kmsg.NewPtrCreateTopicsRequest()
	ct.TimeoutMillis = 5000
	ct.Topics = []kmsg.CreateTopicsRequestTopic{{Topic: "dr", NumPartitions: 1, ReplicationFactor: 1}}
	if r := admin.do(ct).(*kmsg.CreateTopicsResponse); r.Topics[0].ErrorCode != 0 {
		t.Fatalf("create: %+v", r.Topics[0])
	}
	del := func(c *client, v int16, part int32, offset int64) kmsg.DeleteRecordsResponseTopicPartition {
		t.Helper()
		dr := kmsg.NewPtrDeleteRecordsRequest()
		dr.Version = v
		dr.Topics = []kmsg.DeleteRecordsRequestTopic{{Topic: "dr", Partitions: []kmsg.DeleteRecordsRequestTopicPartition{{Partition: part, Offset: offset}}}}
		return c.do(dr).(*kmsg.DeleteRecordsResponse).Topics[0].Partitions[0]
	}
	for _, v := range []int16{0, 2} {
		if r := del(admin, v, 0, 0); r.ErrorCode != 0 || r.LowWatermark != 0 {
			t.Fatalf("v%d: %+v", v, r)
		}
		if r := del(admin, v, 0, -1); r.ErrorCode != 0 || r.LowWatermark != 0 {
			t.Fatalf("v%d, to the high watermark: %+v", v, r)
		}
		if r := del(admin, v, 0, 1); r.ErrorCode != errOffsetOutOfRange || r.LowWatermark != -1 {
			t.Fatalf("v%d, past the high watermark: %+v", v, r)
		}
		if r := del(admin, v, 5, 0); r.ErrorCode != errUnknownTopicOrPartition {
			t.Fatalf("v%d, partition 5 of 1: %+v", v, r)
		}
	}
	producer := e.login("default", e.mint("default", "produce:dr", "consume:dr"))
	if r := del(producer, 2, 0, 0); r.ErrorCode != errTopicAuthorization {
		t.Fatalf("without admin: %+v", r)
	}
}
