//go:build wasip1

package guest

import (
	"fmt"
	"os"
	"unsafe"
)

// The ABI v1 exports. The host calls them from one goroutine at a time per
// instance, so plain package state is enough.

var (
	handler Func
	config  []byte
	inBuf   []byte
	out     output
)

// Handle registers the transform. Call it from init.
func Handle(fn Func) { handler = fn }

// Config returns the binding's config bytes (JSON, as given to
// PUT /v1/topics/{topic}/transform), set before the first batch.
func Config() []byte { return config }

//go:wasmexport tx_abi_version
func txABIVersion() int32 { return 1 }

// tx_reserve makes the input buffer at least n bytes and returns its address.
//
//go:wasmexport tx_reserve
func txReserve(n uint32) uint32 {
	if int(n) > cap(inBuf) {
		inBuf = make([]byte, n)
	}
	inBuf = inBuf[:cap(inBuf)]
	return uint32(uintptr(unsafe.Pointer(unsafe.SliceData(inBuf))))
}

// tx_configure takes the config bytes the host placed in the input buffer.
//
//go:wasmexport tx_configure
func txConfigure(n uint32) int32 {
	if int(n) > len(inBuf) {
		return StatusMalformedInput
	}
	config = append([]byte(nil), inBuf[:n]...)
	return 0
}

// tx_process runs the handler over the count records in the input buffer
// and returns (out_ptr << 32 | out_len), 0 for no output, or a status < 0.
//
//go:wasmexport tx_process
func txProcess(count, inLen uint32) int64 {
	if handler == nil {
		fmt.Fprintln(os.Stderr, "eddy transform: no handler registered (call guest.Handle in init)")
		return StatusUserError
	}
	if int(inLen) > len(inBuf) {
		return StatusMalformedInput
	}
	status, err := process(handler, inBuf[:inLen], int(count), &out)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return int64(status)
	}
	if len(out.buf) == 0 {
		return 0
	}
	ptr := uint32(uintptr(unsafe.Pointer(unsafe.SliceData(out.buf))))
	return int64(ptr)<<32 | int64(len(out.buf))
}
