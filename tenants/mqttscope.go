package tenants

import (
	"path"
	"strings"

	"github.com/eddy-broker/eddy"
)

// MQTT scopes grant a device MQTT topics rather than Eddy topics, as
// EMQX's and mosquitto's ACLs do: mqtt-pub:<filter> lets it publish to
// the MQTT topics the filter matches (whatever Eddy topic the tenant's
// mapping sends them to), mqtt-sub:<filter> lets it subscribe to filters
// the filter covers and receive the messages whose MQTT topic it matches.
// A level {sub} stands for the token's subject, so one pattern gives each
// device its own topics:
//
//	mqtt-pub:sensors/{sub}/#   dev-17 publishes sensors/dev-17/temp, not sensors/dev-18/temp
//	mqtt-sub:devices/{sub}/#   dev-17 receives devices/dev-17/cmd, cannot subscribe devices/+/cmd
//
// They add to produce: and consume: (a token with consume:commands reads
// all of commands, over MQTT too), and grant nothing over HTTP or Kafka,
// which address whole topics: a device token holding only MQTT scopes
// reaches only its own MQTT topics, by any protocol.
//
// mqtt-client:<glob> binds the client ids a token may connect with
// (mqtt-client:{sub}: its subject's own), so no other device of the
// tenant takes over its connection or its persistent session. Unlike
// the others it narrows: a token without one connects under any id.
const (
	scopeMQTTPub    = "mqtt-pub:"
	scopeMQTTSub    = "mqtt-sub:"
	scopeMQTTClient = "mqtt-client:"
	subjectLevel    = "{sub}"
)

// validMQTTScope checks an MQTT scope's filter: MQTT's wildcards as whole
// levels (# last), {sub} only as a whole level, no $ topic, no NUL.
func validMQTTScope(s string) error {
	f := s[strings.IndexByte(s, ':')+1:]
	if f == "" || strings.HasPrefix(f, "$") || strings.IndexByte(f, 0) >= 0 {
		return eddy.Errorf(eddy.CodeInvalid, "scope %q: an MQTT topic filter, not empty, not a $ topic", s)
	}
	if err := validFilter(f); err != nil {
		return eddy.Errorf(eddy.CodeInvalid, "scope %q: %s", s, eddy.AsError(err).Message)
	}
	for _, l := range strings.Split(f, "/") {
		if l != subjectLevel && strings.ContainsAny(l, "{}") {
			return eddy.Errorf(eddy.CodeInvalid, "scope %q: {sub} must be a whole level", s)
		}
	}
	return nil
}

// mqttPattern is an MQTT scope's filter with {sub} replaced by subject;
// ok is false when the subject cannot be one level (empty, or holding /,
// + or #): such a pattern grants nothing, so no subject reaches past its
// own level.
func mqttPattern(filter, subject string) (string, bool) {
	if !strings.Contains(filter, subjectLevel) {
		return filter, true
	}
	if subject == "" || strings.ContainsAny(subject, "/+#\x00") {
		return "", false
	}
	levels := strings.Split(filter, "/")
	for i, l := range levels {
		if l == subjectLevel {
			levels[i] = subject
		}
	}
	return strings.Join(levels, "/"), true
}

// subjectFits refuses to mint a token whose scopes name {sub} with a
// subject that cannot stand for it: such a scope would grant nothing
// (mqttPattern, clientPattern), which a token's minter would learn only
// from its device's refusals.
func subjectFits(scopes []string, subject string) error {
	for _, s := range scopes {
		if !strings.Contains(s, subjectLevel) {
			continue
		}
		if strings.HasPrefix(s, scopeMQTTClient) {
			if subject == "" {
				return eddy.Errorf(eddy.CodeInvalid, "scope %q names {sub}: the token needs a subject", s)
			}
		} else if _, ok := mqttPattern(subjectLevel, subject); !ok {
			return eddy.Errorf(eddy.CodeInvalid, "scope %q names {sub}: the token needs a subject of one MQTT level (not empty, no /, + or #), got %q", s, subject)
		}
	}
	return nil
}

// CoversFilter reports whether every MQTT topic filter matches also
// matches pattern: a topic name (no wildcards) is covered when the
// pattern matches it. a/# covers a, a/b and a/+/c; a/+ covers a/b but
// not a/# or a/b/c. It allocates nothing: a subscriber's every delivery
// asks it.
func CoversFilter(pattern, filter string) bool {
	for {
		pl, prest, pmore := strings.Cut(pattern, "/")
		fl, frest, fmore := strings.Cut(filter, "/")
		switch {
		case pl == "#":
			return true
		case fl == "#":
			return false
		case pl != "+" && fl != pl: // a + in the filter is wider than a name
			return false
		}
		switch {
		case pmore && fmore:
			pattern, filter = prest, frest
		case pmore: // the filter ends: a/# covers a
			return prest == "#"
		default: // the pattern ends: so must the filter
			return !fmore
		}
	}
}

// MQTTPublishes reports whether the principal's MQTT scopes let it
// publish to the MQTT topic (its produce scopes are asked separately, of
// the Eddy topic the publish maps to).
func (p *Principal) MQTTPublishes(topic string) bool { return coveredBy(p.mqttPub, topic) }

// MQTTSubscribes reports whether the principal's MQTT scopes let it
// subscribe to filter (without $share/<group>/) and so receive the
// messages on the MQTT topics it matches; a topic name for a delivery.
func (p *Principal) MQTTSubscribes(filter string) bool { return coveredBy(p.mqttSub, filter) }

// HasMQTTSubscribe reports whether the principal has an mqtt-sub scope:
// what it may read is then not a set of Eddy topics.
func (p *Principal) HasMQTTSubscribe() bool { return len(p.mqttSub) > 0 }

func coveredBy(patterns []string, filter string) bool {
	for _, pat := range patterns {
		if CoversFilter(pat, filter) {
			return true
		}
	}
	return false
}

// validClientScope checks an mqtt-client scope: a glob (as path.Match's)
// in which {sub} may stand anywhere.
func validClientScope(s string) error {
	g := s[len(scopeMQTTClient):]
	if g == "" {
		return eddy.Errorf(eddy.CodeInvalid, "scope %q: an empty client id pattern", s)
	}
	if strings.ContainsAny(strings.ReplaceAll(g, subjectLevel, ""), "{}") {
		return eddy.Errorf(eddy.CodeInvalid, "scope %q: only {sub} may stand in braces", s)
	}
	if _, err := path.Match(strings.ReplaceAll(g, subjectLevel, "x"), "x"); err != nil {
		return eddy.Errorf(eddy.CodeInvalid, "scope %q: bad pattern: %v", s, err)
	}
	return nil
}

// clientPattern is an mqtt-client scope's glob with {sub} replaced by the
// subject, its glob characters escaped; ok is false for an empty subject.
func clientPattern(glob, subject string) (string, bool) {
	if !strings.Contains(glob, subjectLevel) {
		return glob, true
	}
	if subject == "" {
		return "", false
	}
	var esc strings.Builder
	for _, r := range subject {
		if strings.ContainsRune(`*?[]\`, r) {
			esc.WriteByte('\\')
		}
		esc.WriteRune(r)
	}
	return strings.ReplaceAll(glob, subjectLevel, esc.String()), true
}

// MQTTClientID reports whether the principal may connect over MQTT with
// client id id: any, unless it has mqtt-client scopes, then one of those.
func (p *Principal) MQTTClientID(id string) bool {
	if !p.mqttClientBound {
		return true
	}
	for _, g := range p.mqttClient {
		if ok, _ := path.Match(g, id); ok {
			return true
		}
	}
	return false
}
