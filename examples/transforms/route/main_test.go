package main

import (
	"testing"

	"github.com/eddy-broker/eddy/wasm/guest"
)

func TestRoute(t *testing.T) {
	out, err := guest.Run([]byte(`{"field":"dev"}`), []guest.Record{
		{Key: []byte("old"), Value: []byte(`{"dev":"d1"}`)}, {Value: []byte(`{"dev":7}`)}, {Key: []byte("old"), Value: []byte(`{}`)},
	})
	if err != nil || len(out) != 3 || string(out[0].Key) != "d1" || string(out[1].Key) != "7" || string(out[2].Key) != "old" {
		t.Fatalf("%v %+v", err, out)
	}
}
