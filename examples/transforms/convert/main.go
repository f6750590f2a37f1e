// convert turns a Fahrenheit reading in a JSON field into Celsius.
//
// Config: {"field": "temp", "to": "temp_c", "decimals": 2}. "to" defaults
// to "field" (converted in place); "decimals" to 2. A record without the
// field passes unchanged; a value that is not a JSON object, or a field
// that is not a number, fails the batch.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"

	"github.com/eddy-broker/eddy/wasm/guest"
)

func main() {}

type config struct {
	Field    string `json:"field"`
	To       string `json:"to"`
	Decimals *int   `json:"decimals"`
}

var cfg *config

func load() error {
	if cfg != nil {
		return nil
	}
	c := &config{}
	if err := json.Unmarshal(guest.Config(), c); err != nil {
		return errors.New("convert: config: " + err.Error())
	}
	if c.Field == "" {
		return errors.New(`convert: config needs "field"`)
	}
	if c.To == "" {
		c.To = c.Field
	}
	if c.Decimals == nil {
		c.Decimals = new(int)
		*c.Decimals = 2
	}
	cfg = c
	return nil
}

func init() {
	guest.Handle(func(r guest.Record, w guest.Writer) error {
		if err := load(); err != nil {
			return err
		}
		dec := json.NewDecoder(bytes.NewReader(r.Value))
		dec.UseNumber()
		var obj map[string]any
		if err := dec.Decode(&obj); err != nil || obj == nil {
			return errors.New("convert: the value is not a JSON object")
		}
		raw, ok := obj[cfg.Field]
		if !ok {
			w.Keep()
			return nil
		}
		n, ok := raw.(json.Number)
		if !ok {
			return fmt.Errorf("convert: field %q is not a number", cfg.Field)
		}
		f, err := n.Float64()
		if err != nil {
			return fmt.Errorf("convert: field %q: %v", cfg.Field, err)
		}
		c := (f - 32) * 5 / 9
		p := math.Pow(10, float64(*cfg.Decimals))
		obj[cfg.To] = json.Number(strconv.FormatFloat(math.Round(c*p)/p, 'f', -1, 64))
		out, err := json.Marshal(obj)
		if err != nil {
			return err
		}
		w.EmitValue(out)
		return nil
	})
}
