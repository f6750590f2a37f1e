//go:build !wasip1

package guest

// Outside WebAssembly (go test on the developer's machine) Handle and
// Config work too, so Run (run.go) can unit-test a transform natively.

var (
	handler Func
	config  []byte
)

// Handle registers the transform. Call it from init.
func Handle(fn Func) { handler = fn }

// Config returns the binding's config bytes (Run's cfg when native).
func Config() []byte { return config }
