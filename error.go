package eddy

import (
	"errors"
	"fmt"
	"strings"
)

// Code is a machine-readable error code. Clients switch on it; the message
// is for people. Codes never change meaning once released.
type Code string

// The error codes. Each listener maps them to its protocol in one table:
// bridges/http to HTTP statuses, bridges/mqtt to MQTT reason codes.
const (
	CodeInvalid          Code = "invalid_request"     // malformed input
	CodeUnauthenticated  Code = "unauthenticated"     // no or bad credentials
	CodeForbidden        Code = "forbidden"           // credentials lack a scope
	CodeNotFound         Code = "not_found"           // no such tenant, topic or partition
	CodeTopicExists      Code = "topic_exists"        // create of an existing topic
	CodeConflict         Code = "conflict"            // state does not allow the operation
	CodeRecordTooLarge   Code = "record_too_large"    // over max.message.bytes
	CodeRequestTooLarge  Code = "request_too_large"   // body over the server's limit
	CodeOffsetOutOfRange Code = "offset_out_of_range" // before log start or past the end
	CodeUnsupportedMedia Code = "unsupported_media"   // Content-Type not understood
	CodeBackpressure     Code = "backpressure"        // a bounded queue is full: retry
	CodeUnavailable      Code = "unavailable"         // not ready, no leader, shutting down: retry
	CodeTimeout          Code = "timeout"             // outcome unknown: retry (idempotent)
	CodeStorageFull      Code = "storage_full"        // disk full: nothing was appended
	CodeCorrupt          Code = "corrupt"             // stored data failed a checksum
	CodeInternal         Code = "internal"            // a bug or an unexpected failure

	// Authentication: each way a token can be refused has its own code.
	CodeTokenMissing        Code = "token_missing"         // no Authorization: Bearer
	CodeTokenMalformed      Code = "token_malformed"       // not a JWT, or required claims missing
	CodeTokenAlgNone        Code = "token_alg_none"        // alg "none"
	CodeTokenAlgMismatch    Code = "token_alg_mismatch"    // alg differs from the key's (algorithm confusion)
	CodeTokenBadSignature   Code = "token_bad_signature"   // signature does not verify
	CodeTokenExpired        Code = "token_expired"         // exp has passed
	CodeTokenNotYetValid    Code = "token_not_yet_valid"   // nbf or iat in the future
	CodeTokenWrongAudience  Code = "token_wrong_audience"  // aud is not this cluster
	CodeTokenWrongIssuer    Code = "token_wrong_issuer"    // iss is missing, or names neither the operator nor a tenant
	CodeTokenUnknownKey     Code = "token_unknown_kid"     // kid names no key
	CodeTokenTenantMismatch Code = "token_tenant_mismatch" // a tenant's key signed a token for another tenant
	CodeTokenRevoked        Code = "token_revoked"         // its key was removed, or its tenant deleted since

	CodeNoQuorum      Code = "no_quorum"              // the partition or controller has no leader: retry
	CodeTenantExists  Code = "tenant_exists"          // create of an existing tenant
	CodeQuotaExceeded Code = "quota_exceeded"         // a rate quota: retry after Retry-After
	CodeStorageQuota  Code = "storage_quota_exceeded" // the tenant's retained bytes are over its quota
	CodeLimitExceeded Code = "limit_exceeded"         // a count limit (topics, partitions, keys)
	// CodeAuthThrottled: the address sent too many refused tokens; its
	// tokens that did not verify before are refused unchecked for a while.
	CodeAuthThrottled Code = "auth_throttled"

	// Transforms: an upload refused, and each way a batch can fail in a
	// transform under the reject policy.
	CodeInvalidModule        Code = "invalid_module"          // not wasm, a forbidden import, a missing export, too large
	CodeTransformTimeout     Code = "transform_timeout"       // the batch exceeded the transform's deadline
	CodeTransformTrap        Code = "transform_trap"          // the module trapped (a panic, unreachable, a bad memory access)
	CodeTransformMemory      Code = "transform_out_of_memory" // the module ran out of its memory limit
	CodeTransformBadOutput   Code = "transform_bad_output"    // the module's output broke the ABI or a limit
	CodeTransformError       Code = "transform_error"         // the module returned an error status
	CodeTransformCircuitOpen Code = "transform_circuit_open"  // repeated failures opened the breaker: retry later

	// Idempotent producers (Kafka's rules, segment/producers.go).
	CodeOutOfOrderSequence Code = "out_of_order_sequence" // a producer's batch skipped sequences
	CodeProducerFenced     Code = "producer_fenced"       // a newer epoch of the producer exists

	// Consumer groups.
	CodeUnknownMember   Code = "unknown_member"   // the member left or its session expired: join again
	CodeStaleGeneration Code = "stale_generation" // the group rebalanced since: fetch to learn the new assignment
)

// Unauthenticated reports whether the code refuses the request's
// credentials (as opposed to what the request asked for).
func (c Code) Unauthenticated() bool {
	return c == CodeUnauthenticated || strings.HasPrefix(string(c), "token_")
}

// Retriable reports whether a client may retry the same request unchanged.
func (c Code) Retriable() bool {
	switch c {
	case CodeBackpressure, CodeUnavailable, CodeTimeout, CodeQuotaExceeded, CodeNoQuorum, CodeTransformCircuitOpen, CodeAuthThrottled:
		return true
	}
	return false
}

// Error is the one error type a client sees: a code and a message.
type Error struct {
	Code    Code
	Message string
	// RetryAfterMs, when positive, tells a client how long to wait before a
	// retry (HTTP Retry-After, rounded up to seconds).
	RetryAfterMs int64
	err          error
}

// Error implements error.
func (e *Error) Error() string {
	return "eddy: " + string(e.Code) + ": " + e.Message
}

// Unwrap returns the cause, if any.
func (e *Error) Unwrap() error { return e.err }

// Errorf returns an *Error with the code and a formatted message. A %w verb
// keeps the wrapped error reachable through errors.Is and errors.As.
func Errorf(code Code, format string, args ...any) *Error {
	err := fmt.Errorf(format, args...)
	return &Error{Code: code, Message: err.Error(), err: errors.Unwrap(err)}
}

// ErrorCode returns the code of the first *Error in err's chain, CodeInternal
// for any other non-nil error, and "" for nil.
func ErrorCode(err error) Code {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}

// AsError converts any error to an *Error, keeping an existing one.
func AsError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{Code: CodeInternal, Message: err.Error(), err: err}
}
