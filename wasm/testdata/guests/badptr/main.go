// badptr implements the exports itself and answers with an output pointer
// far outside its memory.
package main

func main() {}

var buf = make([]byte, 1<<16)

//go:wasmexport tx_abi_version
func abiVersion() int32 { return 1 }

//go:wasmexport tx_reserve
func reserve(n uint32) uint32 {
	if int(n) > len(buf) {
		buf = make([]byte, n)
	}
	return uint32(uintptr(unsafePointer(buf)))
}

//go:wasmexport tx_process
func process(count, inLen uint32) int64 { return int64(0x7fff0000)<<32 | 4096 }
