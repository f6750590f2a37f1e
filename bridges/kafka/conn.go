package kafka

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/eddy-broker/eddy"
	"github.com/eddy-broker/eddy/internal/bufpool"
	"github.com/eddy-broker/eddy/internal/logkey"
	"github.com/eddy-broker/eddy/internal/membudget"
	"github.com/eddy-broker/eddy/tenants"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// conn is one client connection. Its requests are answered in order; a
// produce request is served while the next ones are read (pipeline.go),
// any other alone, as Kafka serves them.
type conn struct {
	l      *Listener
	nc     net.Conn
	br     *bufio.Reader
	wbuf   []byte
	remote string
	// clientID is the client id of the connection's last request.
	clientID string

	// Authentication (SASL). p is nil until it succeeds.
	p         *tenants.Principal
	tenant    eddy.TenantID
	expires   time.Time     // the token's expiry: the session ends then
	checked   time.Time     // the last revocation check
	mechanism string        // chosen by SaslHandshake
	rawSASL   bool          // SaslHandshake v0: the next frame is a bare token
	counted   eddy.TenantID // the tenant whose connections count this one (Listener.count), under l.mu
	hangUp    bool          // close once the current answer is written
	opened    time.Time

	// mutedUntil is when a throttled connection's next request is read
	// (the tenant's consume quota; throttle).
	mutedUntil time.Time

	pipe pipeline // produce requests in flight
	// answer is the request memory held for the answer being made (a
	// fetch's records), given back once it is written.
	answer membudget.Hold
	// pooled are the buffers of the answer's batches to give back to
	// bufpool once it is written.
	pooled [][]byte
}

func newConn(l *Listener, nc net.Conn) *conn {
	return &conn{l: l, nc: nc, br: bufio.NewReaderSize(nc, 16<<10), remote: nc.RemoteAddr().String(), opened: time.Now()}
}

// errClose ends a connection without an answer: a protocol violation, a
// refused authentication, an expired session.
var errClose = errors.New("kafka: connection closed")

func (c *conn) serve() {
	defer c.nc.Close()
	c.startPipeline()
	defer c.stopPipeline()
	for {
		if !c.waitMuted() {
			return
		}
		c.pipe.waitRoom(c.l.cfg.MaxRequestBytes)
		limit := c.l.cfg.MaxRequestBytes
		if c.p == nil {
			limit = preAuthMaxBytes
			c.nc.SetReadDeadline(c.opened.Add(c.l.cfg.AuthTimeout))
		} else {
			c.nc.SetReadDeadline(time.Now().Add(c.l.cfg.IdleTimeout))
		}
		frame, hold, err := c.readFrame(limit)
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				c.l.log.Debug("kafka connection ended", logkey.Remote, c.remote, logkey.Err, err)
			}
			return
		}
		if c.rawSASL {
			// After SaslHandshake v0 the client sends the SASL token as a
			// bare frame and expects a bare frame back (empty: success).
			c.rawSASL = false
			if err := c.authenticate(frame); err != nil {
				c.l.m.authFail.Inc()
				return
			}
			if c.write(binary.BigEndian.AppendUint32(c.wbuf[:0], 0)) != nil {
				return
			}
			continue
		}
		if err := c.handle(frame, hold); err != nil {
			if !errors.Is(err, errClose) {
				c.l.m.failed.Inc()
				c.l.log.Debug("kafka request refused; connection closed", logkey.Remote, c.remote, logkey.Err, err)
			}
			return
		}
		if c.hangUp {
			return
		}
	}
}

// waitMuted waits until a throttled connection may be read again; false
// when the listener closes meanwhile.
func (c *conn) waitMuted() bool {
	d := time.Until(c.mutedUntil)
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-c.l.base.Done():
		return false
	}
}

// readFrame reads one size-prefixed frame of at most limit bytes. A larger
// size closes the connection before its body is read. An authenticated
// connection's frame is read once the node's request memory has room for
// it (max_request_memory; until then the connection is not read, as
// Kafka mutes a channel at queued.max.request.bytes); the caller releases
// the hold once the request is served.
func (c *conn) readFrame(limit int) ([]byte, membudget.Hold, error) {
	var hdr [4]byte
	var hold membudget.Hold
	if _, err := io.ReadFull(c.br, hdr[:]); err != nil {
		return nil, hold, err
	}
	n := int32(binary.BigEndian.Uint32(hdr[:]))
	if n < 0 || int(n) > limit {
		return nil, hold, fmt.Errorf("request of %d bytes is over the %d-byte limit", n, limit)
	}
	if c.p != nil {
		var err error
		if hold, err = c.l.cfg.Bodies.Acquire(c.l.base, string(c.tenant), int64(n)); err != nil {
			return nil, hold, err
		}
	}
	// The buffer grows as bytes arrive (four times at each step), so a
	// client that announces a large request and sends it slowly holds
	// memory for what it sent (at most four times), not for what it
	// announced; the read deadline bounds it. Large buffers come from the
	// pool (a produce's go back once it is served; pipeline.go): a fresh
	// 1 MiB frame for each batch, zeroed and faulted in page by page, was
	// a fifth of the node's CPU under Kafka produce.
	frame := bufpool.Get(min(int(n), bufpool.Min))
	for len(frame) < int(n) {
		if len(frame) == cap(frame) {
			frame = bufpool.Grow(frame, min(4*cap(frame), int(n)))
		}
		m, err := c.br.Read(frame[len(frame):min(cap(frame), int(n))])
		frame = frame[:len(frame)+m]
		if err != nil && len(frame) < int(n) {
			bufpool.Put(frame)
			hold.Release()
			return nil, membudget.Hold{}, err
		}
	}
	return frame, hold, nil
}

// header is a request header (v1, or v2 with tagged fields).
type header struct {
	key, version int16
	corr         int32
	clientID     *string
}

// parseHeader splits a frame into its header and body. The client id is
// a nullable non-compact string even in flexible headers (KIP-482).
func parseHeader(frame []byte) (header, kmsg.Request, []byte, error) {
	var h header
	if len(frame) < 10 {
		return h, nil, nil, fmt.Errorf("request of %d bytes is shorter than a header", len(frame))
	}
	h.key = int16(binary.BigEndian.Uint16(frame))
	h.version = int16(binary.BigEndian.Uint16(frame[2:]))
	h.corr = int32(binary.BigEndian.Uint32(frame[4:]))
	n := int16(binary.BigEndian.Uint16(frame[8:]))
	b := frame[10:]
	if n >= 0 {
		if int(n) > len(b) {
			return h, nil, nil, fmt.Errorf("client id of %d bytes past the request's end", n)
		}
		s := string(b[:n])
		h.clientID, b = &s, b[n:]
	}
	req := kmsg.RequestForKey(h.key)
	if req == nil {
		return h, nil, nil, nil
	}
	req.SetVersion(h.version)
	if req.IsFlexible() {
		var err error
		if b, err = skipTags(b); err != nil {
			return h, nil, nil, err
		}
	}
	return h, req, b, nil
}

// skipTags skips a tagged-field section.
func skipTags(b []byte) ([]byte, error) {
	count, n := binary.Uvarint(b)
	if n <= 0 {
		return nil, errors.New("bad tagged fields")
	}
	b = b[n:]
	for ; count > 0; count-- {
		if _, n = binary.Uvarint(b); n <= 0 {
			return nil, errors.New("bad tag")
		}
		b = b[n:]
		size, n := binary.Uvarint(b)
		if n <= 0 || size > uint64(len(b)-n) {
			return nil, errors.New("bad tag size")
		}
		b = b[n+int(size):]
	}
	return b, nil
}

// handle serves one request frame and releases its hold once it is
// served (a pipelined request's, when its answer is made).
func (c *conn) handle(frame []byte, hold membudget.Hold) error {
	pipelined := false
	defer func() {
		if !pipelined {
			hold.Release()
		}
	}()
	h, req, body, err := parseHeader(frame)
	a, ok := apis[h.key]
	// KIP-511: an ApiVersions of a version this broker does not know is
	// answered, below, whatever follows its header's first fields (a
	// version to come may change the rest).
	future := ok && h.key == apiVersionsKey && h.version > a.max
	if err != nil && !future {
		return err
	}
	if !ok || (req == nil && !future) {
		return fmt.Errorf("api key %d is not served", h.key)
	}
	if a.pipelined == nil {
		c.pipe.drain() // served alone, after the requests in the pipeline
	}
	if c.p == nil && !a.preAuth {
		return fmt.Errorf("%s before authentication", a.name)
	}
	if c.p != nil {
		if err := c.stillValid(); err != nil {
			c.l.log.Debug("kafka session ended", logkey.Remote, c.remote, logkey.Tenant, c.tenant, logkey.Err, err)
			return errClose
		}
	}
	c.l.m.requests[h.key].Inc()
	if h.clientID != nil {
		c.clientID = *h.clientID
	}
	if future { // a v0 body, UNSUPPORTED_VERSION and the keys served
		return c.respond(h, apiVersionsResponse(errUnsupportedVersion))
	}
	if h.version > req.MaxVersion() || h.version < 0 {
		return fmt.Errorf("%s v%d cannot be parsed", a.name, h.version)
	}
	if err := req.ReadFrom(body); err != nil {
		return fmt.Errorf("%s v%d: %v", a.name, h.version, err)
	}
	if a.pipelined != nil {
		pipelined = true
		c.serveInPipeline(h, a.pipelined, req, frame, hold)
		return nil
	}
	defer c.releaseAnswer()
	resp, err := a.handle(c, req)
	if err != nil || resp == nil { // acks=0: no answer, in its place in the order
		return err
	}
	resp.SetVersion(h.version)
	return c.respond(h, resp)
}

// releaseAnswer gives back the memory held for the answer just written,
// and its batches' buffers.
func (c *conn) releaseAnswer() {
	c.answer.Release()
	c.answer = membudget.Hold{}
	for i, b := range c.pooled {
		bufpool.Put(b)
		c.pooled[i] = nil
	}
	c.pooled = c.pooled[:0]
}

// respond writes a response with its header: the correlation id, and an
// empty tag section when flexible, except for ApiVersions, whose response
// header is always v0 so a client can read it before it knows versions.
func (c *conn) respond(h header, resp kmsg.Response) error {
	if f, ok := resp.(*kmsg.FetchResponse); ok {
		return c.respondFetch(h, f)
	}
	b := c.encode(h, resp)
	err := c.write(b)
	c.keep(b)
	return err
}

// encode is a response framed: its size, its header, its body.
func (c *conn) encode(h header, resp kmsg.Response) []byte {
	b := append(c.wbuf[:0], 0, 0, 0, 0)
	b = binary.BigEndian.AppendUint32(b, uint32(h.corr))
	if resp.IsFlexible() && h.key != apiVersionsKey {
		b = append(b, 0)
	}
	b = resp.AppendTo(b)
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	return b
}

// keep keeps b for the next response, if it is small (not the largest
// answer's).
func (c *conn) keep(b []byte) {
	if cap(b) <= 1<<20 {
		c.wbuf = b[:0]
	}
}

func (c *conn) write(b []byte) error {
	c.nc.SetWriteDeadline(time.Now().Add(c.l.cfg.IdleTimeout))
	_, err := c.nc.Write(b)
	return err
}

// ctx is a request's context: it ends with the listener, or after timeout.
func (c *conn) ctx(timeout time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(c.l.base, timeout)
}

// stillValid ends a session whose token expired, or (checked at most once
// a second) whose key was removed or tenant deleted since.
func (c *conn) stillValid() error {
	now := time.Now()
	if !c.expires.IsZero() && now.After(c.expires) {
		return eddy.Errorf(eddy.CodeTokenExpired, "the session's token expired; re-authenticate")
	}
	if now.Sub(c.checked) < time.Second {
		return nil
	}
	c.checked = now
	if err := c.l.cfg.Verifier.Recheck(c.p); err != nil {
		return err
	}
	return c.tenantAlive()
}

// tenantAlive: the session's tenant still exists as the incarnation it
// authenticated to (an operator's token names another tenant, so Recheck
// alone does not see it go).
func (c *conn) tenantAlive() error {
	if c.l.cfg.Verifier.Incarnation == nil {
		return nil
	}
	if _, ok := c.l.cfg.Verifier.Incarnation(c.tenant); !ok {
		return eddy.Errorf(eddy.CodeTokenRevoked, "tenant %s does not exist (or was deleted since)", c.tenant)
	}
	return nil
}

// authenticate checks a SASL token of the chosen mechanism: the tenant
// and a JWT that speaks for it (the rule MQTT's CONNECT follows).
func (c *conn) authenticate(token []byte) error {
	var tenant, jwt string
	switch c.mechanism {
	case "PLAIN": // authzid NUL authcid NUL passwd
		parts := bytes.Split(token, []byte{0})
		if len(parts) != 3 {
			return eddy.Errorf(eddy.CodeTokenMalformed, "SASL/PLAIN: want authzid\\0username\\0password")
		}
		tenant, jwt = string(parts[1]), string(parts[2])
	case "OAUTHBEARER": // n,[a=authzid],\x01auth=Bearer <jwt>\x01...\x01
		var err error
		if tenant, jwt, err = parseOAuthBearer(token); err != nil {
			return err
		}
	default:
		return eddy.Errorf(eddy.CodeUnauthenticated, "no SASL mechanism chosen (SaslHandshake first)")
	}
	p, err := c.l.cfg.Verifier.VerifyFrom([]byte(jwt), tenants.RemoteAddr(c.remote))
	if err != nil {
		return err
	}
	if tenant == "" {
		tenant = string(p.Tenant)
	}
	if eddy.TenantID(tenant).Validate() != nil || (!p.Operator() && p.Tenant != eddy.TenantID(tenant)) {
		return eddy.Errorf(eddy.CodeTokenTenantMismatch, "the token does not speak for tenant %q", tenant)
	}
	if err := c.l.count(c, eddy.TenantID(tenant)); err != nil {
		return err
	}
	c.p, c.tenant, c.expires, c.checked = p, eddy.TenantID(tenant), p.Expires, time.Now()
	if err := c.tenantAlive(); err != nil {
		c.p = nil
		return err
	}
	return nil
}

// parseOAuthBearer reads RFC 7628's client response: the gs2 header with
// an optional authzid (the tenant), then key=value pairs separated by
// 0x01, one of them auth=Bearer <token>.
func parseOAuthBearer(b []byte) (authzid, token string, err error) {
	bad := eddy.Errorf(eddy.CodeTokenMalformed, "SASL/OAUTHBEARER: want n,[a=tenant],\\x01auth=Bearer <jwt>\\x01\\x01")
	gs2, rest, ok := bytes.Cut(b, []byte{1})
	if !ok || !bytes.HasPrefix(gs2, []byte("n,")) {
		return "", "", bad
	}
	for _, f := range bytes.Split(gs2[2:], []byte(",")) {
		if a, ok := bytes.CutPrefix(f, []byte("a=")); ok {
			authzid = string(a)
		}
	}
	for _, kv := range bytes.Split(rest, []byte{1}) {
		if v, ok := bytes.CutPrefix(kv, []byte("auth=")); ok {
			t, ok := bytes.CutPrefix(v, []byte("Bearer "))
			if !ok {
				return "", "", bad
			}
			return authzid, string(bytes.TrimSpace(t)), nil
		}
	}
	return "", "", bad
}
