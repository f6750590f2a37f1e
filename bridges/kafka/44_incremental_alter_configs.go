package kafka

import (
	"github.com/eddy-broker/eddy"
	"github.com/eddy-broker/eddy/tenants"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// IncrementalAlterConfigs, v0-1, and AlterConfigs (33), v0-2: change a
// topic's configs (retention.ms, retention.bytes, max.message.bytes,
// compression.type; segment.bytes and message.timestamp.type are fixed at
// creation: INVALID_CONFIG). Incremental: SET and DELETE (back to the
// default); APPEND and SUBTRACT apply to lists, which no topic config is
// (INVALID_REQUEST). AlterConfigs replaces the whole set: keys it does
// not name go back to their defaults. ValidateOnly checks without
// changing. Needs the tenant's admin scope; broker resources are not
// alterable (node settings live in its config file).

func init() {
	register(44, 0, 1, false, handleIncrementalAlterConfigs)
	register(33, 0, 2, false, handleAlterConfigs)
}

func handleIncrementalAlterConfigs(c *conn, req kmsg.Request) (kmsg.Response, error) {
	r := req.(*kmsg.IncrementalAlterConfigsRequest)
	resp := r.ResponseKind().(*kmsg.IncrementalAlterConfigsResponse)
	for _, rr := range r.Resources {
		out := kmsg.NewIncrementalAlterConfigsResponseResource()
		out.ResourceType, out.ResourceName = rr.ResourceType, rr.ResourceName
		changes := map[string]string{}
		var err error
		for _, cfg := range rr.Configs {
			switch cfg.Op {
			case kmsg.IncrementalAlterConfigOpSet:
				if cfg.Value == nil {
					err = eddy.Errorf(eddy.CodeInvalid, "config %s: SET needs a value", cfg.Name)
				} else {
					changes[cfg.Name] = *cfg.Value
				}
			case kmsg.IncrementalAlterConfigOpDelete:
				changes[cfg.Name] = ""
			default:
				err = eddy.Errorf(eddy.CodeInvalid, "config %s: APPEND and SUBTRACT apply to lists; no topic config is one", cfg.Name)
			}
		}
		if err == nil {
			err = c.alterConfigs(rr.ResourceType, rr.ResourceName, changes, false, r.ValidateOnly)
		}
		out.ErrorCode, out.ErrorMessage = configCode(err), errMessage(err)
		resp.Resources = append(resp.Resources, out)
	}
	return resp, nil
}

func handleAlterConfigs(c *conn, req kmsg.Request) (kmsg.Response, error) {
	r := req.(*kmsg.AlterConfigsRequest)
	resp := r.ResponseKind().(*kmsg.AlterConfigsResponse)
	for _, rr := range r.Resources {
		out := kmsg.NewAlterConfigsResponseResource()
		out.ResourceType, out.ResourceName = rr.ResourceType, rr.ResourceName
		changes := map[string]string{}
		for _, cfg := range rr.Configs {
			if cfg.Value != nil {
				changes[cfg.Name] = *cfg.Value
			}
		}
		err := c.alterConfigs(rr.ResourceType, rr.ResourceName, changes, true, r.ValidateOnly)
		out.ErrorCode, out.ErrorMessage = configCode(err), errMessage(err)
		resp.Resources = append(resp.Resources, out)
	}
	return resp, nil
}

// alterConfigs applies changes to a topic's configs; replace resets the
// keys it does not name.
func (c *conn) alterConfigs(typ kmsg.ConfigResourceType, name string, changes map[string]string, replace, validateOnly bool) error {
	if typ != resourceTopic {
		return eddy.Errorf(eddy.CodeInvalid, "only topic configs can be altered")
	}
	meta, err := c.topic(name, tenants.Describe)
	if err != nil {
		return err
	}
	if !c.p.Can(tenants.Admin, c.tenant, "") {
		return eddy.Errorf(eddy.CodeForbidden, "altering topics needs the tenant's admin scope")
	}
	if replace {
		for k := range meta.Config {
			if _, named := changes[k]; !named {
				changes[k] = ""
			}
		}
	}
	if validateOnly {
		return nil
	}
	ctx, cancel := c.ctx(c.l.cfg.RequestTimeout)
	defer cancel()
	_, err = c.l.b.AlterTopic(ctx, meta.Ref(), changes, 0)
	return err
}

// configCode is a config change's refusal: a value or key the catalog
// refused is INVALID_CONFIG.
func configCode(err error) int16 {
	if eddy.ErrorCode(err) == eddy.CodeInvalid {
		return errInvalidConfig
	}
	return kafkaCode(err)
}
