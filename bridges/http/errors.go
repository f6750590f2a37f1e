package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/eddy-broker/eddy"
	"github.com/valyala/fasthttp"
)

// statuses is the one table from an error code to its HTTP status.
var statuses = map[eddy.Code]int{
	eddy.CodeInvalid:          http.StatusBadRequest,
	eddy.CodeUnauthenticated:  http.StatusUnauthorized,
	eddy.CodeForbidden:        http.StatusForbidden,
	eddy.CodeNotFound:         http.StatusNotFound,
	eddy.CodeTopicExists:      http.StatusConflict,
	eddy.CodeConflict:         http.StatusConflict,
	eddy.CodeRecordTooLarge:   http.StatusRequestEntityTooLarge,
	eddy.CodeRequestTooLarge:  http.StatusRequestEntityTooLarge,
	eddy.CodeOffsetOutOfRange: http.StatusRequestedRangeNotSatisfiable,
	eddy.CodeUnsupportedMedia: http.StatusUnsupportedMediaType,
	eddy.CodeBackpressure:     http.StatusTooManyRequests,
	eddy.CodeUnavailable:      http.StatusServiceUnavailable,
	eddy.CodeTimeout:          http.StatusServiceUnavailable,
	eddy.CodeStorageFull:      http.StatusInsufficientStorage,
	eddy.CodeCorrupt:          http.StatusInternalServerError,
	eddy.CodeInternal:         http.StatusInternalServerError,

	eddy.CodeTokenMissing:        http.StatusUnauthorized,
	eddy.CodeTokenMalformed:      http.StatusUnauthorized,
	eddy.CodeTokenAlgNone:        http.StatusUnauthorized,
	eddy.CodeTokenAlgMismatch:    http.StatusUnauthorized,
	eddy.CodeTokenBadSignature:   http.StatusUnauthorized,
	eddy.CodeTokenExpired:        http.StatusUnauthorized,
	eddy.CodeTokenNotYetValid:    http.StatusUnauthorized,
	eddy.CodeTokenWrongAudience:  http.StatusUnauthorized,
	eddy.CodeTokenWrongIssuer:    http.StatusUnauthorized,
	eddy.CodeTokenUnknownKey:     http.StatusUnauthorized,
	eddy.CodeTokenTenantMismatch: http.StatusUnauthorized,
	eddy.CodeTokenRevoked:        http.StatusUnauthorized,
	eddy.CodeAuthThrottled:       http.StatusTooManyRequests,

	eddy.CodeNoQuorum:      http.StatusServiceUnavailable,
	eddy.CodeTenantExists:  http.StatusConflict,
	eddy.CodeQuotaExceeded: http.StatusTooManyRequests,
	eddy.CodeStorageQuota:  http.StatusInsufficientStorage,
	eddy.CodeLimitExceeded: http.StatusConflict,

	eddy.CodeInvalidModule:        http.StatusUnprocessableEntity,
	eddy.CodeTransformTimeout:     http.StatusUnprocessableEntity,
	eddy.CodeTransformTrap:        http.StatusUnprocessableEntity,
	eddy.CodeTransformMemory:      http.StatusUnprocessableEntity,
	eddy.CodeTransformBadOutput:   http.StatusUnprocessableEntity,
	eddy.CodeTransformError:       http.StatusUnprocessableEntity,
	eddy.CodeTransformCircuitOpen: http.StatusServiceUnavailable,

	eddy.CodeOutOfOrderSequence: http.StatusConflict,
	eddy.CodeProducerFenced:     http.StatusConflict,

	eddy.CodeUnknownMember:   http.StatusNotFound,
	eddy.CodeStaleGeneration: http.StatusConflict,
}

// httpStatus is the HTTP status of an error code; unknown codes are 500.
func httpStatus(c eddy.Code) int {
	if s, ok := statuses[c]; ok {
		return s
	}
	return http.StatusInternalServerError
}

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
	writeErrorStatus(ctx, httpStatus(e.Code), e)
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
