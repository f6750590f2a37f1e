package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"

	"github.com/eddy-broker/eddy"
	"github.com/valyala/fasthttp"
)

func (s *Server) errorHandler(ctx *fasthttp.RequestCtx, err error) {
	if errors.Is(err, fasthttp.ErrBodyTooLarge) {
		writeError(ctx, eddy.Errorf(eddy.CodeRequestTooLarge, "request body is over the %d-byte limit", s.cfg.MaxBodyBytes))
		return
	}
	writeError(ctx, eddy.Errorf(eddy.CodeInvalid, "bad request: %v", err))
}

// writeError answers {"error":{"code","message"}} with the code's status,
// and Retry-After when the client should retry.
func writeError(ctx *fasthttp.RequestCtx, err error) {
	e := eddy.AsError(err)
	writeErrorStatus(ctx, e.Code.HTTPStatus(), e)
}

func writeErrorStatus(ctx *fasthttp.RequestCtx, status int, e *eddy.Error) {
	if e.Code.Retriable() || e.Code == eddy.CodeStorageFull {
		secs := max((e.RetryAfterMs+999)/1000, 1)
		ctx.Response.Header.Set("Retry-After", strconv.FormatInt(secs, 10))
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // messages say <jwt>, not \u003cjwt\u003e
	enc.Encode(map[string]any{"error": map[string]string{"code": string(e.Code), "message": e.Message}})
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	ctx.SetBody(b.Bytes())
}

func writeJSON(ctx *fasthttp.RequestCtx, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeError(ctx, err)
		return
	}
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	ctx.SetBody(append(b, '\n'))
}
