// slow keeps every record, after spinning for the milliseconds its config
// names (a decimal number) per record: a slow module that still succeeds
// within its deadline, as a noisy neighbour's would.
package main

import (
	"strconv"
	"time"

	"github.com/eddy-broker/eddy/wasm/guest"
)

func main() {}

var n int

func init() {
	guest.Handle(func(r guest.Record, w guest.Writer) error {
		ms, _ := strconv.Atoi(string(guest.Config()))
		for end := time.Now().Add(time.Duration(ms) * time.Millisecond); time.Now().Before(end); {
			n++
		}
		w.Keep()
		return nil
	})
}
