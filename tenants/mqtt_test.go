package tenants

import (
	"testing"

	"github.com/eddy-broker/eddy"
)

func TestMQTTMapping(t *testing.T) {
	m := &MQTTMapping{Rules: []MQTTRule{
		{Filter: "factory/+/line/#", Topic: "lines", Key: "level:1"},
		{Filter: "meters/#", Key: "json:meter"},
		{Filter: "raw", Topic: "archive", Key: "topic"},
		{Filter: "quiet/+", Key: "none"},
	}}
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		m             *MQTTMapping
		name, payload string
		topic, key    string
		hasKey, bad   bool
	}{
		{nil, "sensors/dev-17/temp", "", "sensors", "dev-17/temp", true, false},
		{nil, "sensors", "", "sensors", "", false, false},
		{nil, "/x", "", "", "", false, true},
		{nil, "$SYS/broker", "", "", "", false, true},
		{nil, "bad topic!/x", "", "", "", false, true},
		{m, "factory/berlin/line/7/temp", "", "lines", "berlin", true, false},
		{m, "factory/berlin/hall", "", "factory", "berlin/hall", true, false}, // no rule matches: the default
		{m, "meters/x", `{"meter":"m-1","kwh":3}`, "meters", "m-1", true, false},
		{m, "meters/x", `{"meter":42}`, "meters", "42", true, false},
		{m, "meters/x", `not json`, "meters", "", false, false},
		{m, "raw", "", "archive", "raw", true, false},
		{m, "quiet/a", "", "quiet", "", false, false},
	} {
		ref, key, hasKey, err := c.m.Map("acme", c.name, []byte(c.payload))
		if (err != nil) != c.bad {
			t.Errorf("%q: %v", c.name, err)
			continue
		}
		if c.bad {
			if eddy.ErrorCode(err) != eddy.CodeInvalid {
				t.Errorf("%q: code %s", c.name, eddy.ErrorCode(err))
			}
			continue
		}
		if string(ref.Name) != c.topic || ref.Tenant != "acme" || key != c.key || hasKey != c.hasKey {
			t.Errorf("%q: %v %q %v, want %s %q %v", c.name, ref, key, hasKey, c.topic, c.key, c.hasKey)
		}
	}
	for _, bad := range []MQTTRule{{Filter: ""}, {Filter: "a/#/b"}, {Filter: "a+/b"}, {Filter: "a", Topic: "no spaces"}, {Filter: "a", Key: "level:x"}, {Filter: "a", Key: "json:"}, {Filter: "a", Key: "header"}} {
		if err := (&MQTTMapping{Rules: []MQTTRule{bad}}).Validate(); eddy.ErrorCode(err) != eddy.CodeInvalid {
			t.Errorf("%+v: %v", bad, err)
		}
	}
}

// The way back: a record's MQTT topic is its mqtt.topic header, else its
// topic's out rule, else topic/key; out rules are validated.
func TestMQTTOutName(t *testing.T) {
	m := &MQTTMapping{Out: []MQTTOutRule{{Topic: "commands", Name: "devices/{key}/cmd"}, {Topic: "fw", Name: "{topic}/all"}}}
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		m      *MQTTMapping
		topic  string
		header string
		key    string
		want   string
	}{
		{m, "commands", "", "dev-17", "devices/dev-17/cmd"},
		{m, "commands", "own/topic", "dev-17", "own/topic"},
		{m, "fw", "", "", "fw/all"},
		{m, "other", "", "k", "other/k"},
		{nil, "other", "", "", "other"},
	} {
		if got := c.m.OutName(eddy.TopicName(c.topic), c.header, []byte(c.key)); got != c.want {
			t.Errorf("%s %q %q: %q, want %q", c.topic, c.header, c.key, got, c.want)
		}
	}
	for _, bad := range []MQTTOutRule{{Topic: "", Name: "x"}, {Topic: "t", Name: ""}, {Topic: "t", Name: "a/+"}, {Topic: "t", Name: "a/#"}, {Topic: "t", Name: "$SYS/x"}} {
		if err := (&MQTTMapping{Out: []MQTTOutRule{bad}}).Validate(); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}
