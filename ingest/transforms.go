package ingest

import (
	"time"

	"github.com/eddy-broker/eddy"
)

// TransformTest is a dry run of a module over records: what it would
// append, and nothing appended.
type TransformTest struct {
	Version int
	// Records are the output, Src[i] the input Records[i] came from.
	Records []eddy.Record
	Src     []int
	// Err is the module's failure, coded (transform_timeout, ...).
	Err      *eddy.Error
	Stderr   string
	Duration time.Duration
}
