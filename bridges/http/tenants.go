package httpapi

import (
	"context"
	"time"

	"github.com/eddy-broker/eddy/multiraft/catalog"

	"github.com/eddy-broker/eddy"
	"github.com/eddy-broker/eddy/multiraft"
	"github.com/eddy-broker/eddy/tenants"
	"github.com/valyala/fasthttp"
)

// TenantAdmin manages tenants, their quotas, keys and MQTT mapping.
type TenantAdmin interface {
	CreateTenant(ctx context.Context, name eddy.TenantID, q tenants.Quotas) (*catalog.TenantMeta, error)
	SetQuotas(ctx context.Context, name eddy.TenantID, q tenants.Quotas) (*catalog.TenantMeta, error)
	DeleteTenant(ctx context.Context, name eddy.TenantID, force bool) error
	Tenants() []*catalog.TenantMeta
	Usage(name eddy.TenantID) multiraft.TenantUsage
	AddKey(ctx context.Context, k *tenants.Key) error
	RemoveKey(ctx context.Context, tenant eddy.TenantID, kid string) error
	Keys(tenant eddy.TenantID) []tenants.Key
	SetMQTTMapping(ctx context.Context, name eddy.TenantID, m *tenants.MQTTMapping) (*catalog.TenantMeta, error)
}

type tenantJSON struct {
	Name      string                 `json:"name"`
	Quotas    tenants.Quotas         `json:"quotas"`
	Usage     *multiraft.TenantUsage `json:"usage,omitempty"`
	CreatedMs int64                  `json:"created_ms"`
	MQTT      *tenants.MQTTMapping   `json:"mqtt,omitempty"`
}

func (s *Server) tenantJSON(t *catalog.TenantMeta, usage bool) tenantJSON {
	tj := tenantJSON{Name: string(t.Name), Quotas: t.Quotas, CreatedMs: t.CreatedMs, MQTT: t.MQTT}
	if usage {
		u := s.b.Usage(t.Name)
		tj.Usage = &u
	}
	return tj
}

func (s *Server) createTenant(ctx *fasthttp.RequestCtx, p *tenants.Principal) {
	if !p.Operator() {
		writeError(ctx, eddy.Errorf(eddy.CodeForbidden, "creating tenants needs the operator scope"))
		return
	}
	// Quotas not named in the request keep the node's defaults; a quota
	// given as 0 is unlimited.
	req := struct {
		Name   string         `json:"name"`
		Quotas tenants.Quotas `json:"quotas"`
	}{Quotas: *s.defaults.Load()}
	if err := decodeStrict(ctx.PostBody(), &req); err != nil {
		writeError(ctx, err)
		return
	}
	c, cancel := s.reqContext(s.cfg.RequestTimeout, false)
	defer cancel()
	t, err := s.b.CreateTenant(c, eddy.TenantID(req.Name), req.Quotas)
	if err != nil {
		writeError(ctx, err)
		return
	}
	writeJSON(ctx, fasthttp.StatusCreated, s.tenantJSON(t, false))
}

func (s *Server) listTenants(ctx *fasthttp.RequestCtx, p *tenants.Principal) {
	out := []tenantJSON{}
	for _, t := range s.b.Tenants() {
		if p.SeesTenant(t.Name) {
			out = append(out, s.tenantJSON(t, false))
		}
	}
	writeJSON(ctx, 200, map[string]any{"tenants": out})
}

// scopedTenant resolves the path's tenant for a request that needs action
// a on the tenant as a whole (Admin within it, or Operate), answering the
// error itself when it cannot proceed.
func (s *Server) scopedTenant(ctx *fasthttp.RequestCtx, p *tenants.Principal, a tenants.Action, what string) (*catalog.TenantMeta, bool) {
	t, err := s.tenant(ctx, p)
	if err != nil {
		writeError(ctx, err)
		return nil, false
	}
	if !p.Can(a, t, "") {
		writeError(ctx, eddy.Errorf(eddy.CodeForbidden, "%s needs the %s scope", what, actionName[a]))
		return nil, false
	}
	tm, err := s.b.Tenant(t)
	if err != nil {
		writeError(ctx, err)
		return nil, false
	}
	return tm, true
}

func (s *Server) describeTenant(ctx *fasthttp.RequestCtx, p *tenants.Principal) {
	if tm, ok := s.scopedTenant(ctx, p, tenants.Admin, "describing a tenant"); ok {
		writeJSON(ctx, 200, s.tenantJSON(tm, true))
	}
}

func (s *Server) setQuotas(ctx *fasthttp.RequestCtx, p *tenants.Principal) {
	tm, ok := s.scopedTenant(ctx, p, tenants.Operate, "setting quotas")
	if !ok {
		return
	}
	var req struct {
		Quotas tenants.Quotas `json:"quotas"`
	}
	if err := decodeStrict(ctx.PostBody(), &req); err != nil {
		writeError(ctx, err)
		return
	}
	c, cancel := s.reqContext(s.cfg.RequestTimeout, false)
	defer cancel()
	tm, err := s.b.SetQuotas(c, tm.Name, req.Quotas)
	if err != nil {
		writeError(ctx, err)
		return
	}
	writeJSON(ctx, 200, s.tenantJSON(tm, true))
}

func (s *Server) deleteTenant(ctx *fasthttp.RequestCtx, p *tenants.Principal) {
	tm, ok := s.scopedTenant(ctx, p, tenants.Operate, "deleting tenants")
	if !ok {
		return
	}
	c, cancel := s.reqContext(s.cfg.RequestTimeout, false)
	defer cancel()
	if err := s.b.DeleteTenant(c, tm.Name, string(ctx.QueryArgs().Peek("force")) == "true"); err != nil {
		writeError(ctx, err)
		return
	}
	s.cfg.Limiter.Forget(tm.Name)
	ctx.SetStatusCode(fasthttp.StatusNoContent)
}

func (s *Server) issueToken(ctx *fasthttp.RequestCtx, p *tenants.Principal) {
	tm, ok := s.scopedTenant(ctx, p, tenants.Admin, "minting tokens")
	if !ok {
		return
	}
	var req struct {
		Scopes     []string `json:"scopes"`
		TTLSeconds int64    `json:"ttl_seconds"`
		Subject    string   `json:"subject"`
	}
	if err := decodeStrict(ctx.PostBody(), &req); err != nil {
		writeError(ctx, err)
		return
	}
	if req.TTLSeconds == 0 {
		req.TTLSeconds = 3600
	}
	if err := tenants.ValidateScopes(req.Scopes); err != nil {
		writeError(ctx, err)
		return
	}
	if !p.Grants(req.Scopes) {
		writeError(ctx, eddy.Errorf(eddy.CodeForbidden, "a token cannot grant scopes its issuer does not hold"))
		return
	}
	if s.cfg.Signer == nil || s.cfg.Signer() == nil {
		writeError(ctx, eddy.Errorf(eddy.CodeUnavailable, "this node cannot sign tokens yet"))
		return
	}
	tok, exp, err := s.cfg.Signer().Issue(tm.Name, req.Subject, req.Scopes, time.Duration(req.TTLSeconds)*time.Second)
	if err != nil {
		writeError(ctx, err)
		return
	}
	writeJSON(ctx, fasthttp.StatusCreated, map[string]any{"token": tok, "tenant": tm.Name, "scopes": req.Scopes, "expires_at": exp.UTC().Format(time.RFC3339)})
}

func (s *Server) addKey(ctx *fasthttp.RequestCtx, p *tenants.Principal) {
	tm, ok := s.scopedTenant(ctx, p, tenants.Admin, "registering keys")
	if !ok {
		return
	}
	var req struct {
		Kid          string `json:"kid"`
		Alg          string `json:"alg"`
		PublicKeyPEM string `json:"public_key_pem"`
	}
	if err := decodeStrict(ctx.PostBody(), &req); err != nil {
		writeError(ctx, err)
		return
	}
	k, err := tenants.ParseKey(req.Kid, tm.Name, req.Alg, req.PublicKeyPEM)
	if err != nil {
		writeError(ctx, err)
		return
	}
	c, cancel := s.reqContext(s.cfg.RequestTimeout, false)
	defer cancel()
	if err := s.b.AddKey(c, k); err != nil {
		writeError(ctx, err)
		return
	}
	writeJSON(ctx, fasthttp.StatusCreated, map[string]string{"kid": k.ID, "alg": k.Alg, "tenant": string(k.Tenant)})
}

func (s *Server) listKeys(ctx *fasthttp.RequestCtx, p *tenants.Principal) {
	tm, ok := s.scopedTenant(ctx, p, tenants.Admin, "listing keys")
	if !ok {
		return
	}
	keys := s.b.Keys(tm.Name)
	if keys == nil {
		keys = []tenants.Key{}
	}
	writeJSON(ctx, 200, map[string]any{"keys": keys})
}

func (s *Server) removeKey(ctx *fasthttp.RequestCtx, p *tenants.Principal) {
	tm, ok := s.scopedTenant(ctx, p, tenants.Admin, "removing keys")
	if !ok {
		return
	}
	kid, _ := ctx.UserValue("kid").(string)
	c, cancel := s.reqContext(s.cfg.RequestTimeout, false)
	defer cancel()
	if err := s.b.RemoveKey(c, tm.Name, kid); err != nil {
		writeError(ctx, err)
		return
	}
	ctx.SetStatusCode(fasthttp.StatusNoContent)
}

// setMQTT replaces the tenant's MQTT topic mapping (DELETE: the default).
func (s *Server) setMQTT(ctx *fasthttp.RequestCtx, p *tenants.Principal) {
	tm, ok := s.scopedTenant(ctx, p, tenants.Admin, "setting the MQTT mapping")
	if !ok {
		return
	}
	var m *tenants.MQTTMapping
	if string(ctx.Method()) == fasthttp.MethodPut {
		m = &tenants.MQTTMapping{}
		if err := decodeStrict(ctx.PostBody(), m); err != nil {
			writeError(ctx, err)
			return
		}
	}
	c, cancel := s.reqContext(s.cfg.RequestTimeout, false)
	defer cancel()
	t, err := s.b.SetMQTTMapping(c, tm.Name, m)
	if err != nil {
		writeError(ctx, err)
		return
	}
	writeJSON(ctx, 200, s.tenantJSON(t, false))
}
