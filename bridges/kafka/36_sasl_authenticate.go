package kafka

import (
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// SaslAuthenticate, v0-2: the SASL token of the mechanism SaslHandshake
// chose. On success (v1+) SessionLifetimeMillis is the time to the
// token's expiry: the client re-authenticates before it (KIP-368), and a
// connection that has not is closed at its next request. A refusal is
// SASL_AUTHENTICATION_FAILED with the reason, then the connection closes
// (one guess per connection, each within the 10 s a connection has to
// authenticate).

func init() { register(36, 0, 2, true, handleSaslAuthenticate) }

func handleSaslAuthenticate(c *conn, req kmsg.Request) (kmsg.Response, error) {
	r := req.(*kmsg.SASLAuthenticateRequest)
	resp := r.ResponseKind().(*kmsg.SASLAuthenticateResponse)
	if c.mechanism == "" {
		resp.ErrorCode = errIllegalSASLState
		resp.ErrorMessage = errMessage(errNoHandshake)
		return resp, nil
	}
	if err := c.authenticate(r.SASLAuthBytes); err != nil {
		c.l.m.authFail.Inc()
		c.p = nil // a failed re-authentication ends the session too
		resp.ErrorCode, resp.ErrorMessage = errSASLAuthenticationFailed, errMessage(err)
		c.hangUp = true // as Kafka: the answer, then the connection closes
		return resp, nil
	}
	if !c.expires.IsZero() {
		resp.SessionLifetimeMillis = max(time.Until(c.expires).Milliseconds(), 1)
	}
	return resp, nil
}
