package main

import (
	"testing"

	"github.com/eddy-broker/eddy/wasm/guest"
)

func TestConvert(t *testing.T) {
	out, err := guest.Run([]byte(`{"field":"f"}`), []guest.Record{{Value: []byte(`{"f":50}`)}, {Value: []byte(`{"g":1}`)}})
	if err != nil || len(out) != 2 || string(out[0].Value) != `{"f":10}` || string(out[1].Value) != `{"g":1}` {
		t.Fatalf("%v %+v", err, out)
	}
	if _, err := guest.Run(nil, []guest.Record{{Value: []byte(`{"f":"hot"}`)}}); err == nil {
		t.Fatal("a string was converted")
	}
}
