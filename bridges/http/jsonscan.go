package httpapi

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/eddy-broker/eddy"
)

// The produce body parser. Decoding {"records":[...]} with encoding/json
// scanned every byte three times through its state machine (Decoder's
// readValue, the decode pass, RawMessage's rescan) and copied the body
// twice; it was the largest cost on the produce path. This parser walks
// the body once, validates it fully, and leaves key, value, headers and
// timestamp as slices of the body (jsonBytes copies what it keeps). It
// accepts what encoding/json with DisallowUnknownFields accepts (field
// names match case-insensitively, a null record is an empty one), and is
// stricter in two ways: a field given twice and anything after the body's
// value are refused. FuzzProduceJSON checks it against encoding/json.

// maxJSONDepth is encoding/json's nesting limit.
const maxJSONDepth = 10000

type jscan struct {
	b     []byte
	i     int
	depth int
}

// scanErr is a malformed body; strict marks what encoding/json would have
// let through (a repeated field, trailing data).
type scanErr struct {
	msg    string
	strict bool
}

func (e *scanErr) Error() string { return e.msg }

func (s *jscan) fail(format string, args ...any) error {
	return &scanErr{msg: fmt.Sprintf(format, args...)}
}

func (s *jscan) unexpected() error {
	if s.i >= len(s.b) {
		return s.fail("unexpected end of JSON input")
	}
	return s.fail("invalid character %s at offset %d", strconv.QuoteRune(rune(s.b[s.i])), s.i)
}

func (s *jscan) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// peek is the next byte after whitespace, 0 at the end.
func (s *jscan) peek() byte {
	s.ws()
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

func (s *jscan) expect(c byte) error {
	if s.peek() != c {
		return s.unexpected()
	}
	s.i++
	return nil
}

// end: nothing but whitespace may follow the body's value.
func (s *jscan) end() error {
	if s.ws(); s.i < len(s.b) {
		return &scanErr{msg: fmt.Sprintf("trailing data at offset %d", s.i), strict: true}
	}
	return nil
}

// literal consumes word (true, false, null).
func (s *jscan) literal(word string) error {
	if len(s.b)-s.i < len(word) || string(s.b[s.i:s.i+len(word)]) != word {
		for j := 0; j < len(word) && s.i < len(s.b) && s.b[s.i] == word[j]; j++ {
			s.i++
		}
		return s.unexpected()
	}
	s.i += len(word)
	return nil
}

// str consumes a string and returns it raw, quotes included. The quote
// and backslash searches are bytes.IndexByte (vectorized); only the control
// character check looks at every byte.
func (s *jscan) str() ([]byte, error) {
	b, start := s.b, s.i
	i := s.i + 1 // after the opening quote
	for {
		j := bytes.IndexByte(b[i:], '"')
		if j < 0 {
			j = len(b) - i
		}
		seg := b[i : i+j]
		if k := bytes.IndexByte(seg, '\\'); k >= 0 {
			seg = seg[:k]
		}
		if c := firstControl(seg); c >= 0 {
			s.i = i + c
			return nil, s.unexpected()
		}
		i += len(seg)
		if i >= len(b) {
			s.i = i
			return nil, s.unexpected()
		}
		if b[i] == '"' {
			s.i = i + 1
			return b[start:s.i], nil
		}
		// A backslash: one escape.
		i++
		if i >= len(b) {
			s.i = i
			return nil, s.unexpected()
		}
		switch b[i] {
		case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			i++
		case 'u':
			i++
			for k := 0; k < 4; k++ {
				if i >= len(b) || !isHex(b[i]) {
					s.i = i
					return nil, s.unexpected()
				}
				i++
			}
		default:
			s.i = i
			return nil, s.unexpected()
		}
	}
}

// firstControl is the index of the first byte below 0x20, or -1. It
// tests eight bytes at a time: a word has a byte below 0x20 exactly when
// (x - 0x20...) & ^x & 0x80... is not zero.
func firstControl(seg []byte) int {
	const lo, hi = 0x2020202020202020, 0x8080808080808080
	i := 0
	for ; i+8 <= len(seg); i += 8 {
		x := binary.LittleEndian.Uint64(seg[i:])
		if (x-lo)&^x&hi != 0 {
			break
		}
	}
	for ; i < len(seg); i++ {
		if seg[i] < 0x20 {
			return i
		}
	}
	return -1
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// number consumes a number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *jscan) number() ([]byte, error) {
	start := s.i
	if s.b[s.i] == '-' {
		s.i++
	}
	switch {
	case s.i < len(s.b) && s.b[s.i] == '0':
		s.i++
	case s.i < len(s.b) && isDigit(s.b[s.i]):
		for s.i < len(s.b) && isDigit(s.b[s.i]) {
			s.i++
		}
	default:
		return nil, s.unexpected()
	}
	if s.i < len(s.b) && s.b[s.i] == '.' {
		s.i++
		if s.i >= len(s.b) || !isDigit(s.b[s.i]) {
			return nil, s.unexpected()
		}
		for s.i < len(s.b) && isDigit(s.b[s.i]) {
			s.i++
		}
	}
	if s.i < len(s.b) && (s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		s.i++
		if s.i < len(s.b) && (s.b[s.i] == '+' || s.b[s.i] == '-') {
			s.i++
		}
		if s.i >= len(s.b) || !isDigit(s.b[s.i]) {
			return nil, s.unexpected()
		}
		for s.i < len(s.b) && isDigit(s.b[s.i]) {
			s.i++
		}
	}
	return s.b[start:s.i], nil
}

// value consumes any JSON value and returns its bytes.
func (s *jscan) value() ([]byte, error) {
	s.ws()
	start := s.i
	if s.i >= len(s.b) {
		return nil, s.unexpected()
	}
	var err error
	switch c := s.b[s.i]; {
	case c == '{' || c == '[':
		err = s.container()
	case c == '"':
		_, err = s.str()
	case c == 't':
		err = s.literal("true")
	case c == 'f':
		err = s.literal("false")
	case c == 'n':
		err = s.literal("null")
	case c == '-' || isDigit(c):
		_, err = s.number()
	default:
		err = s.unexpected()
	}
	if err != nil {
		return nil, err
	}
	return s.b[start:s.i], nil
}

// container consumes an object or an array.
func (s *jscan) container() error {
	open := s.b[s.i]
	s.i++
	if s.depth++; s.depth > maxJSONDepth {
		return s.fail("exceeded max depth")
	}
	closer := byte(']')
	if open == '{' {
		closer = '}'
	}
	if s.peek() == closer {
		s.i++
		s.depth--
		return nil
	}
	for {
		if open == '{' {
			if s.peek() != '"' {
				return s.unexpected()
			}
			if _, err := s.str(); err != nil {
				return err
			}
			if err := s.expect(':'); err != nil {
				return err
			}
		}
		if _, err := s.value(); err != nil {
			return err
		}
		switch s.peek() {
		case ',':
			s.i++
		case closer:
			s.i++
			s.depth--
			return nil
		default:
			return s.unexpected()
		}
	}
}

// object walks an object's members, calling member with each decoded name
// with the scanner before the value (which member must consume).
func (s *jscan) object(member func(name []byte) error) error {
	s.i++ // '{'
	if s.depth++; s.depth > maxJSONDepth {
		return s.fail("exceeded max depth")
	}
	if s.peek() == '}' {
		s.i++
		s.depth--
		return nil
	}
	for {
		if s.peek() != '"' {
			return s.unexpected()
		}
		raw, err := s.str()
		if err != nil {
			return err
		}
		name := raw[1 : len(raw)-1]
		if bytes.IndexByte(name, '\\') >= 0 {
			d, err := decodeJSONString(raw)
			if err != nil {
				return s.fail("%v", err)
			}
			name = []byte(d)
		}
		if err := s.expect(':'); err != nil {
			return err
		}
		s.ws()
		if err := member(name); err != nil {
			return err
		}
		switch s.peek() {
		case ',':
			s.i++
		case '}':
			s.i++
			s.depth--
			return nil
		default:
			return s.unexpected()
		}
	}
}

// decodeJSONString decodes a raw JSON string (quotes included); escapes
// and invalid UTF-8 (which becomes U+FFFD) go through encoding/json.
func decodeJSONString(raw []byte) (string, error) {
	inner := raw[1 : len(raw)-1]
	if bytes.IndexByte(inner, '\\') >= 0 || !utf8.Valid(inner) {
		var out string
		err := json.Unmarshal(raw, &out)
		return out, err
	}
	return string(inner), nil
}

// parseProduceJSON parses {"records":[{...},...]}.
func parseProduceJSON(body []byte) ([]jsonRecord, error) {
	s := &jscan{b: body}
	var recs []jsonRecord
	switch s.peek() {
	case 'n':
		if err := s.literal("null"); err != nil {
			return nil, err
		}
	case '{':
		seen := false
		err := s.object(func(name []byte) error {
			if string(name) != "records" && !strings.EqualFold(string(name), "records") {
				return s.fail("json: unknown field %q", name)
			}
			if seen {
				return &scanErr{msg: `the field "records" is given twice`, strict: true}
			}
			seen = true
			var err error
			recs, err = s.records()
			return err
		})
		if err != nil {
			return nil, err
		}
	case 0:
		return nil, s.unexpected()
	default:
		return nil, s.fail("json: the body must be an object {\"records\":[...]}")
	}
	return recs, s.end()
}

func (s *jscan) records() ([]jsonRecord, error) {
	switch s.peek() {
	case 'n':
		return nil, s.literal("null")
	case '[':
	default:
		return nil, s.fail(`json: "records" must be an array`)
	}
	s.i++
	if s.depth++; s.depth > maxJSONDepth {
		return nil, s.fail("exceeded max depth")
	}
	recs := make([]jsonRecord, 0, 1) // most requests carry one record; append grows it
	if s.peek() == ']' {
		s.i++
		s.depth--
		return recs, nil
	}
	for {
		var jr jsonRecord
		if err := s.record(&jr, len(recs)); err != nil {
			return nil, err
		}
		recs = append(recs, jr)
		switch s.peek() {
		case ',':
			s.i++
		case ']':
			s.i++
			s.depth--
			return recs, nil
		default:
			return nil, s.unexpected()
		}
	}
}

// parseRecordJSON parses one record object (an NDJSON line).
func parseRecordJSON(line []byte) (jsonRecord, error) {
	s := &jscan{b: line}
	var jr jsonRecord
	if err := s.record(&jr, 0); err != nil {
		return jr, err
	}
	return jr, s.end()
}

// record parses one record object into jr; null is an empty record.
func (s *jscan) record(jr *jsonRecord, i int) error {
	switch s.peek() {
	case 'n':
		return s.literal("null")
	case '{':
	case 0:
		return s.unexpected()
	default:
		return s.fail("json: record %d must be an object", i)
	}
	var seen [7]bool
	return s.object(func(name []byte) error {
		f := recordField(name)
		if f < 0 {
			return s.fail("json: unknown field %q", name)
		}
		if seen[f] {
			return &scanErr{msg: fmt.Sprintf("record %d: the field %q is given twice", i, name), strict: true}
		}
		seen[f] = true
		switch f {
		case 0, 1, 4, 6: // key, value, headers, timestamp: kept raw
			raw, err := s.value()
			if err != nil {
				return err
			}
			switch f {
			case 0:
				jr.Key = raw
			case 1:
				jr.Value = raw
			case 4:
				jr.Headers = raw
			case 6:
				jr.Timestamp = raw
			}
		case 2, 3: // key_encoding, value_encoding
			enc, err := s.optString(i, recordFields[f])
			if err != nil {
				return err
			}
			if f == 2 {
				jr.KeyEncoding = enc
			} else {
				jr.ValueEncoding = enc
			}
		case 5: // partition
			switch s.peek() {
			case 'n':
				jr.Partition = nil
				return s.literal("null")
			case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
			default:
				if _, err := s.value(); err != nil {
					return err
				}
				return s.fail("json: record %d: partition must be a number", i)
			}
			lit, err := s.number()
			if err != nil {
				return err
			}
			n, err := strconv.ParseInt(string(lit), 10, 32)
			if err != nil {
				return s.fail("json: record %d: partition %s is not a 32-bit integer", i, lit)
			}
			p := int32(n)
			jr.Partition = &p
		}
		return nil
	})
}

// recordFields are jsonRecord's fields in the order record() numbers them.
var recordFields = [7]string{"key", "value", "key_encoding", "value_encoding", "headers", "partition", "timestamp"}

func recordField(name []byte) int {
	for i, f := range recordFields {
		if string(name) == f {
			return i
		}
	}
	for i, f := range recordFields {
		if strings.EqualFold(string(name), f) {
			return i
		}
	}
	return -1
}

// optString is a string field that may be null ("").
func (s *jscan) optString(i int, name string) (string, error) {
	switch s.peek() {
	case 'n':
		return "", s.literal("null")
	case '"':
		raw, err := s.str()
		if err != nil {
			return "", err
		}
		return decodeJSONString(raw)
	}
	if _, err := s.value(); err != nil {
		return "", err
	}
	return "", s.fail("json: record %d: %s must be a string", i, name)
}

// produceJSONError is the API error for a malformed body.
func produceJSONError(err error) error {
	if _, ok := err.(*eddy.Error); ok {
		return err
	}
	return eddy.Errorf(eddy.CodeInvalid, "malformed JSON body: %v", err)
}
