package tenants

import (
	"encoding/json"
	"strconv"
	"strings"

	"github.com/eddy-broker/eddy"
)

// MQTTMapping is how a tenant's MQTT topics become Eddy topics and keys
// (the listener and the bridges use it). Rules are tried in order; the
// first whose filter matches decides. Without a match (or rules), the
// default applies: the first level names the topic, the rest is the key.
type MQTTMapping struct {
	Rules []MQTTRule `json:"rules,omitempty"`
	// AutoCreate creates a missing topic on the first publish to it, with
	// AutoCreatePartitions partitions (default 1) and replication factor
	// 1; the tenant's topic and partition limits apply. Off by default: a
	// publish to a missing topic is refused.
	AutoCreate           bool  `json:"auto_create,omitempty"`
	AutoCreatePartitions int32 `json:"auto_create_partitions,omitempty"`
	// Out names the MQTT topics records are delivered on to subscribers
	// (the reverse of Rules), by Eddy topic. A record published over MQTT
	// keeps its own topic (its mqtt.topic header); others take their
	// topic's rule, or else <topic>/<key> (<topic> without a key).
	Out []MQTTOutRule `json:"out,omitempty"`
}

// MQTTOutRule is the MQTT topic the records of an Eddy topic go out on: a
// template in which {topic} is the Eddy topic and {key} the record's key
// (empty without one), e.g. devices/{key}/cmd.
type MQTTOutRule struct {
	Topic string `json:"topic"`
	Name  string `json:"name"`
}

// MQTTRule maps the MQTT topics its filter matches.
type MQTTRule struct {
	// Filter is an MQTT topic filter: + matches one level, # the rest.
	Filter string `json:"filter"`
	// Topic is the Eddy topic; empty: the MQTT topic's first level.
	Topic string `json:"topic,omitempty"`
	// Key is where the record key comes from: "rest" (default: the levels
	// after the first), "topic" (the whole MQTT topic), "level:N" (level
	// N, from 0), "json:FIELD" (a top-level field of the JSON payload;
	// no key when the payload is not JSON or lacks it), or "none".
	Key string `json:"key,omitempty"`
}

// MaxMQTTRules bounds a tenant's rules.
const MaxMQTTRules = 64

// Validate checks the rules.
func (m *MQTTMapping) Validate() error {
	if len(m.Rules) > MaxMQTTRules || len(m.Out) > MaxMQTTRules {
		return eddy.Errorf(eddy.CodeInvalid, "at most %d rules and %d out rules, got %d and %d", MaxMQTTRules, MaxMQTTRules, len(m.Rules), len(m.Out))
	}
	for i, r := range m.Out {
		if err := eddy.TopicName(r.Topic).Validate(); err != nil {
			return eddy.Errorf(eddy.CodeInvalid, "out rule %d: %s", i, eddy.AsError(err).Message)
		}
		if r.Name == "" || strings.ContainsAny(r.Name, "+#\x00") || strings.HasPrefix(r.Name, "$") || len(r.Name) > 1024 {
			return eddy.Errorf(eddy.CodeInvalid, "out rule %d: name %q must be an MQTT topic name (no wildcards, not $, at most 1,024 bytes)", i, r.Name)
		}
	}
	if m.AutoCreatePartitions < 0 || m.AutoCreatePartitions > 1000 {
		return eddy.Errorf(eddy.CodeInvalid, "auto_create_partitions must be 1 to 1000")
	}
	for i, r := range m.Rules {
		if err := validFilter(r.Filter); err != nil {
			return eddy.Errorf(eddy.CodeInvalid, "rule %d: %s", i, err.Error())
		}
		if r.Topic != "" {
			if err := eddy.TopicName(r.Topic).Validate(); err != nil {
				return eddy.Errorf(eddy.CodeInvalid, "rule %d: %s", i, eddy.AsError(err).Message)
			}
		}
		switch k := r.Key; {
		case k == "", k == "rest", k == "topic", k == "none":
		case strings.HasPrefix(k, "level:"):
			if n, err := strconv.Atoi(k[len("level:"):]); err != nil || n < 0 {
				return eddy.Errorf(eddy.CodeInvalid, "rule %d: key %q: level:N with N from 0", i, k)
			}
		case strings.HasPrefix(k, "json:") && len(k) > len("json:"):
		default:
			return eddy.Errorf(eddy.CodeInvalid, "rule %d: key %q: use rest, topic, level:N, json:FIELD or none", i, k)
		}
	}
	return nil
}

func validFilter(f string) error {
	if f == "" {
		return eddy.Errorf(eddy.CodeInvalid, "an empty filter")
	}
	levels := strings.Split(f, "/")
	for i, l := range levels {
		if l == "#" && i != len(levels)-1 {
			return eddy.Errorf(eddy.CodeInvalid, "filter %q: # must be the last level", f)
		}
		if l != "#" && l != "+" && strings.ContainsAny(l, "#+") {
			return eddy.Errorf(eddy.CodeInvalid, "filter %q: + and # must be whole levels", f)
		}
	}
	return nil
}

// MatchFilter reports whether an MQTT topic name matches a filter
// (+ and # wildcards): the filter covers the name (mqttscope.go).
func MatchFilter(filter, name string) bool { return CoversFilter(filter, name) }

// OutName is the MQTT topic a record of topic goes out on, given its
// mqtt.topic header (mqttTopic, empty if none) and key: the header, else
// the topic's out rule, else topic/key (topic without a key). A nil
// mapping is the default.
func (m *MQTTMapping) OutName(topic eddy.TopicName, mqttTopic string, key []byte) string {
	if mqttTopic != "" {
		return mqttTopic
	}
	if m != nil {
		for _, r := range m.Out {
			if r.Topic == string(topic) {
				return strings.NewReplacer("{topic}", string(topic), "{key}", string(key)).Replace(r.Name)
			}
		}
	}
	if len(key) > 0 {
		return string(topic) + "/" + string(key)
	}
	return string(topic)
}

// Map maps an MQTT topic name (and, for a json: key, the payload) to an
// Eddy topic of the tenant and a key; ok is false for no key. A nil
// mapping is the default.
func (m *MQTTMapping) Map(tenant eddy.TenantID, name string, payload []byte) (ref eddy.TopicRef, key string, hasKey bool, err error) {
	first, rest, _ := strings.Cut(name, "/")
	topic, keyFrom := first, "rest"
	if m != nil {
		for _, r := range m.Rules {
			if MatchFilter(r.Filter, name) {
				if r.Topic != "" {
					topic = r.Topic
				}
				if r.Key != "" {
					keyFrom = r.Key
				}
				break
			}
		}
	}
	if topic == "" || strings.HasPrefix(topic, "$") {
		return ref, "", false, eddy.Errorf(eddy.CodeInvalid, "MQTT topic %q maps to no Eddy topic (the first level names the topic)", name)
	}
	if err := eddy.TopicName(topic).Validate(); err != nil {
		return ref, "", false, eddy.Errorf(eddy.CodeInvalid, "MQTT topic %q: %s", name, eddy.AsError(err).Message)
	}
	ref = eddy.TopicRef{Tenant: tenant, Name: eddy.TopicName(topic)}
	switch {
	case keyFrom == "rest":
		return ref, rest, rest != "", nil
	case keyFrom == "topic":
		return ref, name, true, nil
	case keyFrom == "none":
		return ref, "", false, nil
	case strings.HasPrefix(keyFrom, "level:"):
		n, _ := strconv.Atoi(keyFrom[len("level:"):])
		levels := strings.Split(name, "/")
		if n < len(levels) {
			return ref, levels[n], true, nil
		}
		return ref, "", false, nil
	case strings.HasPrefix(keyFrom, "json:"):
		if payload == nil {
			return ref, "", false, nil // resolving the topic only (ACL)
		}
		var obj map[string]json.RawMessage
		if json.Unmarshal(payload, &obj) != nil {
			return ref, "", false, nil
		}
		raw, ok := obj[keyFrom[len("json:"):]]
		if !ok || string(raw) == "null" {
			return ref, "", false, nil
		}
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return ref, s, true, nil
		}
		return ref, string(raw), true, nil
	}
	return ref, rest, rest != "", nil
}
