package wasm

import (
	"encoding/binary"
	"errors"
	"testing"

	"github.com/eddy-broker/eddy"
)

func batch() []eddy.Record {
	return []eddy.Record{
		{Timestamp: 1, Key: []byte("a"), Value: []byte("one")},
		{Timestamp: 2, Key: []byte("b"), Value: []byte("two")},
	}
}

func keep(src uint32) []byte {
	return binary.LittleEndian.AppendUint32([]byte{tagKeep}, src)
}

func le32(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }

func cat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

// TestDecodeOutputRefusesHostileOutput: whatever a guest writes, the host
// either gets records that respect the ABI or ErrBadOutput, never a panic
// or an out-of-range read.
func TestDecodeOutputRefusesHostileOutput(t *testing.T) {
	in := batch()
	emitHdr := func(src uint32, flags byte) []byte { return cat([]byte{tagEmit}, le32(src), []byte{flags}) }
	fanOut := func(n int) []byte {
		var b []byte
		for i := 0; i < n; i++ {
			b = append(b, keep(0)...)
		}
		return b
	}
	for name, out := range map[string][]byte{
		"src out of range":     keep(2),
		"src huge":             keep(0xffffffff),
		"order reversed":       cat(keep(1), keep(0)),
		"unknown tag":          cat([]byte{0x07}, le32(0)),
		"truncated entry":      []byte{tagKeep, 0},
		"unknown flags":        cat(emitHdr(0, 0x80), le32(1), []byte("x"), le32(0)),
		"value overruns":       cat(emitHdr(0, 1), le32(1000), []byte("x")),
		"negative length":      cat(emitHdr(0, 1), le32(0xfffffffe)),
		"header count flood":   cat(emitHdr(0, 1), le32(0), le32(0x7fffffff)),
		"header key overruns":  cat(emitHdr(0, 1), le32(0), le32(1), le32(500)),
		"fan-out over 256":     fanOut(257),
		"output over budget":   cat(emitHdr(0, 1), le32(2<<20), make([]byte, 2<<20), le32(0)),
		"missing header count": cat(emitHdr(0, 1), le32(1), []byte("x")),
	} {
		res, err := DecodeOutput(out, in, EncodedSize(in))
		if !errors.Is(err, ErrBadOutput) {
			t.Errorf("%s: got %d records, err %v; want ErrBadOutput", name, len(res), err)
		}
	}
}

func TestDecodeOutputAcceptsTheABI(t *testing.T) {
	in := batch()
	out := cat(
		keep(0),
		[]byte{tagEmit}, le32(0), []byte{flagInheritKey | flagAppendHeaders}, le32(3), []byte("uno"), le32(1), le32(1), []byte("h"), le32(0xffffffff),
		[]byte{tagEmit}, le32(1), []byte{0}, le32(0xffffffff), le32(0), le32(0),
	)
	res, err := DecodeOutput(out, in, EncodedSize(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 3 || string(res[0].Value) != "one" || string(res[1].Key) != "a" || string(res[1].Value) != "uno" ||
		len(res[1].Headers) != 1 || res[1].Headers[0].Value != nil || res[2].Key != nil || res[2].Value == nil || len(res[2].Value) != 0 ||
		res[2].Timestamp != 2 {
		t.Fatalf("%+v", res)
	}
	if res, err := DecodeOutput(nil, in, 0); err != nil || len(res) != 0 {
		t.Fatalf("empty output (all dropped): %v %v", res, err)
	}
	if res, err := DecodeOutput(fanOutKeep(256), in, 0); err != nil || len(res) != 256 {
		t.Fatalf("fan-out of 256: %d %v", len(res), err)
	}
}

func fanOutKeep(n int) []byte {
	var b []byte
	for i := 0; i < n; i++ {
		b = append(b, keep(0)...)
	}
	return b
}

func FuzzDecodeOutput(f *testing.F) {
	f.Add(keep(0))
	f.Add(cat(keep(0), keep(1)))
	f.Add(cat([]byte{tagEmit}, le32(1), []byte{0}, le32(1), []byte("k"), le32(1), []byte("v"), le32(0)))
	in := batch()
	f.Fuzz(func(t *testing.T, out []byte) {
		res, err := DecodeOutput(out, in, EncodedSize(in))
		if err != nil && !errors.Is(err, ErrBadOutput) {
			t.Fatalf("error outside ErrBadOutput: %v", err)
		}
		if err == nil && len(res) > 256*len(in) {
			t.Fatalf("%d outputs for %d inputs", len(res), len(in))
		}
	})
}
