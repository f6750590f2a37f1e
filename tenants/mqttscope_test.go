package tenants

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestCoversFilter(t *testing.T) {
	for _, c := range []struct {
		pattern, filter string
		want            bool
	}{
		{"a/#", "a", true}, {"a/#", "a/b", true}, {"a/#", "a/+/c", true}, {"a/#", "a/#", true},
		{"a/+", "a/b", true}, {"a/+", "a/+", true}, {"a/+", "a/#", false}, {"a/+", "a/b/c", false}, {"a/+", "a", false},
		{"a/b", "a/b", true}, {"a/b", "a/+", false}, {"a/b", "a/b/c", false}, {"a/b", "a", false}, {"a/b", "#", false},
		{"#", "x/y", true}, {"+/b", "a/b", true}, {"+/b", "+/b", true}, {"+/b", "#", false},
		{"a/b/#", "a/+/c", false}, {"a//b", "a//b", true}, {"a//b", "a/x/b", false},
		{"a/b/#", "a", false}, {"a/b/#", "a/b", true}, {"", "", true}, {"", "a", false}, {"a/", "a", false}, {"a/", "a/", true},
	} {
		if got := CoversFilter(c.pattern, c.filter); got != c.want {
			t.Errorf("CoversFilter(%q, %q) = %v, want %v", c.pattern, c.filter, got, c.want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { CoversFilter("devices/dev-17/#", "devices/dev-17/cmd") }); n != 0 {
		t.Errorf("CoversFilter allocates %v times a call (it runs for every delivery)", n)
	}
}

func TestMQTTScopes(t *testing.T) {
	for _, bad := range []string{"mqtt-pub:", "mqtt-sub:$SYS/#", "mqtt-pub:a/#/b", "mqtt-sub:a+/b", "mqtt-pub:a/{sub}x",
		"mqtt-pub:{subject}", "mqtt-sub:a/\x00"} {
		if ValidateScopes([]string{bad}) == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	scopes := []string{"mqtt-pub:sensors/{sub}/#", "mqtt-sub:devices/{sub}/+", "mqtt-sub:broadcast/#"}
	if err := ValidateScopes(scopes); err != nil {
		t.Fatal(err)
	}
	p := &Principal{Tenant: "acme", Subject: "dev-17"}
	if err := p.setScopes(scopes, false); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(p.Scopes(), scopes) {
		t.Fatalf("Scopes() = %v, want them as granted", p.Scopes())
	}
	for topic, want := range map[string]bool{"sensors/dev-17/temp": true, "sensors/dev-17": true, "sensors/dev-18/temp": false,
		"devices/dev-17/cmd": false, "sensors": false} {
		if p.MQTTPublishes(topic) != want {
			t.Errorf("publish %s: %v", topic, !want)
		}
	}
	for filter, want := range map[string]bool{"devices/dev-17/cmd": true, "devices/dev-17/+": true, "devices/dev-17/#": false,
		"devices/+/cmd": false, "devices/dev-18/cmd": false, "broadcast/fw/v2": true, "#": false, "sensors/dev-17/temp": false} {
		if p.MQTTSubscribes(filter) != want {
			t.Errorf("subscribe %s: %v", filter, !want)
		}
	}
	// Nothing of this grants a whole topic, over any protocol.
	if p.Can(Produce, "acme", "sensors") || p.Can(Consume, "acme", "devices") || p.Can(Describe, "acme", "sensors") || p.Consumes() {
		t.Fatal("MQTT scopes granted an Eddy topic")
	}
	if p.Grants([]string{"mqtt-sub:devices/{sub}/+"}) {
		t.Fatal("a non-admin must not mint tokens")
	}
	admin := &Principal{Tenant: "acme"}
	admin.setScopes([]string{"admin"}, true)
	if !admin.Grants(scopes) {
		t.Fatal("an admin mints device tokens")
	}
	// A subject that is not one level gets nothing of a {sub} pattern:
	// dev-17/cmd must not reach devices/dev-17/cmd through devices/{sub}/#.
	for _, subject := range []string{"", "dev-17/cmd", "+", "#", "a\x00"} {
		q := &Principal{Tenant: "acme", Subject: subject}
		if err := q.setScopes([]string{"mqtt-sub:devices/{sub}/#", "mqtt-pub:devices/{sub}"}, false); err != nil {
			t.Fatal(err)
		}
		if q.MQTTSubscribes("devices/dev-17/cmd") || q.MQTTSubscribes("devices/"+subject) || q.MQTTPublishes("devices/"+subject) || q.HasMQTTSubscribe() {
			t.Errorf("subject %q reached past its level", subject)
		}
	}
}

func TestMQTTClientScopes(t *testing.T) {
	for _, bad := range []string{"mqtt-client:", "mqtt-client:[", "mqtt-client:{subject}", "mqtt-client:{sub"} {
		if ValidateScopes([]string{bad}) == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	free := &Principal{Tenant: "acme", Subject: "dev-17"}
	free.setScopes([]string{"mqtt-pub:a/{sub}"}, false)
	if !free.MQTTClientID("anything") {
		t.Fatal("a token without mqtt-client scopes connects under any client id")
	}
	for subject, ids := range map[string]map[string]bool{
		"dev-17": {"dev-17": true, "dev-17-cam": true, "dev-18": false, "dev-1": false, "": false},
		"dev*":   {"dev*": true, "dev*-cam": true, "dev-17": false, "devX": false}, // the subject's glob characters are its own
		"":       {"": false, "x": false, "-cam": false},                           // bound, and to nothing
	} {
		p := &Principal{Tenant: "acme", Subject: subject}
		if err := p.setScopes([]string{"mqtt-client:{sub}", "mqtt-client:{sub}-cam"}, false); err != nil {
			t.Fatal(err)
		}
		for id, want := range ids {
			if p.MQTTClientID(id) != want {
				t.Errorf("subject %q, client id %q: %v", subject, id, !want)
			}
		}
	}
}

// TestMintMQTTScopes: a token whose scopes name {sub} is minted only
// with a subject that can stand for it.
func TestMintMQTTScopes(t *testing.T) {
	f := newFixture(t)
	for subject, ok := range map[string]bool{"dev-17": true, "": false, "a/b": false, "+": false} {
		_, _, err := f.signer.Issue("acme", subject, []string{"mqtt-sub:devices/{sub}/#"}, time.Hour)
		if (err == nil) != ok {
			t.Errorf("mqtt-sub with subject %q: %v", subject, err)
		}
	}
	if _, _, err := f.signer.Issue("acme", "a/b", []string{"mqtt-client:{sub}"}, time.Hour); err != nil {
		t.Errorf("mqtt-client with subject a/b: %v", err)
	}
	if _, _, err := f.signer.Issue("acme", "", []string{"mqtt-client:{sub}"}, time.Hour); err == nil {
		t.Error("mqtt-client:{sub} minted without a subject")
	}
	if _, _, err := f.signer.Issue("acme", "", []string{"mqtt-sub:broadcast/#"}, time.Hour); err != nil {
		t.Errorf("a scope without {sub} needs no subject: %v", err)
	}
}

// FuzzCoversFilter: what a pattern covers, it matches. For any filter the
// pattern covers, the names the filter matches (its wildcards replaced by
// names, # also by nothing) all match the pattern; and for names
// (filters without wildcards) covering is matching, as MQTT's level by
// level comparison defines it (refMatch).
func FuzzCoversFilter(f *testing.F) {
	for _, s := range [][2]string{{"a/#", "a/+/c"}, {"a/+", "a/b"}, {"+/+", "x/#"}, {"#", "#"}, {"a//b", "a/+/b"}, {"a/b/#", "a/b"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, filter string) {
		if validFilter(pattern) != nil || validFilter(filter) != nil {
			return
		}
		if !strings.ContainsAny(filter, "+#") && CoversFilter(pattern, filter) != refMatch(pattern, filter) {
			t.Fatalf("CoversFilter(%q, %q) = %v, the reference %v", pattern, filter, !refMatch(pattern, filter), refMatch(pattern, filter))
		}
		if !CoversFilter(pattern, filter) {
			return
		}
		for _, fill := range []struct{ plus, hash string }{{"x", "y/z"}, {"", "q"}} {
			name := strings.ReplaceAll(filter, "+", fill.plus)
			if strings.HasSuffix(name, "/#") {
				for _, n := range []string{strings.TrimSuffix(name, "/#"), strings.TrimSuffix(name, "#") + fill.hash} {
					if !refMatch(pattern, n) {
						t.Fatalf("%q covers %q, yet does not match %q", pattern, filter, n)
					}
				}
			} else if name != "#" && !refMatch(pattern, name) {
				t.Fatalf("%q covers %q, yet does not match %q", pattern, filter, name)
			}
		}
	})
}

// refMatch is MQTT's matching of a name against a filter, level by level.
func refMatch(filter, name string) bool {
	f, n := strings.Split(filter, "/"), strings.Split(name, "/")
	for i, l := range f {
		if l == "#" {
			return true
		}
		if i >= len(n) || (l != "+" && l != n[i]) {
			return false
		}
	}
	return len(f) == len(n)
}
