package wasm

import (
	"context"
	"errors"
	"strconv"

	"github.com/eddy-broker/eddy"
)

// errCircuitOpen is the failure a dead-letter or pass policy records while
// the breaker is open.
var errCircuitOpen = errors.New("transform circuit breaker is open")

// dropped counts inputs that produced no output (src is non-decreasing).
func dropped(n int, src []int) int {
	kept, last := 0, -1
	for _, s := range src {
		if s != last {
			kept, last = kept+1, s
		}
	}
	return n - kept
}

// fail applies the binding's policy to a failed batch.
func (p *Pipeline) fail(r *runner, b *Binding, recs []eddy.Record, err error) (*Outcome, error) {
	if r != nil {
		r.policyRecords(b.OnError, len(recs))
	}
	kind, code := Kind(err)
	switch b.OnError {
	case PolicyPass:
		src := make([]int, len(recs))
		for i := range src {
			src[i] = i
		}
		return &Outcome{Records: recs, Src: src, Failure: err, Policy: PolicyPass}, nil
	case PolicyDeadLetter:
		dl := make([]eddy.Record, len(recs))
		mod := b.Module + "@" + strconv.Itoa(b.Version)
		for i, rec := range recs {
			rec.Headers = append(append(make([]eddy.Header, 0, len(rec.Headers)+4), rec.Headers...),
				eddy.Header{Key: HeaderDLQReason, Value: []byte(truncate(err.Error(), 1024))},
				eddy.Header{Key: HeaderDLQKind, Value: []byte(kind)},
				eddy.Header{Key: HeaderDLQTopic, Value: []byte(b.Topic)},
				eddy.Header{Key: HeaderDLQTransform, Value: []byte(mod)})
			dl[i] = rec
		}
		return &Outcome{DeadLetter: dl, Failure: err, Policy: PolicyDeadLetter}, nil
	}
	return nil, eddy.Errorf(code, "transform %s (version %d) on topic %s: %s; nothing was appended", b.Module, b.Version, b.Topic, truncate(err.Error(), 2048))
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// Kind names a transform error for metrics and headers, with the code a
// producer sees under reject.
func Kind(err error) (string, eddy.Code) {
	switch {
	case errors.Is(err, ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return "timeout", eddy.CodeTransformTimeout
	case errors.Is(err, ErrMemory):
		return "memory", eddy.CodeTransformMemory
	case errors.Is(err, ErrTrap):
		return "trap", eddy.CodeTransformTrap
	case errors.Is(err, ErrBadOutput):
		return "bad_output", eddy.CodeTransformBadOutput
	case errors.Is(err, ErrInvalidModule):
		return "invalid_module", eddy.CodeInvalidModule
	case errors.Is(err, errCircuitOpen):
		return "circuit_open", eddy.CodeTransformCircuitOpen
	}
	return "error", eddy.CodeTransformError
}
