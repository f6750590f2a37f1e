package main

import (
	"testing"

	"github.com/eddy-broker/eddy/wasm/guest"
)

func TestRedact(t *testing.T) {
	out, err := guest.Run([]byte(`{"fields":["pin"]}`), []guest.Record{{Value: []byte(`{"a":[{"pin":1234}],"b":2}`)}, {Value: []byte(`{"b":3}`)}})
	if err != nil || len(out) != 2 || string(out[0].Value) != `{"a":[{"pin":"[redacted]"}],"b":2}` || string(out[1].Value) != `{"b":3}` {
		t.Fatalf("%v %+v", err, out)
	}
	if _, err := guest.Run(nil, []guest.Record{{Value: []byte(`pin=1234`)}}); err == nil {
		t.Fatal("a value that is not JSON passed unredacted")
	}
}
