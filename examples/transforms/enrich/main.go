// enrich adds config-given fields (a site, a gateway, ...) to every JSON
// object value, and the same fields as headers.
//
// Config: {"fields": {"site": "edge-01", "gateway": "gw-7"}}. A value that
// is not a JSON object fails the batch (the binding's on_error decides
// what happens to it).
//
// The value is not parsed: the fields are spliced in before the closing
// brace, so the cost is one copy per record.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"sort"

	"github.com/eddy-broker/eddy/wasm/guest"
)

func main() {}

var (
	loaded  bool
	splice  []byte // `,"site":"edge-01","gateway":"gw-7"` (sorted by name)
	headers []guest.Header
)

func load() error {
	if loaded {
		return nil
	}
	var c struct {
		Fields map[string]string `json:"fields"`
	}
	if err := json.Unmarshal(guest.Config(), &c); err != nil {
		return errors.New("enrich: config: " + err.Error())
	}
	if len(c.Fields) == 0 {
		return errors.New(`enrich: config needs "fields"`)
	}
	names := make([]string, 0, len(c.Fields))
	for k := range c.Fields {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		kb, _ := json.Marshal(k)
		vb, _ := json.Marshal(c.Fields[k])
		splice = append(append(append(append(splice, ','), kb...), ':'), vb...)
		headers = append(headers, guest.Header{Key: k, Value: []byte(c.Fields[k])})
	}
	loaded = true
	return nil
}

var buf []byte

func init() {
	guest.Handle(func(r guest.Record, w guest.Writer) error {
		if err := load(); err != nil {
			return err
		}
		v := bytes.TrimSpace(r.Value)
		if len(v) < 2 || v[0] != '{' || v[len(v)-1] != '}' {
			return errors.New("enrich: the value is not a JSON object")
		}
		body := bytes.TrimSpace(v[1 : len(v)-1])
		buf = append(buf[:0], '{')
		buf = append(buf, body...)
		if len(body) == 0 {
			buf = append(buf, splice[1:]...) // no leading comma in {}
		} else {
			buf = append(buf, splice...)
		}
		buf = append(buf, '}')
		w.EmitValue(buf, headers...) // the host copies the output before the next call
		return nil
	})
}
