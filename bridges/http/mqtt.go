package httpapi

import (
	"github.com/eddy-broker/eddy"
	"github.com/eddy-broker/eddy/tenants"
	"github.com/valyala/fasthttp"
)

// The MQTT listener as the API shows it: the live connections of a tenant
// (its admin) or of all (an operator's ?all=true), a kick, and a dry run
// of the tenant's topic mapping, as EMQX's rule tester.

func (s *Server) mqttConnections(ctx *fasthttp.RequestCtx, p *tenants.Principal) {
	tm, ok := s.scopedTenant(ctx, p, tenants.Admin, "listing MQTT connections")
	if !ok {
		return
	}
	if s.cfg.MQTTConnections == nil {
		writeJSON(ctx, 200, map[string]any{"connections": []any{}, "listener": "off"})
		return
	}
	t := tm.Name
	if ctx.QueryArgs().GetBool("all") && p.Operator() {
		t = ""
	}
	writeJSON(ctx, 200, map[string]any{"connections": s.cfg.MQTTConnections(t)})
}

func (s *Server) mqttKick(ctx *fasthttp.RequestCtx, p *tenants.Principal) {
	tm, ok := s.scopedTenant(ctx, p, tenants.Admin, "disconnecting MQTT clients")
	if !ok {
		return
	}
	client, _ := ctx.UserValue("client").(string)
	if s.cfg.MQTTKick == nil || !s.cfg.MQTTKick(tm.Name, client) {
		writeError(ctx, eddy.Errorf(eddy.CodeNotFound, "MQTT client %q of tenant %s is not connected to this node", client, tm.Name))
		return
	}
	ctx.SetStatusCode(fasthttp.StatusNoContent)
}

// mqttTest maps an MQTT topic name (and payload, for a key taken from it)
// as a publish of the tenant would be, without publishing.
func (s *Server) mqttTest(ctx *fasthttp.RequestCtx, p *tenants.Principal) {
	tm, ok := s.scopedTenant(ctx, p, tenants.Admin, "testing the MQTT mapping")
	if !ok {
		return
	}
	var req struct {
		Topic   string `json:"topic"`
		Payload string `json:"payload"`
	}
	if err := decodeStrict(ctx.PostBody(), &req); err != nil {
		writeError(ctx, err)
		return
	}
	ref, key, hasKey, err := tm.MQTT.Map(tm.Name, req.Topic, []byte(req.Payload))
	if err != nil {
		writeJSON(ctx, 200, map[string]any{"mqtt_topic": req.Topic, "refused": eddy.AsError(err)})
		return
	}
	out := map[string]any{"mqtt_topic": req.Topic, "topic": ref.Name, "key": nil}
	if hasKey {
		out["key"] = key
	}
	if _, err := s.b.Topic(ref); err != nil {
		out["topic_missing"] = true // a publish would be refused: no such topic
	}
	writeJSON(ctx, 200, out)
}
