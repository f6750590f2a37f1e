package httpapi

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"time"

	"github.com/eddy-broker/eddy"
	"github.com/eddy-broker/eddy/internal/membudget"
	"github.com/valyala/fasthttp"
)

// Request bodies are read by authed, not by fasthttp (StreamRequestBody):
// only a verified token's request is read past the 8 KiB fasthttp takes
// with the headers, and only once the node's request memory
// (Config.Bodies, max_request_memory) has room for it. fasthttp used to
// read every body, up to twice max_body_bytes, before any handler ran:
// forty clients without a token, each sending 30 MiB, held 1.3 GB of the
// node.

// readWithHead is what fasthttp reads of a body with the headers, before
// any handler runs.
const readWithHead = 8 << 10

// bodyWait bounds how long a request waits for room in the node's request
// memory before it is refused (429, retry).
const bodyWait = 5 * time.Second

// readBody reads the body of an authenticated request of tenant within
// max_body_bytes, having taken its size of the node's request memory,
// and returns what it took (the caller gives it back once the request is
// served). A body over the limit is read and dropped when it
// is at most twice the limit (the client sees the 413 on an intact
// connection), else the connection is closed after the answer.
func (s *Server) readBody(ctx *fasthttp.RequestCtx, tenant string) (membudget.Hold, error) {
	limit := s.cfg.MaxBodyBytes
	if !ctx.Request.IsBodyStream() { // no body
		return membudget.Hold{}, nil
	}
	n := ctx.Request.Header.ContentLength()
	if n > limit {
		if n <= 2*limit {
			io.CopyBuffer(io.Discard, ctx.RequestBodyStream(), make([]byte, 32<<10))
		} else {
			s.unread(ctx)
		}
		return membudget.Hold{}, eddy.Errorf(eddy.CodeRequestTooLarge, "request body is %d bytes, over the %d-byte limit", n, limit)
	}
	if n >= 0 && n <= readWithHead {
		// Read already, as the headers are: not counted (one record
		// per request would pay for the budget's lock and map twice).
		return membudget.Hold{}, readWhole(ctx, n)
	}
	take := int64(n)
	if n < 0 { // chunked: as much as it may be
		take = int64(limit)
	}
	hold, ok := s.room(tenant, take)
	if !ok {
		s.unread(ctx)
		return hold, &eddy.Error{Code: eddy.CodeBackpressure, RetryAfterMs: 1000,
			Message: "the node holds as many request bodies as max_request_memory allows; retry"}
	}
	if n >= 0 {
		if err := readWhole(ctx, n); err != nil {
			hold.Release()
			return membudget.Hold{}, err
		}
		return hold, nil
	}
	var buf bytes.Buffer
	got, err := io.Copy(&buf, io.LimitReader(ctx.RequestBodyStream(), int64(limit)+1))
	if err != nil || got > int64(limit) {
		hold.Release()
		ctx.SetConnectionClose()
		if err != nil {
			return membudget.Hold{}, eddy.Errorf(eddy.CodeInvalid, "reading the chunked request body: %v", err)
		}
		return membudget.Hold{}, eddy.Errorf(eddy.CodeRequestTooLarge, "request body is over the %d-byte limit", limit)
	}
	ctx.Request.SetBodyRaw(buf.Bytes())
	return hold, nil
}

// room takes n bytes of the node's request memory for tenant, waiting up
// to bodyWait for them.
func (s *Server) room(tenant string, n int64) (membudget.Hold, bool) {
	if hold, ok := s.cfg.Bodies.TryAcquire(tenant, n); ok {
		return hold, true
	}
	wait, cancel := context.WithTimeout(context.Background(), bodyWait)
	defer cancel()
	hold, err := s.cfg.Bodies.Acquire(wait, tenant, n)
	return hold, err == nil
}

// readWhole reads a body of n bytes (fasthttp's Body reads the stream;
// a read that fails leaves a shorter body).
func readWhole(ctx *fasthttp.RequestCtx, n int) error {
	if got := len(ctx.Request.Body()); got != n {
		ctx.SetConnectionClose()
		return eddy.Errorf(eddy.CodeInvalid, "the request body ended after %d of its %d bytes", got, n)
	}
	return nil
}

// lingerFor bounds how long a connection refused before its body is read
// goes on being read, and dropped, after the answer (unread).
const lingerFor = 2 * time.Second

// unread ends the connection of a request refused before its body was
// read (the rest of the body must not be taken for the next request):
// after the answer it reads and drops what the client still sends, up
// to twice max_body_bytes and for lingerFor at most, then closes, as
// nginx's lingering close does. Closed at once, with bytes unread, the
// connection would be reset, and a client still sending its body would
// see the reset, not the answer (a 401, a 429).
//
// The answer is written here too: fasthttp closes a connection marked
// Connection: close as soon as it has written the answer, before a
// hijack, and without that mark a client would reuse the connection.
func (s *Server) unread(ctx *fasthttp.RequestCtx) {
	if !ctx.Request.IsBodyStream() {
		return
	}
	limit := int64(2 * s.cfg.MaxBodyBytes)
	ctx.HijackSetNoResponse(true)
	ctx.Hijack(func(c net.Conn) {
		ctx.Response.Header.SetConnectionClose()
		c.SetWriteDeadline(time.Now().Add(lingerFor))
		w := bufio.NewWriter(c)
		if ctx.Response.Write(w) != nil || w.Flush() != nil {
			return
		}
		c.SetReadDeadline(time.Now().Add(lingerFor))
		io.CopyN(io.Discard, c, limit)
	})
}
