// Package wasm runs tenants' WebAssembly transforms. This file is the host
// side of the wire format of ABI v1 (docs/transform-abi.md): the input batch
// the host writes into guest memory, and the output entries it reads back.
// Everything read from the guest is bounds-checked; nothing it says is
// trusted.
package wasm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/eddy-broker/eddy"
)

// ABIVersion is what a module's tx_abi_version export must return.
const ABIVersion = 1

// Output entry tags.
const (
	tagKeep = 0x01
	tagEmit = 0x02
)

// Emit flags.
const (
	flagInheritKey     = 1 // no key follows: the source record's key
	flagAppendHeaders  = 2 // headers are appended to the source's, not replacing them
	knownEmitFlags     = flagInheritKey | flagAppendHeaders
	maxOutputsPerInput = 256
	minOutputBudget    = 1 << 20
)

// Limits of one batch's output, as ABI v1 fixes them.
//
// At most maxOutputsPerInput outputs per input record, and at most
// max(4 x input bytes, 1 MiB) output bytes.
func outputBudget(inputBytes int) int { return max(4*inputBytes, minOutputBudget) }

// ErrBadOutput: the guest's output breaks the ABI. The instance that wrote it
// is discarded.
var ErrBadOutput = errors.New("transform output breaks ABI v1")

// EncodeBatch appends the ABI v1 encoding of recs to dst:
//
//	repeat: u32 rec_len | i64 timestamp_ms | i32 key_len (-1 = null) | key
//	        | i32 val_len (-1 = null) | value | u32 n_headers
//	        | { u32 k_len | k | i32 v_len (-1 = null) | v }*
//
// All integers little-endian; rec_len counts the bytes after itself.
func EncodeBatch(dst []byte, recs []eddy.Record) []byte {
	for i := range recs {
		r := &recs[i]
		at := len(dst)
		dst = binary.LittleEndian.AppendUint32(dst, 0) // rec_len, patched below
		dst = binary.LittleEndian.AppendUint64(dst, uint64(r.Timestamp))
		dst = appendNullable(dst, r.Key)
		dst = appendNullable(dst, r.Value)
		dst = binary.LittleEndian.AppendUint32(dst, uint32(len(r.Headers)))
		for _, h := range r.Headers {
			dst = binary.LittleEndian.AppendUint32(dst, uint32(len(h.Key)))
			dst = append(dst, h.Key...)
			dst = appendNullable(dst, h.Value)
		}
		binary.LittleEndian.PutUint32(dst[at:], uint32(len(dst)-at-4))
	}
	return dst
}

// EncodedSize is len(EncodeBatch(nil, recs)), without encoding.
func EncodedSize(recs []eddy.Record) int {
	n := 0
	for i := range recs {
		r := &recs[i]
		n += 4 + 8 + 4 + len(r.Key) + 4 + len(r.Value) + 4
		for _, h := range r.Headers {
			n += 4 + len(h.Key) + 4 + len(h.Value)
		}
	}
	return n
}

func appendNullable(dst, b []byte) []byte {
	if b == nil {
		return binary.LittleEndian.AppendUint32(dst, math.MaxUint32) // -1
	}
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(b)))
	return append(dst, b...)
}

// DecodeOutput turns the guest's output entries for a batch of inputs into
// the records to append, in order. out is a copy of the guest's output
// (the host copies it out of guest memory once per batch); the records
// returned reference out and inputs.
//
//	KEEP: 0x01 | u32 src
//	EMIT: 0x02 | u32 src | u8 flags | [i32 key_len | key]  (absent if flags&1)
//	      | i32 val_len | value | u32 n_headers | headers
//
// src indices must be < len(inputs) and non-decreasing; an input without an
// entry is dropped; several entries for one input fan it out. Timestamps are
// inherited from the source record.
func DecodeOutput(out []byte, inputs []eddy.Record, inputBytes int) ([]eddy.Record, error) {
	return decodeOutput(out, inputs, inputBytes, nil)
}

// decodeOutput is DecodeOutput that, when src is not nil, appends to it the
// input index of each output record.
func decodeOutput(out []byte, inputs []eddy.Record, inputBytes int, src *[]int) ([]eddy.Record, error) {
	d := reader{b: out}
	var res []eddy.Record
	budget := outputBudget(inputBytes)
	last, perSrc := -1, 0
	for d.more() {
		tag := d.u8()
		idx := int(d.u32())
		if d.err != nil {
			break
		}
		if idx >= len(inputs) {
			return nil, fmt.Errorf("%w: entry %d names record %d of a batch of %d", ErrBadOutput, len(res), idx, len(inputs))
		}
		if idx < last {
			return nil, fmt.Errorf("%w: entry %d names record %d after record %d (order must be kept)", ErrBadOutput, len(res), idx, last)
		}
		if idx != last {
			last, perSrc = idx, 0
		}
		if perSrc++; perSrc > maxOutputsPerInput {
			return nil, fmt.Errorf("%w: more than %d outputs for record %d", ErrBadOutput, maxOutputsPerInput, idx)
		}
		in := &inputs[idx]
		switch tag {
		case tagKeep:
			if src != nil {
				*src = append(*src, idx)
			}
			res = append(res, *in)
			budget -= in.Size()
		case tagEmit:
			flags := d.u8()
			if flags&^knownEmitFlags != 0 {
				return nil, fmt.Errorf("%w: unknown emit flags %#x", ErrBadOutput, flags)
			}
			r := eddy.Record{Timestamp: in.Timestamp, Key: in.Key}
			if flags&flagInheritKey == 0 {
				r.Key = d.nullable()
			}
			r.Value = d.nullable()
			n := int(d.u32())
			if d.err == nil && n > d.remaining()/8 { // each header is at least 8 bytes
				return nil, fmt.Errorf("%w: %d headers do not fit in the output", ErrBadOutput, n)
			}
			if flags&flagAppendHeaders != 0 {
				r.Headers = append(r.Headers, in.Headers...)
			}
			for i := 0; i < n && d.err == nil; i++ {
				k := d.bytes(int(d.u32()))
				r.Headers = append(r.Headers, eddy.Header{Key: string(k), Value: d.nullable()})
			}
			if d.err != nil {
				break
			}
			if src != nil {
				*src = append(*src, idx)
			}
			res = append(res, r)
			budget -= r.Size()
		default:
			return nil, fmt.Errorf("%w: unknown entry tag %#x at byte %d", ErrBadOutput, tag, d.off-5)
		}
		if budget < 0 {
			return nil, fmt.Errorf("%w: output over %d bytes for %d input bytes", ErrBadOutput, outputBudget(inputBytes), inputBytes)
		}
	}
	if d.err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadOutput, d.err)
	}
	return res, nil
}

// reader decodes little-endian fields, recording the first overrun.
type reader struct {
	b   []byte
	off int
	err error
}

func (d *reader) more() bool     { return d.err == nil && d.off < len(d.b) }
func (d *reader) remaining() int { return len(d.b) - d.off }

func (d *reader) take(n int) []byte {
	if d.err != nil {
		return nil
	}
	if n < 0 || n > len(d.b)-d.off {
		d.err = fmt.Errorf("a field of %d bytes at byte %d overruns the %d-byte output", n, d.off, len(d.b))
		return nil
	}
	p := d.b[d.off : d.off+n : d.off+n]
	d.off += n
	return p
}

func (d *reader) u8() byte {
	if p := d.take(1); p != nil {
		return p[0]
	}
	return 0
}

func (d *reader) u32() uint32 {
	if p := d.take(4); p != nil {
		return binary.LittleEndian.Uint32(p)
	}
	return 0
}

func (d *reader) bytes(n int) []byte { return d.take(n) }

// nullable reads i32 len (-1 = null) and the bytes.
func (d *reader) nullable() []byte {
	n := int32(d.u32())
	if d.err != nil || n == -1 {
		return nil
	}
	if n < -1 {
		d.err = fmt.Errorf("negative length %d", n)
		return nil
	}
	p := d.take(int(n))
	if p == nil && d.err == nil {
		return []byte{}
	}
	return p
}
