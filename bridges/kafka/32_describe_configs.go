package kafka

import (
	"maps"
	"slices"

	"github.com/eddy-broker/eddy/multiraft/catalog"
	"github.com/eddy-broker/eddy/tenants"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeConfigs, v0-4: a topic's configs by Kafka's names, each marked
// as set on the topic (DYNAMIC_TOPIC_CONFIG) or Eddy's default
// (DEFAULT_CONFIG); segment.bytes and message.timestamp.type are read-only
// (they are fixed at creation). A broker resource is described with no
// configs (they are node settings, not Kafka's). Needs any scope on the
// topic.

func init() { register(32, 0, 4, false, handleDescribeConfigs) }

const (
	resourceTopic  = 2
	resourceBroker = 4
)

func handleDescribeConfigs(c *conn, req kmsg.Request) (kmsg.Response, error) {
	r := req.(*kmsg.DescribeConfigsRequest)
	resp := r.ResponseKind().(*kmsg.DescribeConfigsResponse)
	for _, rr := range r.Resources {
		out := kmsg.NewDescribeConfigsResponseResource()
		out.ResourceType, out.ResourceName = rr.ResourceType, rr.ResourceName
		switch rr.ResourceType {
		case resourceBroker:
		case resourceTopic:
			meta, err := c.topic(rr.ResourceName, tenants.Describe)
			if err != nil {
				out.ErrorCode, out.ErrorMessage = kafkaCode(err), errMessage(err)
				break
			}
			eff := meta.EffectiveConfig()
			for _, name := range slices.Sorted(maps.Keys(eff)) {
				if rr.ConfigNames != nil && !slices.Contains(rr.ConfigNames, name) {
					continue
				}
				cfg := kmsg.NewDescribeConfigsResponseResourceConfig()
				cfg.Name, cfg.Value = name, kmsg.StringPtr(eff[name])
				cfg.ReadOnly = name == catalog.ConfSegmentBytes || name == catalog.ConfSegmentMs || name == catalog.ConfTimestampType
				_, set := meta.Config[name]
				cfg.IsDefault = !set
				cfg.Source = kmsg.ConfigSourceDefaultConfig
				if set {
					cfg.Source = kmsg.ConfigSourceDynamicTopicConfig
				}
				cfg.ConfigType = kmsg.ConfigTypeString
				out.Configs = append(out.Configs, cfg)
			}
		default:
			out.ErrorCode = errInvalidRequest
		}
		resp.Resources = append(resp.Resources, out)
	}
	return resp, nil
}
