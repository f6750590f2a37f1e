package httpapi

import (
	"bytes"
	"context"
	"sync"
	"time"

	"github.com/eddy-broker/eddy"
	"github.com/eddy-broker/eddy/internal/bufpool"
	"github.com/eddy-broker/eddy/internal/membudget"
	"github.com/eddy-broker/eddy/tenants"
	"github.com/valyala/fasthttp"
)

// A fetch's answer comes out of the node's request memory too
// (max_request_memory, a tenant at most half): it takes room for what it
// may read and the answer it makes before it reads, keeps what it made
// until fasthttp has written it, and long-polls before, holding nothing.
// Each fetch was bounded (fetch_max_bytes) but not their number: 120
// fetches of 16 MiB at once took a node to 3 GB.

// answerRoom takes n bytes of the request memory (at most a tenant's
// share) for tenant's answer, waiting up to bodyWait as a request body
// does; past it the fetch is refused (429, retry).
func (s *Server) answerRoom(tenant eddy.TenantID, n int) (membudget.Hold, error) {
	n = min(n, int(s.cfg.Bodies.Total()/2)) // a tenant's share: more would never fit
	hold, ok := s.room(string(tenant), int64(n))
	if !ok {
		return hold, &eddy.Error{Code: eddy.CodeBackpressure, RetryAfterMs: 1000,
			Message: "the node holds as many answers and request bodies as max_request_memory allows; retry"}
	}
	return hold, nil
}

// ReadQuota throttles a tenant's reads to its consume_bytes_per_sec
// quota; tenants.ReadQuota is one.
type ReadQuota interface {
	// Owed is how long the principal's next read of tenant waits (0:
	// none).
	Owed(p *tenants.Principal, tenant eddy.TenantID) time.Duration
	// Charge counts the bytes a read of tenant answered the principal.
	Charge(p *tenants.Principal, tenant eddy.TenantID, bytes int)
}

// readOwed waits out what the tenant owes its consume quota before a
// read, up to bodyWait, holding no room and no slot meanwhile (as Kafka
// mutes a throttled consumer); a larger debt is refused quota_exceeded
// (429) with the time it takes in Retry-After.
func (s *Server) readOwed(c context.Context, pr *tenants.Principal, tenant eddy.TenantID) error {
	d := s.cfg.ReadQuota.Owed(pr, tenant)
	if d <= 0 {
		return nil
	}
	refused := &eddy.Error{Code: eddy.CodeQuotaExceeded, RetryAfterMs: d.Milliseconds() + 1,
		Message: "tenant " + string(tenant) + " is over its consume rate quota (consume_bytes_per_sec); retry after the Retry-After delay"}
	if d > bodyWait {
		return refused
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-c.Done():
		return refused
	}
}

// readSlot takes one of tenant's read slots (tenant_read_slots: the reads
// a tenant runs at once on the node), waiting up to bodyWait as for room;
// release gives it back once the answer is made (read and encoded; its
// writing is the network's). Without one, the read is refused
// backpressure (429).
func (s *Server) readSlot(tenant eddy.TenantID) (release func(), err error) {
	wait, cancel := context.WithTimeout(context.Background(), bodyWait)
	defer cancel()
	release, err = s.cfg.Reads.Acquire(wait, string(tenant))
	if err != nil {
		return nil, &eddy.Error{Code: eddy.CodeBackpressure, RetryAfterMs: 1000,
			Message: "the tenant runs as many reads at once on this node as tenant_read_slots allows; retry"}
	}
	return release, nil
}

// jsonAnswerRoom is the room a JSON fetch of at most maxBytes and
// maxRecs records takes: what it reads, then its JSON (base64 takes 4/3
// of a value, and each record's fields about 128 bytes more).
func jsonAnswerRoom(maxBytes, maxRecs int64) int {
	return int(maxBytes*7/3 + maxRecs*128)
}

// answerRead answers a read (a fetch, a search, a group poll) with body
// as answerWith does, and charges its bytes to the tenant's consume quota.
func (s *Server) answerRead(ctx *fasthttp.RequestCtx, pr *tenants.Principal, tenant eddy.TenantID, body []byte, hold membudget.Hold) {
	s.cfg.ReadQuota.Charge(pr, tenant, len(body))
	answerWith(ctx, body, hold, false)
}

// answerWith makes body the answer, without a copy, and gives hold back
// once fasthttp has written it (or dropped it with its connection): it
// closes the body stream after writing it, and whenever it resets the
// response. A pooled body (a buffer of internal/bufpool) goes back to
// the pool then.
func answerWith(ctx *fasthttp.RequestCtx, body []byte, hold membudget.Hold, pooled bool) {
	a := &heldAnswer{Reader: bytes.NewReader(body), hold: hold}
	if pooled {
		a.pooled = body
	}
	ctx.Response.SetBodyStream(a, len(body))
}

type heldAnswer struct {
	*bytes.Reader
	hold   membudget.Hold
	pooled []byte
	once   sync.Once
}

func (a *heldAnswer) Close() error {
	a.once.Do(func() {
		a.Reader.Reset(nil) // nothing reads the buffer once it is given back
		a.hold.Release()
		bufpool.Put(a.pooled)
	})
	return nil
}
