// Package guest is the Go SDK for Eddy transforms (ABI v1,
// docs/transform-abi.md). A transform is a main package:
//
//	func main() {}
//
//	func init() {
//		guest.Handle(func(r guest.Record, w guest.Writer) error {
//			if bytes.Contains(r.Value, []byte("test")) {
//				return nil // drop
//			}
//			w.Keep()
//			return nil
//		})
//	}
//
// built with the standard toolchain:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o t.wasm .
//
// It has no dependencies. The parts that touch no WebAssembly (decoding a
// batch, encoding the output) build anywhere, so a transform's logic can be
// unit-tested with plain go test.
package guest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// Header is one record header; a nil Value is null.
type Header struct {
	Key   string
	Value []byte
}

// Record is one input record. A nil Key or Value is null (distinct from
// empty). The slices are valid only during the call that received them.
type Record struct {
	Timestamp int64 // milliseconds since the Unix epoch
	Key       []byte
	Value     []byte
	Headers   []Header
}

// Header returns the value of the first header named key.
func (r *Record) Header(key string) ([]byte, bool) {
	for _, h := range r.Headers {
		if h.Key == key {
			return h.Value, true
		}
	}
	return nil, false
}

// Writer collects what a transform makes of one input record. Calling
// nothing drops the record; several calls fan it out, in order.
type Writer interface {
	// Keep passes the input record through unchanged.
	Keep()
	// Emit appends a new record: its key, value and headers (the input's
	// headers are not kept). The timestamp is the input's.
	Emit(r Record)
	// EmitValue appends the input record with a new value, keeping its key
	// and headers and adding extra headers after them.
	EmitValue(value []byte, extra ...Header)
}

// Func transforms one record. A returned error fails the whole batch; what
// happens then is the binding's failure policy (reject, dead-letter, pass).
type Func func(r Record, w Writer) error

// Status codes tx_process returns for a failed batch.
const (
	StatusMalformedInput = -1
	StatusUserError      = -2
	StatusOutOfMemory    = -3
)

var errMalformed = errors.New("malformed input batch")

// decodeBatch calls fn for each of the count records encoded in in.
func decodeBatch(in []byte, count int, fn func(i int, r Record) error) error {
	off := 0
	u32 := func() (uint32, bool) {
		if len(in)-off < 4 {
			return 0, false
		}
		v := binary.LittleEndian.Uint32(in[off:])
		off += 4
		return v, true
	}
	nullable := func() ([]byte, bool) {
		n, ok := u32()
		if !ok {
			return nil, false
		}
		if n == math.MaxUint32 {
			return nil, true
		}
		if int(n) > len(in)-off {
			return nil, false
		}
		b := in[off : off+int(n) : off+int(n)]
		off += int(n)
		return b, true
	}
	var headers []Header
	for i := 0; i < count; i++ {
		recLen, ok := u32()
		if !ok || int(recLen) > len(in)-off || recLen < 20 {
			return errMalformed
		}
		end := off + int(recLen)
		ts := int64(binary.LittleEndian.Uint64(in[off:]))
		off += 8
		key, ok1 := nullable()
		val, ok2 := nullable()
		nh, ok3 := u32()
		if !ok1 || !ok2 || !ok3 || int(nh) > (end-off)/8 {
			return errMalformed
		}
		headers = headers[:0]
		for h := 0; h < int(nh); h++ {
			kl, ok := u32()
			if !ok || int(kl) > end-off {
				return errMalformed
			}
			k := string(in[off : off+int(kl)])
			off += int(kl)
			v, ok := nullable()
			if !ok {
				return errMalformed
			}
			headers = append(headers, Header{Key: k, Value: v})
		}
		if off != end {
			return errMalformed
		}
		if err := fn(i, Record{Timestamp: ts, Key: key, Value: val, Headers: headers}); err != nil {
			return err
		}
	}
	if off != len(in) {
		return errMalformed
	}
	return nil
}

// output encodes the entries of one batch. It implements Writer for the
// record being processed (src).
type output struct {
	buf []byte
	src uint32
}

func (o *output) Keep() {
	o.buf = append(o.buf, 0x01)
	o.buf = binary.LittleEndian.AppendUint32(o.buf, o.src)
}

func (o *output) Emit(r Record) {
	o.buf = append(o.buf, 0x02)
	o.buf = binary.LittleEndian.AppendUint32(o.buf, o.src)
	o.buf = append(o.buf, 0) // flags: own key, own headers
	o.buf = appendNullable(o.buf, r.Key)
	o.buf = appendNullable(o.buf, r.Value)
	o.buf = appendHeaders(o.buf, r.Headers)
}

func (o *output) EmitValue(value []byte, extra ...Header) {
	o.buf = append(o.buf, 0x02)
	o.buf = binary.LittleEndian.AppendUint32(o.buf, o.src)
	o.buf = append(o.buf, 1|2) // inherit the key, append to the headers
	o.buf = appendNullable(o.buf, value)
	o.buf = appendHeaders(o.buf, extra)
}

func appendNullable(dst, b []byte) []byte {
	if b == nil {
		return binary.LittleEndian.AppendUint32(dst, math.MaxUint32)
	}
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(b)))
	return append(dst, b...)
}

func appendHeaders(dst []byte, hs []Header) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(hs)))
	for _, h := range hs {
		dst = binary.LittleEndian.AppendUint32(dst, uint32(len(h.Key)))
		dst = append(dst, h.Key...)
		dst = appendNullable(dst, h.Value)
	}
	return dst
}

// process runs fn over a batch and returns the output entries, or a status
// code (< 0) and the error.
func process(fn Func, in []byte, count int, out *output) (int32, error) {
	out.buf = out.buf[:0]
	err := decodeBatch(in, count, func(i int, r Record) error {
		out.src = uint32(i)
		if err := fn(r, out); err != nil {
			return fmt.Errorf("record %d: %w", i, err)
		}
		return nil
	})
	switch {
	case errors.Is(err, errMalformed):
		return StatusMalformedInput, err
	case err != nil:
		return StatusUserError, err
	}
	return 0, nil
}
