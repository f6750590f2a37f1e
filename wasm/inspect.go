package wasm

import (
	"errors"
	"fmt"
)

// Shape bounds a module's structure, checked by Inspect before wazero
// compiles it. wazero's compile time grows with the square of block nesting
// and ignores its context: a 6 MB module of nested blocks kept a core busy
// for over 12 minutes, a br_table of 1.6M targets took 27 s and 915 MB. The
// defaults are far above what real guests reach (a Go guest built with the
// standard toolchain nests a few hundred deep; see TestShapeOfRealGuests)
// and keep the worst module to about a second of compilation.
type Shape struct {
	// MaxFunctions bounds defined plus imported functions. Default 100,000.
	MaxFunctions int
	// MaxFunctionBytes bounds one function body. Default 1 MiB.
	MaxFunctionBytes int
	// MaxNesting bounds block, loop and if nesting in a function. Default
	// 4,096 (measured: 20,000 took 1.8 s to compile, 60,000 over 10 s).
	MaxNesting int
	// MaxBrTableTargets bounds the targets of the br_tables of one
	// function, together. Default 16,384 (measured: 0.16 s; 65,536 took
	// 1.9 s).
	MaxBrTableTargets int
	// MaxCost bounds the module's compile cost: over its functions, the
	// square of the nesting plus an eighth of the square of the br_table
	// targets (both grow quadratically in wazero). Without it, many
	// functions each at the per-function limits would add up to hours.
	// Default 2^28, about a second.
	MaxCost int64
	// MaxLocals bounds a function's locals. Default 50,000.
	MaxLocals int
	// MaxMemoryPages bounds the memory a module declares (minimum and
	// maximum), in 64 KiB pages. Default: the engine's MemoryPages.
	MaxMemoryPages uint32
}

func (s *Shape) setDefaults(memoryPages uint32) {
	if s.MaxFunctions <= 0 {
		s.MaxFunctions = 100_000
	}
	if s.MaxFunctionBytes <= 0 {
		s.MaxFunctionBytes = 1 << 20
	}
	if s.MaxNesting <= 0 {
		s.MaxNesting = 4096
	}
	if s.MaxBrTableTargets <= 0 {
		s.MaxBrTableTargets = 16_384
	}
	if s.MaxCost <= 0 {
		s.MaxCost = 1 << 28
	}
	if s.MaxLocals <= 0 {
		s.MaxLocals = 50_000
	}
	if s.MaxMemoryPages == 0 {
		s.MaxMemoryPages = memoryPages
	}
}

// Stats is what Inspect measured of a module.
type Stats struct {
	Functions      int
	MaxBodyBytes   int
	MaxNesting     int
	MaxBrTargets   int // in one function, all br_tables together
	MaxLocals      int
	Cost           int64 // see Shape.MaxCost
	MemoryMinPages uint32
	MemoryMaxPages uint32 // 0: none declared
}

var errTruncated = errors.New("truncated")

// wreader reads the WebAssembly binary encoding.
type wreader struct {
	b   []byte
	off int
}

func (r *wreader) byte() (byte, error) {
	if r.off >= len(r.b) {
		return 0, errTruncated
	}
	c := r.b[r.off]
	r.off++
	return c, nil
}

// leb reads an unsigned LEB128 of at most bits bits (signed ones are
// skipped the same way: only their length matters here).
func (r *wreader) leb(bits int) (uint64, error) {
	var v uint64
	for i, shift := 0, 0; ; i, shift = i+1, shift+7 {
		if i == (bits+6)/7 {
			return 0, errors.New("LEB128 too long")
		}
		c, err := r.byte()
		if err != nil {
			return 0, err
		}
		if shift < 64 {
			v |= uint64(c&0x7f) << shift
		}
		if c&0x80 == 0 {
			return v, nil
		}
	}
}

func (r *wreader) u32() (int, error) {
	v, err := r.leb(32)
	if v > 1<<31 {
		return 0, errors.New("count too large")
	}
	return int(v), err
}

func (r *wreader) skip(n int) error {
	if n < 0 || r.off+n > len(r.b) {
		return errTruncated
	}
	r.off += n
	return nil
}

// Inspect walks a module's sections and every function body and refuses
// (wrapping ErrInvalidModule) one whose shape is over s. It does not
// validate types: wazero does, once the shape is known to be cheap.
func Inspect(bin []byte, s Shape) (Stats, error) {
	st, err := inspect(bin, s)
	if err != nil {
		return st, fmt.Errorf("%w: %v", ErrInvalidModule, err)
	}
	return st, nil
}

func inspect(bin []byte, s Shape) (Stats, error) {
	var st Stats
	if len(bin) < 8 || string(bin[:4]) != "\x00asm" {
		return st, errors.New("not a WebAssembly binary (no \\0asm header)")
	}
	r := &wreader{b: bin, off: 8}
	for r.off < len(r.b) {
		id, err := r.byte()
		if err != nil {
			return st, err
		}
		size, err := r.u32()
		if err != nil {
			return st, fmt.Errorf("section %d: %v", id, err)
		}
		if r.off+size > len(r.b) {
			return st, fmt.Errorf("section %d: %v", id, errTruncated)
		}
		sec := &wreader{b: r.b[r.off : r.off+size]}
		r.off += size
		switch id {
		case 2: // imports: count the functions
			n, err := sec.u32()
			if err != nil {
				return st, err
			}
			for i := 0; i < n; i++ {
				kind, err := skipImport(sec)
				if err != nil {
					return st, fmt.Errorf("import %d: %v", i, err)
				}
				if kind == 0 {
					st.Functions++
				}
			}
		case 3: // functions
			n, err := sec.u32()
			if err != nil {
				return st, err
			}
			st.Functions += n
		case 5: // memories
			n, err := sec.u32()
			if err != nil {
				return st, err
			}
			for i := 0; i < n; i++ {
				flags, err := sec.byte()
				if err != nil {
					return st, err
				}
				lo, err := sec.u32()
				if err != nil {
					return st, err
				}
				st.MemoryMinPages = uint32(lo)
				if flags&1 != 0 {
					hi, err := sec.u32()
					if err != nil {
						return st, err
					}
					st.MemoryMaxPages = uint32(hi)
				}
			}
		case 10: // code
			if err := inspectCode(sec, s, &st); err != nil {
				return st, err
			}
		}
		if st.Functions > s.MaxFunctions {
			return st, fmt.Errorf("%d functions, over the limit of %d", st.Functions, s.MaxFunctions)
		}
	}
	if st.MemoryMinPages > s.MaxMemoryPages || st.MemoryMaxPages > s.MaxMemoryPages {
		return st, fmt.Errorf("the module declares memory of %d to %d pages, over the limit of %d pages (%d MiB)",
			st.MemoryMinPages, st.MemoryMaxPages, s.MaxMemoryPages, s.MaxMemoryPages/16)
	}
	return st, nil
}

// skipImport reads one import entry and returns its kind.
func skipImport(r *wreader) (byte, error) {
	for i := 0; i < 2; i++ { // module and name
		n, err := r.u32()
		if err != nil {
			return 0, err
		}
		if err := r.skip(n); err != nil {
			return 0, err
		}
	}
	kind, err := r.byte()
	if err != nil {
		return 0, err
	}
	switch kind {
	case 0: // function: type index
		_, err = r.u32()
	case 1: // table: reftype, limits
		if _, err = r.byte(); err == nil {
			err = skipLimits(r)
		}
	case 2: // memory: limits
		err = skipLimits(r)
	case 3: // global: valtype, mutability
		err = r.skip(2)
	default:
		err = fmt.Errorf("unknown import kind %d", kind)
	}
	return kind, err
}

func skipLimits(r *wreader) error {
	flags, err := r.byte()
	if err != nil {
		return err
	}
	if _, err := r.u32(); err != nil {
		return err
	}
	if flags&1 != 0 {
		_, err = r.u32()
	}
	return err
}

func inspectCode(r *wreader, s Shape, st *Stats) error {
	n, err := r.u32()
	if err != nil {
		return err
	}
	for i := 0; i < n; i++ {
		size, err := r.u32()
		if err != nil {
			return fmt.Errorf("function %d: %v", i, err)
		}
		if size > s.MaxFunctionBytes {
			return fmt.Errorf("function %d is %d bytes, over the limit of %d", i, size, s.MaxFunctionBytes)
		}
		if r.off+size > len(r.b) {
			return fmt.Errorf("function %d: %v", i, errTruncated)
		}
		st.MaxBodyBytes = max(st.MaxBodyBytes, size)
		body := &wreader{b: r.b[r.off : r.off+size]}
		r.off += size
		if err := inspectBody(body, s, st); err != nil {
			return fmt.Errorf("function %d: %v", i, err)
		}
	}
	return nil
}

func inspectBody(r *wreader, s Shape, st *Stats) error {
	groups, err := r.u32()
	if err != nil {
		return err
	}
	locals := 0
	for g := 0; g < groups; g++ {
		c, err := r.u32()
		if err != nil {
			return err
		}
		if locals += c; locals > s.MaxLocals {
			return fmt.Errorf("over %d locals", s.MaxLocals)
		}
		if _, err := r.byte(); err != nil {
			return err
		}
	}
	st.MaxLocals = max(st.MaxLocals, locals)
	depth, deepest, targets := 1, 1, 0
	for depth > 0 {
		op, err := r.byte()
		if err != nil {
			return err
		}
		switch op {
		case 0x02, 0x03, 0x04: // block, loop, if
			if err := skipBlockType(r); err != nil {
				return err
			}
			if depth++; depth > s.MaxNesting {
				return fmt.Errorf("blocks nest over %d deep", s.MaxNesting)
			}
			deepest = max(deepest, depth)
		case 0x0b: // end
			depth--
		case 0x0e: // br_table
			c, err := r.u32()
			if err != nil {
				return err
			}
			if targets += c + 1; targets > s.MaxBrTableTargets {
				return fmt.Errorf("br_table targets over %d", s.MaxBrTableTargets)
			}
			for i := 0; i <= c; i++ {
				if _, err := r.u32(); err != nil {
					return err
				}
			}
		default:
			if err := skipImmediates(r, op); err != nil {
				return err
			}
		}
	}
	st.MaxNesting = max(st.MaxNesting, deepest)
	st.MaxBrTargets = max(st.MaxBrTargets, targets)
	if st.Cost += int64(deepest)*int64(deepest) + int64(targets)*int64(targets)/8; st.Cost > s.MaxCost {
		return fmt.Errorf("the module's blocks and br_tables together would take too long to compile (cost %d, limit %d)", st.Cost, s.MaxCost)
	}
	if r.off != len(r.b) {
		return errors.New("code after the function's end")
	}
	return nil
}

func skipBlockType(r *wreader) error {
	c, err := r.byte()
	if err != nil {
		return err
	}
	if c == 0x40 || (c >= 0x6f && c <= 0x7f) {
		return nil // empty or a value type
	}
	r.off-- // a type index, as a signed LEB128
	_, err = r.leb(33)
	return err
}

// skipImmediates skips the immediates of op (all but block types, end and
// br_table, handled by the caller).
func skipImmediates(r *wreader, op byte) error {
	var err error
	u := func(n int) {
		for i := 0; i < n && err == nil; i++ {
			_, err = r.leb(64)
		}
	}
	switch {
	case op <= 0x01, op == 0x05, op == 0x0f, op == 0x1a, op == 0x1b, op >= 0x45 && op <= 0xc4, op == 0xd1:
	case op == 0x0c, op == 0x0d, op == 0x10, op == 0x12, op >= 0x20 && op <= 0x26, op == 0xd2:
		u(1)
	case op == 0x11, op == 0x13, op >= 0x28 && op <= 0x3e:
		u(2) // type and table, or a memarg
	case op == 0x1c: // select t*
		var n int
		if n, err = r.u32(); err == nil {
			err = r.skip(n)
		}
	case op == 0x3f, op == 0x40, op == 0xd0:
		err = r.skip(1)
	case op == 0x41, op == 0x42:
		u(1)
	case op == 0x43:
		err = r.skip(4)
	case op == 0x44:
		err = r.skip(8)
	case op == 0xfc:
		var sub int
		if sub, err = r.u32(); err != nil {
			return err
		}
		switch {
		case sub <= 7:
		case sub == 8:
			u(1)
			if err == nil {
				err = r.skip(1)
			}
		case sub == 9, sub == 13, sub >= 15 && sub <= 17:
			u(1)
		case sub == 10:
			err = r.skip(2)
		case sub == 11:
			err = r.skip(1)
		case sub == 12, sub == 14:
			u(2)
		default:
			return fmt.Errorf("unknown instruction 0xfc %d", sub)
		}
	case op == 0xfd:
		var sub int
		if sub, err = r.u32(); err != nil {
			return err
		}
		switch {
		case sub <= 11, sub == 92, sub == 93:
			u(2)
		case sub == 12, sub == 13:
			err = r.skip(16)
		case sub >= 21 && sub <= 34:
			err = r.skip(1)
		case sub >= 84 && sub <= 91:
			u(2)
			if err == nil {
				err = r.skip(1)
			}
		}
	case op == 0xfe:
		var sub int
		if sub, err = r.u32(); err != nil {
			return err
		}
		if sub == 3 {
			err = r.skip(1)
		} else {
			u(2)
		}
	default:
		return fmt.Errorf("unknown instruction 0x%02x", op)
	}
	return err
}
