package main

import (
	"testing"

	"github.com/eddy-broker/eddy/wasm/guest"
)

func TestEnrich(t *testing.T) {
	out, err := guest.Run([]byte(`{"fields":{"site":"s1","gateway":"g"}}`), []guest.Record{
		{Key: []byte("k"), Value: []byte(` {"a":1} `)}, {Value: []byte(`{}`)},
	})
	if err != nil || len(out) != 2 || string(out[0].Value) != `{"a":1,"gateway":"g","site":"s1"}` || string(out[0].Key) != "k" ||
		string(out[1].Value) != `{"gateway":"g","site":"s1"}` || len(out[0].Headers) != 2 || out[0].Headers[1].Key != "site" {
		t.Fatalf("%v %+v", err, out)
	}
	if _, err := guest.Run(nil, []guest.Record{{Value: []byte(`[1]`)}}); err == nil {
		t.Fatal("an array was enriched")
	}
}
