package wasm

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
)

// module builds a module of one function () -> () with body (the
// instructions, without the final end), and an optional memory section.
func module(body []byte, memory []byte) []byte {
	leb := leb128
	sec := func(id byte, content []byte) []byte {
		return append(append([]byte{id}, leb(len(content))...), content...)
	}
	fn := append(append([]byte{0}, body...), 0x0b) // no locals
	m := []byte("\x00asm\x01\x00\x00\x00")
	m = append(m, sec(1, []byte{1, 0x60, 0, 0})...)
	m = append(m, sec(3, []byte{1, 0})...)
	if memory != nil {
		m = append(m, sec(5, memory)...)
	}
	return append(m, sec(10, append([]byte{1}, append(leb(len(fn)), fn...)...))...)
}

// manyFunctions is n functions () -> () with the same body.
func manyFunctions(n int, body []byte) []byte {
	one := module(body, nil)
	// module's layout: header, type, function (1 entry), code (1 entry).
	fn := append(append([]byte{0}, body...), 0x0b)
	var code []byte
	for i := 0; i < n; i++ {
		code = append(append(code, leb128(len(fn))...), fn...)
	}
	m := append([]byte{}, one[:8+6]...) // header and the type section
	funcs := append(leb128(n), make([]byte, n)...)
	m = append(append(append(m, 3), leb128(len(funcs))...), funcs...)
	code = append(leb128(n), code...)
	return append(append(append(m, 10), leb128(len(code))...), code...)
}

func leb128(n int) []byte {
	var b []byte
	for {
		c := byte(n & 0x7f)
		n >>= 7
		if n != 0 {
			c |= 0x80
		}
		b = append(b, c)
		if n == 0 {
			return b
		}
	}
}

func nested(depth int) []byte {
	return append(bytes.Repeat([]byte{0x02, 0x40}, depth), bytes.Repeat([]byte{0x0b}, depth)...)
}

// brTable is i32.const 0, then a br_table of n targets, all to label 0.
func brTable(n int) []byte {
	b := append([]byte{0x02, 0x40, 0x41, 0x00, 0x0e}, leb128(n)...)
	b = append(b, bytes.Repeat([]byte{0}, n+1)...)
	return append(b, 0x0b)
}

// TestInspectRefusesBombs: the modules that kept wazero's compiler busy for
// minutes are refused by their shape, before compiling, with what is over
// which limit.
func TestInspectRefusesBombs(t *testing.T) {
	e := newEngine(t, Limits{})
	for _, tc := range []struct {
		name, want string
		bin        []byte
	}{
		{"blocks nested 60,000 deep", "nest over 4096", module(nested(60_000), nil)},
		{"a br_table of 100,000 targets", "br_table targets over 16384", module(brTable(100_000), nil)},
		{"many functions each at the limits", "too long to compile", manyFunctions(40, nested(4000))},
		{"a br_table of 1.6M targets", "over the limit of 1048576", module(brTable(1_600_000), nil)},
		{"a 2 MiB function", "over the limit of 1048576", module(bytes.Repeat([]byte{0x01}, 2<<20), nil)},
		{"memory of 65,536 pages declared", "over the limit of 512 pages", module(nil, []byte{1, 1, 1, 0x80, 0x80, 0x04})},
		{"truncated", "truncated", module(nested(10), nil)[:40]},
		{"an unknown instruction", "unknown instruction 0xff", module([]byte{0xff}, nil)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.Compile(context.Background(), tc.bin)
			if !errors.Is(err, ErrInvalidModule) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want invalid_module with %q", err, tc.want)
			}
		})
	}
	// An imported memory is named as such (not as a table, nor a WASI call).
	imp := append([]byte{1}, append(append(leb128(3), "env"...), append(append(leb128(6), "memory"...), 2, 0, 1)...)...)
	withImport := append(append([]byte("\x00asm\x01\x00\x00\x00"), 2, byte(len(imp))), imp...)
	if _, err := e.Compile(context.Background(), withImport); !errors.Is(err, ErrInvalidModule) || !strings.Contains(err.Error(), "imports not allowed: an imported memory") {
		t.Fatalf("an imported memory: %v", err)
	}
	// Under the limits the same shapes compile (wazero then refuses what
	// is not a transform: no exports).
	for _, bin := range [][]byte{module(nested(4000), nil), module(brTable(16_000), nil), module(nil, []byte{1, 1, 1, 2})} {
		if _, err := e.Compile(context.Background(), bin); err == nil || !strings.Contains(err.Error(), "missing exports") {
			t.Fatalf("a module within the shape: %v", err)
		}
	}
}

// TestShapeOfRealGuests: the Go guests (standard toolchain) are far inside
// the default shape: nesting, br_table targets, function size and count
// each under a quarter of their limit.
func TestShapeOfRealGuests(t *testing.T) {
	var s Shape
	s.setDefaults(512)
	for name, bin := range guests {
		if name == "bomb" || name == "forbidden" {
			continue
		}
		st, err := Inspect(bin, s)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		t.Logf("%s: %+v", name, st)
		if st.MaxNesting*4 > s.MaxNesting || st.MaxBrTargets*4 > s.MaxBrTableTargets || st.MaxBodyBytes*4 > s.MaxFunctionBytes ||
			st.Functions*4 > s.MaxFunctions || st.Cost*4 > s.MaxCost {
			t.Errorf("%s is within 4x of a shape limit: %+v", name, st)
		}
	}
}

// BenchmarkCompileAtShapeLimits: what the worst module the shape admits
// costs to compile: blocks nested to the limit, a br_table at the limit.
func BenchmarkCompileAtShapeLimits(b *testing.B) {
	for _, tc := range []struct {
		name string
		bin  []byte
	}{{"nesting-4096", module(nested(4096), nil)}, {"br_table-16384", module(brTable(16_383), nil)},
		{"cost-limit", manyFunctions(15, nested(4095))}} {
		b.Run(tc.name, func(b *testing.B) {
			for b.Loop() {
				e, _ := NewEngine(context.Background(), "", Limits{})
				e.Compile(context.Background(), tc.bin)
				e.Close(context.Background())
			}
		})
	}
}
