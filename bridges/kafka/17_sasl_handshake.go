package kafka

import "github.com/twmb/franz-go/pkg/kmsg"

// SaslHandshake, v0-1: the client names its mechanism. Eddy offers PLAIN
// (username: the tenant, password: a JWT of it) and OAUTHBEARER (the same
// JWT, the tenant as authzid or from the token). The list is in every
// answer, also on success (kafkajs reads it). After v0 the token follows
// as a bare frame; after v1 in SaslAuthenticate. Served before
// authentication, and again to re-authenticate (KIP-368).

var mechanisms = []string{"PLAIN", "OAUTHBEARER"}

func init() { register(17, 0, 1, true, handleSaslHandshake) }

func handleSaslHandshake(c *conn, req kmsg.Request) (kmsg.Response, error) {
	r := req.(*kmsg.SASLHandshakeRequest)
	resp := r.ResponseKind().(*kmsg.SASLHandshakeResponse)
	resp.SupportedMechanisms = mechanisms
	c.mechanism = ""
	for _, m := range mechanisms {
		if r.Mechanism == m {
			c.mechanism = m
		}
	}
	if c.mechanism == "" {
		resp.ErrorCode = errUnsupportedSASLMechanism
		return resp, nil
	}
	c.rawSASL = r.Version == 0
	return resp, nil
}
