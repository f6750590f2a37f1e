// enrich adds the config's "site" to a JSON object value and a header.
package main

import (
	"bytes"
	"encoding/json"
	"errors"

	"github.com/eddy-broker/eddy/wasm/guest"
)

func main() {}

var cfg *struct{ Site string } // parsed from the config once

func init() {
	guest.Handle(func(r guest.Record, w guest.Writer) error {
		if cfg == nil {
			cfg = new(struct{ Site string })
			if err := json.Unmarshal(guest.Config(), cfg); err != nil {
				cfg = nil
				return errors.New("config: " + err.Error())
			}
		}
		v := bytes.TrimRight(r.Value, " \n")
		if len(v) < 2 || v[len(v)-1] != '}' {
			return errors.New("value is not a JSON object")
		}
		out := append(append([]byte(nil), v[:len(v)-1]...), []byte(`,"site":"`+cfg.Site+`"}`)...)
		w.EmitValue(out, guest.Header{Key: "site", Value: []byte(cfg.Site)})
		return nil
	})
}
