package httpapi

import (
	"bytes"
	"net/netip"
	"strconv"

	"github.com/eddy-broker/eddy"
	"github.com/eddy-broker/eddy/multiraft/catalog"
	"github.com/eddy-broker/eddy/tenants"
	"github.com/valyala/fasthttp"
)

// Catalog is what authorization and routing read of the cluster's state.
type Catalog interface {
	Tenant(name eddy.TenantID) (*catalog.TenantMeta, error)
	Topic(ref eddy.TopicRef) (*catalog.TopicMeta, error)
	IsLocal(meta *catalog.TopicMeta, p eddy.Partition) bool
	Booting() bool
}

// authHandler is a handler that runs for an authenticated principal.
type authHandler func(ctx *fasthttp.RequestCtx, p *tenants.Principal)

// authed verifies the request's bearer token before h runs.
func (s *Server) authed(h authHandler) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		// The header's bytes are looked up in the verified-token cache as
		// they are (a string of them would be a copy of a few hundred
		// bytes a request).
		auth := ctx.Request.Header.Peek("Authorization")
		token, ok := bytes.CutPrefix(auth, []byte("Bearer "))
		if !ok {
			token = nil
			if len(auth) != 0 {
				s.unread(ctx)
				writeError(ctx, eddy.Errorf(eddy.CodeTokenMalformed, "the Authorization header must be \"Bearer <jwt>\""))
				return
			}
		}
		from, _ := netip.AddrFromSlice(ctx.RemoteIP())
		p, err := s.cfg.Verifier.VerifyFrom(bytes.TrimSpace(token), from.Unmap())
		if err != nil {
			s.unread(ctx)
			ctx.Response.Header.Set("WWW-Authenticate", `Bearer realm="eddy"`)
			writeError(ctx, err)
			return
		}
		if s.b.Booting() {
			s.unread(ctx)
			writeError(ctx, &eddy.Error{Code: eddy.CodeUnavailable, RetryAfterMs: 500,
				Message: "this node is starting and does not know its partitions' leaders yet; retry, or use another node"})
			return
		}
		hold, err := s.readBody(ctx, string(p.Tenant))
		if err != nil {
			writeError(ctx, err)
			return
		}
		defer hold.Release()
		h(ctx, p)
	}
}

// operatorOnly lets only operator tokens through; others get 403.
func (s *Server) operatorOnly(h fasthttp.RequestHandler) authHandler {
	return func(ctx *fasthttp.RequestCtx, p *tenants.Principal) {
		if !p.Operator() {
			writeError(ctx, eddy.Errorf(eddy.CodeForbidden, "this needs the operator scope"))
			return
		}
		h(ctx)
	}
}

// tenant is the tenant a request acts on: the path's, or the token's. A
// tenant the principal may not see is answered exactly like a tenant that
// does not exist, so other tenants' existence never leaks.
func (s *Server) tenant(ctx *fasthttp.RequestCtx, p *tenants.Principal) (eddy.TenantID, error) {
	id := p.Tenant
	if t, ok := ctx.UserValue("tenant").(string); ok {
		id = eddy.TenantID(t)
	}
	if !p.SeesTenant(id) || id.Validate() != nil {
		return "", tenantNotFound(id)
	}
	if _, err := s.b.Tenant(id); err != nil {
		return "", tenantNotFound(id)
	}
	return id, nil
}

func tenantNotFound(id eddy.TenantID) error {
	return eddy.Errorf(eddy.CodeNotFound, "tenant %s does not exist", id)
}

// topicRef resolves the route's topic and checks that p may do a on it.
// The scope is checked against the name before the topic is looked up, so a
// refusal says nothing about whether the topic exists.
func (s *Server) topicRef(ctx *fasthttp.RequestCtx, p *tenants.Principal, a tenants.Action) (eddy.TopicRef, error) {
	t, err := s.tenant(ctx, p)
	if err != nil {
		return eddy.TopicRef{}, err
	}
	name := eddy.TopicName(ctx.UserValue("topic").(string))
	if err := name.Validate(); err != nil {
		return eddy.TopicRef{}, eddy.Errorf(eddy.CodeNotFound, "topic %q does not exist", string(name))
	}
	if !p.Can(a, t, name) {
		return eddy.TopicRef{}, eddy.Errorf(eddy.CodeForbidden, "the token has no %s scope for topic %s", actionName[a], name)
	}
	return eddy.TopicRef{Tenant: t, Name: name}, nil
}

// topicMeta is the topic the route names, as topicRef checks it, read
// from the catalog.
func (s *Server) topicMeta(ctx *fasthttp.RequestCtx, p *tenants.Principal, a tenants.Action) (*catalog.TopicMeta, error) {
	ref, err := s.topicRef(ctx, p, a)
	if err != nil {
		return nil, err
	}
	return s.b.Topic(ref)
}

var actionName = map[tenants.Action]string{tenants.Produce: "produce", tenants.Consume: "consume",
	tenants.Describe: "produce or consume", tenants.Admin: "admin", tenants.Operate: "operator"}

// partitionRef is the topic and partition a partition route names.
func (s *Server) partitionRef(ctx *fasthttp.RequestCtx, p *tenants.Principal, a tenants.Action) (eddy.TopicRef, eddy.Partition, error) {
	ref, err := s.topicRef(ctx, p, a)
	if err != nil {
		return ref, 0, err
	}
	v, _ := ctx.UserValue("partition").(string)
	n, ok := parsePartition(v)
	if !ok {
		return ref, 0, eddy.Errorf(eddy.CodeNotFound, "partition %q does not exist", v)
	}
	if err := s.refuseForwardLoop(ctx, ref, n); err != nil {
		return ref, 0, err
	}
	return ref, n, nil
}

// parsePartition reads a partition number in its one spelling (no "+1",
// "01", negatives).
func parsePartition(v string) (eddy.Partition, bool) {
	n, err := strconv.ParseInt(v, 10, 32)
	if err != nil || n < 0 || strconv.FormatInt(n, 10) != v {
		return 0, false
	}
	return eddy.Partition(n), true
}

// ForwardedHeader marks a request one node forwarded to another; it is
// never forwarded again.
const ForwardedHeader = "Eddy-Forwarded"

// refuseForwardLoop answers 503 to a forwarded request for a partition this
// node does not hold (placement moved): forwarding it again could loop.
func (s *Server) refuseForwardLoop(ctx *fasthttp.RequestCtx, ref eddy.TopicRef, p eddy.Partition) error {
	if len(ctx.Request.Header.Peek(ForwardedHeader)) == 0 {
		return nil
	}
	meta, err := s.b.Topic(ref)
	if err != nil || p.Validate(meta.Partitions) != nil || s.b.IsLocal(meta, p) {
		return nil
	}
	return &eddy.Error{Code: eddy.CodeUnavailable, RetryAfterMs: 500, Message: "the partition moved off the node a request was forwarded to"}
}
