// redact masks the values of named fields, at any depth, in JSON values.
//
// Config: {"fields": ["ssn", "email"], "mask": "***"}. "mask" defaults to
// "[redacted]". A value that is not JSON fails the batch: a redaction that
// cannot look must not let the record through (bind with dead-letter to
// keep such records aside).
package main

import (
	"bytes"
	"encoding/json"
	"errors"

	"github.com/eddy-broker/eddy/wasm/guest"
)

func main() {}

var (
	loaded bool
	fields = map[string]bool{}
	mask   = "[redacted]"
)

func load() error {
	if loaded {
		return nil
	}
	var c struct {
		Fields []string `json:"fields"`
		Mask   *string  `json:"mask"`
	}
	if err := json.Unmarshal(guest.Config(), &c); err != nil {
		return errors.New("redact: config: " + err.Error())
	}
	if len(c.Fields) == 0 {
		return errors.New(`redact: config needs "fields"`)
	}
	for _, f := range c.Fields {
		fields[f] = true
	}
	if c.Mask != nil {
		mask = *c.Mask
	}
	loaded = true
	return nil
}

// walk masks every named field in v, returning whether it changed any.
func walk(v any) bool {
	changed := false
	switch t := v.(type) {
	case map[string]any:
		for k, x := range t {
			if fields[k] {
				t[k] = mask
				changed = true
			} else if walk(x) {
				changed = true
			}
		}
	case []any:
		for _, x := range t {
			if walk(x) {
				changed = true
			}
		}
	}
	return changed
}

func init() {
	guest.Handle(func(r guest.Record, w guest.Writer) error {
		if err := load(); err != nil {
			return err
		}
		dec := json.NewDecoder(bytes.NewReader(r.Value))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			return errors.New("redact: the value is not JSON")
		}
		if !walk(v) {
			w.Keep()
			return nil
		}
		out, err := json.Marshal(v)
		if err != nil {
			return err
		}
		w.EmitValue(out)
		return nil
	})
}
