// route sets each record's key from a JSON field, so the records of one
// device (say) land in one partition, in order.
//
// Config: {"field": "device_id"}. A string becomes the key as is, any
// other JSON value as its JSON text. A record whose value is not a JSON
// object, or has no such field, keeps its key.
package main

import (
	"encoding/json"
	"errors"

	"github.com/eddy-broker/eddy/wasm/guest"
)

func main() {}

var field string

func init() {
	guest.Handle(func(r guest.Record, w guest.Writer) error {
		if field == "" {
			var c struct {
				Field string `json:"field"`
			}
			if err := json.Unmarshal(guest.Config(), &c); err != nil || c.Field == "" {
				return errors.New(`route: config needs "field"`)
			}
			field = c.Field
		}
		var obj map[string]json.RawMessage
		if json.Unmarshal(r.Value, &obj) != nil {
			w.Keep()
			return nil
		}
		raw, ok := obj[field]
		if !ok || string(raw) == "null" {
			w.Keep()
			return nil
		}
		key := []byte(raw)
		var s string
		if json.Unmarshal(raw, &s) == nil {
			key = []byte(s)
		}
		w.Emit(guest.Record{Key: key, Value: r.Value, Headers: r.Headers})
		return nil
	})
}
