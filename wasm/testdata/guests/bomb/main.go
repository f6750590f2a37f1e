// bomb allocates until memory runs out.
package main

import "github.com/eddy-broker/eddy/wasm/guest"

func main() {}

var keep [][]byte

func init() {
	guest.Handle(func(r guest.Record, w guest.Writer) error {
		for {
			keep = append(keep, make([]byte, 8<<20))
		}
	})
}
