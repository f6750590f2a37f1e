// flood emits 300 copies of every record, over the ABI's 256.
package main

import "github.com/eddy-broker/eddy/wasm/guest"

func main() {}

func init() {
	guest.Handle(func(r guest.Record, w guest.Writer) error {
		for i := 0; i < 300; i++ {
			w.Keep()
		}
		return nil
	})
}
