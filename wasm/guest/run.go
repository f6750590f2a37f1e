package guest

// Run works on any platform: natively in a transform's unit tests, and in
// WebAssembly too (where it bypasses the host).

// Run calls the registered transform on recs with cfg as its config, as
// the host would for one batch, and returns the records it would append.
// It is for tests; a transform runs in Eddy as WebAssembly.
func Run(cfg []byte, recs []Record) ([]Record, error) {
	config = cfg
	var w collector
	for _, r := range recs {
		w.in = r
		if err := handler(r, &w); err != nil {
			return nil, err
		}
	}
	return w.out, nil
}

type collector struct {
	in  Record
	out []Record
}

func clone(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte{}, b...)
}

func cloneHeaders(hs []Header) []Header {
	out := make([]Header, len(hs))
	for i, h := range hs {
		out[i] = Header{Key: h.Key, Value: clone(h.Value)}
	}
	return out
}

func (c *collector) Keep() { c.out = append(c.out, c.in) }

func (c *collector) Emit(r Record) {
	c.out = append(c.out, Record{Timestamp: c.in.Timestamp, Key: clone(r.Key), Value: clone(r.Value), Headers: cloneHeaders(r.Headers)})
}

func (c *collector) EmitValue(value []byte, extra ...Header) {
	c.out = append(c.out, Record{Timestamp: c.in.Timestamp, Key: c.in.Key, Value: clone(value),
		Headers: append(cloneHeaders(c.in.Headers), cloneHeaders(extra)...)})
}
