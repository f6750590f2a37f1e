// loop never returns.
package main

import "github.com/eddy-broker/eddy/wasm/guest"

func main() {}

var n int

func init() {
	guest.Handle(func(r guest.Record, w guest.Writer) error {
		for {
			n++
		}
	})
}
