// panic writes to a nil map.
package main

import "github.com/eddy-broker/eddy/wasm/guest"

func main() {}

func init() {
	guest.Handle(func(r guest.Record, w guest.Writer) error {
		var m map[string]int
		m["x"] = 1
		return nil
	})
}
