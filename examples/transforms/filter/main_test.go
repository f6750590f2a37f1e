package main

import (
	"testing"

	"github.com/eddy-broker/eddy/wasm/guest"
)

// The logic runs natively with guest.Run; the e2e tests run the built
// module through a node.
func TestFilter(t *testing.T) {
	out, err := guest.Run([]byte(`{"field":"temp","min":0,"max":50}`), []guest.Record{
		{Value: []byte(`{"temp":20}`)}, {Value: []byte(`{"temp":51}`)}, {Value: []byte(`not json`)}, {Value: []byte(`{"temp":-1}`)},
	})
	if err != nil || len(out) != 2 || string(out[0].Value) != `{"temp":20}` || string(out[1].Value) != `not json` {
		t.Fatalf("%v %+v", err, out)
	}
}
