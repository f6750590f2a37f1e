// filter drops records whose numeric JSON field is outside [min, max].
//
// Config: {"field": "temp", "min": -40, "max": 85}. A record whose value is
// not a JSON object, or has no such numeric field, passes unchanged: the
// filter removes out-of-range readings, not malformed ones (bind with a
// dead-letter policy and a stricter transform for those).
package main

import (
	"encoding/json"
	"errors"
	"math"

	"github.com/eddy-broker/eddy/wasm/guest"
)

func main() {}

type config struct {
	Field string   `json:"field"`
	Min   *float64 `json:"min"`
	Max   *float64 `json:"max"`
}

var cfg *config

func load() error {
	if cfg != nil {
		return nil
	}
	c := &config{}
	if err := json.Unmarshal(guest.Config(), c); err != nil {
		return errors.New("filter: config: " + err.Error())
	}
	if c.Field == "" {
		return errors.New(`filter: config needs "field"`)
	}
	if c.Min == nil {
		c.Min = new(float64)
		*c.Min = math.Inf(-1)
	}
	if c.Max == nil {
		c.Max = new(float64)
		*c.Max = math.Inf(1)
	}
	cfg = c
	return nil
}

func init() {
	guest.Handle(func(r guest.Record, w guest.Writer) error {
		if err := load(); err != nil {
			return err
		}
		var obj map[string]json.RawMessage
		if json.Unmarshal(r.Value, &obj) != nil {
			w.Keep()
			return nil
		}
		var v float64
		raw, ok := obj[cfg.Field]
		if !ok || json.Unmarshal(raw, &v) != nil {
			w.Keep()
			return nil
		}
		if v >= *cfg.Min && v <= *cfg.Max {
			w.Keep()
		}
		return nil // out of range: dropped
	})
}
