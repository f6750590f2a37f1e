// forbidden reads a file: it imports path_open, which no transform may.
package main

import (
	"os"

	"github.com/eddy-broker/eddy/wasm/guest"
)

func main() {}

func init() {
	guest.Handle(func(r guest.Record, w guest.Writer) error {
		_, err := os.ReadFile("/etc/passwd")
		return err
	})
}
