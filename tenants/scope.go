package tenants

import (
	"path"
	"strings"
	"time"

	"github.com/eddy-broker/eddy"
)

// Scopes.
const (
	ScopeOperator = "operator" // the whole cluster: tenants, any tenant's topics
	ScopeAdmin    = "admin"    // everything within the token's tenant
	scopeProduce  = "produce:"
	scopeConsume  = "consume:"
)

// Action is what a request wants to do.
type Action int

const (
	// Produce records to a topic.
	Produce Action = iota
	// Consume a topic's records (fetch, offsets, groups, tail).
	Consume
	// Describe a topic (any scope that covers it).
	Describe
	// Admin: create or delete topics, mint tokens, manage keys in the tenant.
	Admin
	// Operate the cluster: tenants, quotas, any tenant.
	Operate
)

// Principal is who a verified token speaks for.
type Principal struct {
	Tenant   eddy.TenantID
	Subject  string
	KeyID    string
	Expires  time.Time
	IssuedAt time.Time
	// Incarnation is the tenant incarnation an operator-signed token was
	// issued for (0 for tokens a tenant's key signed, and older tokens).
	Incarnation int64
	key         *Key // the key that verified it, for Recheck
	operator    bool
	admin       bool
	produce     []string // topic globs
	consume     []string
	mqttScopes  []string // mqtt-pub:, mqtt-sub: and mqtt-client: as granted (mqttscope.go)
	mqttPub     []string // their filters, {sub} replaced
	mqttSub     []string
	// mqttClient are the client id globs of its mqtt-client: scopes,
	// {sub} replaced; mqttClientBound: it has such scopes (even if none
	// applies to its subject).
	mqttClient      []string
	mqttClientBound bool
}

const scopeKinds = "produce:<glob>, consume:<glob>, mqtt-pub:<filter>, mqtt-sub:<filter>, mqtt-client:<glob>, admin, operator"

// ValidateScopes checks scope syntax.
func ValidateScopes(scopes []string) error {
	if len(scopes) == 0 {
		return eddy.Errorf(eddy.CodeInvalid, "a token needs at least one scope (%s)", scopeKinds)
	}
	for _, s := range scopes {
		switch {
		case s == ScopeOperator, s == ScopeAdmin:
		case strings.HasPrefix(s, scopeProduce), strings.HasPrefix(s, scopeConsume):
			g := s[strings.IndexByte(s, ':')+1:]
			if g == "" {
				return eddy.Errorf(eddy.CodeInvalid, "scope %q has an empty topic pattern", s)
			}
			if _, err := path.Match(g, "x"); err != nil {
				return eddy.Errorf(eddy.CodeInvalid, "scope %q: bad pattern: %v", s, err)
			}
		case strings.HasPrefix(s, scopeMQTTPub), strings.HasPrefix(s, scopeMQTTSub):
			if err := validMQTTScope(s); err != nil {
				return err
			}
		case strings.HasPrefix(s, scopeMQTTClient):
			if err := validClientScope(s); err != nil {
				return err
			}
		default:
			return eddy.Errorf(eddy.CodeInvalid, "unknown scope %q (use %s)", s, scopeKinds)
		}
	}
	return nil
}

func (p *Principal) setScopes(scopes []string, operatorKey bool) error {
	if err := ValidateScopes(scopes); err != nil {
		return &eddy.Error{Code: eddy.CodeTokenMalformed, Message: "scopes: " + eddy.AsError(err).Message}
	}
	for _, s := range scopes {
		switch {
		case s == ScopeOperator:
			if !operatorKey {
				return eddy.Errorf(eddy.CodeTokenTenantMismatch, "a tenant's key cannot grant the operator scope")
			}
			p.operator = true
		case s == ScopeAdmin:
			p.admin = true
		case strings.HasPrefix(s, scopeProduce):
			p.produce = append(p.produce, s[len(scopeProduce):])
		case strings.HasPrefix(s, scopeConsume):
			p.consume = append(p.consume, s[len(scopeConsume):])
		case strings.HasPrefix(s, scopeMQTTPub), strings.HasPrefix(s, scopeMQTTSub):
			p.mqttScopes = append(p.mqttScopes, s)
			pat, ok := mqttPattern(s[strings.IndexByte(s, ':')+1:], p.Subject)
			switch {
			case !ok:
			case strings.HasPrefix(s, scopeMQTTPub):
				p.mqttPub = append(p.mqttPub, pat)
			default:
				p.mqttSub = append(p.mqttSub, pat)
			}
		case strings.HasPrefix(s, scopeMQTTClient):
			p.mqttScopes, p.mqttClientBound = append(p.mqttScopes, s), true
			if g, ok := clientPattern(s[len(scopeMQTTClient):], p.Subject); ok {
				p.mqttClient = append(p.mqttClient, g)
			}
		}
	}
	return nil
}

// Scopes are the principal's scopes, as its token granted them.
func (p *Principal) Scopes() []string {
	var out []string
	if p.operator {
		out = append(out, ScopeOperator)
	}
	if p.admin {
		out = append(out, ScopeAdmin)
	}
	for _, g := range p.produce {
		out = append(out, scopeProduce+g)
	}
	for _, g := range p.consume {
		out = append(out, scopeConsume+g)
	}
	return append(out, p.mqttScopes...)
}

// Operator reports whether the principal operates the cluster.
func (p *Principal) Operator() bool { return p.operator }

// SeesTenant reports whether the principal may see anything of tenant t.
// A principal that does not is answered "not found", never "forbidden", so
// other tenants' existence does not leak.
func (p *Principal) SeesTenant(t eddy.TenantID) bool { return p.operator || p.Tenant == t }

// Can reports whether the principal may do a on topic (empty for actions on
// the tenant as a whole) of tenant t.
func (p *Principal) Can(a Action, t eddy.TenantID, topic eddy.TopicName) bool {
	if p.operator {
		return true
	}
	if p.Tenant != t {
		return false
	}
	switch a {
	case Operate:
		return false
	case Admin:
		return p.admin
	case Produce:
		return p.admin || matchAny(p.produce, topic)
	case Consume:
		return p.admin || matchAny(p.consume, topic)
	case Describe:
		return p.admin || matchAny(p.produce, topic) || matchAny(p.consume, topic)
	}
	return false
}

// Consumes reports whether the principal may consume some topic.
func (p *Principal) Consumes() bool { return p.operator || p.admin || len(p.consume) > 0 }

// Grants reports whether the principal holds every one of scopes, so that
// a token it mints never has more power than itself.
func (p *Principal) Grants(scopes []string) bool {
	if p.operator {
		return true
	}
	for _, s := range scopes {
		switch {
		case s == ScopeOperator:
			return false
		default: // admin, produce:, consume:, mqtt-pub:, mqtt-sub:
			if !p.admin {
				return false
			}
		}
	}
	return true
}

func matchAny(globs []string, topic eddy.TopicName) bool {
	for _, g := range globs {
		if ok, _ := path.Match(g, string(topic)); ok {
			return true
		}
	}
	return false
}
