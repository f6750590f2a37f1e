package mqtt

import (
	"strings"

	"github.com/eddy-broker/eddy"
)

// mapTopic maps an MQTT topic name to an Eddy topic of the tenant and a
// record key: "<topic>/<rest...>" is topic <topic> with key <rest>
// ("sensors/dev-17/temp" is topic sensors, key "dev-17/temp"); a single
// level is the topic with no key.
func mapTopic(tenant eddy.TenantID, name string) (eddy.TopicRef, string, error) {
	topic, rest, _ := strings.Cut(name, "/")
	if topic == "" || strings.HasPrefix(topic, "$") {
		return eddy.TopicRef{}, "", eddy.Errorf(eddy.CodeInvalid, "MQTT topic %q maps to no Eddy topic (the first level names the topic)", name)
	}
	if err := eddy.TopicName(topic).Validate(); err != nil {
		return eddy.TopicRef{}, "", eddy.Errorf(eddy.CodeInvalid, "MQTT topic %q: %s", name, eddy.AsError(err).Message)
	}
	return eddy.TopicRef{Tenant: tenant, Name: eddy.TopicName(topic)}, rest, nil
}
