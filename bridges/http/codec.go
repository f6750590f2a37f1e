package httpapi

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/eddy-broker/eddy"
)

// jsonRecord is one record of a JSON or NDJSON produce body.
//
//	key, value: a JSON string is stored as its UTF-8 text; any other JSON
//	            value (object, array, number, boolean) is stored as its JSON
//	            text; null (or absent) is a null key/value. With
//	            key_encoding/value_encoding "base64" the string is base64.
//	headers:    [{"key":"k","value":"v"}, ...] or {"k":"v", ...}
//	partition:  optional; otherwise by key (murmur2) or round-robin
//	timestamp:  optional; ms since the epoch or an RFC 3339 string
type jsonRecord struct {
	Key           json.RawMessage `json:"key"`
	Value         json.RawMessage `json:"value"`
	KeyEncoding   string          `json:"key_encoding"`
	ValueEncoding string          `json:"value_encoding"`
	Headers       json.RawMessage `json:"headers"`
	Partition     *int32          `json:"partition"`
	Timestamp     json.RawMessage `json:"timestamp"`
}

// toRecord converts one JSON record. i is its index, for error messages.
func (jr *jsonRecord) toRecord(i int, now int64) (eddy.Record, eddy.Partition, error) {
	var r eddy.Record
	var err error
	if r.Key, err = jsonBytes(jr.Key, jr.KeyEncoding); err != nil {
		return r, 0, eddy.Errorf(eddy.CodeInvalid, "record %d: key: %v", i, err)
	}
	if r.Value, err = jsonBytes(jr.Value, jr.ValueEncoding); err != nil {
		return r, 0, eddy.Errorf(eddy.CodeInvalid, "record %d: value: %v", i, err)
	}
	if r.Headers, err = jsonHeaders(jr.Headers); err != nil {
		return r, 0, eddy.Errorf(eddy.CodeInvalid, "record %d: headers: %v", i, err)
	}
	r.Timestamp = now
	if len(jr.Timestamp) > 0 && string(jr.Timestamp) != "null" {
		if r.Timestamp, err = jsonTimestamp(jr.Timestamp); err != nil {
			return r, 0, eddy.Errorf(eddy.CodeInvalid, "record %d: timestamp: %v", i, err)
		}
	}
	p := eddy.Partition(-1)
	if jr.Partition != nil {
		if *jr.Partition < 0 {
			return r, 0, eddy.Errorf(eddy.CodeInvalid, "record %d: partition %d is negative", i, *jr.Partition)
		}
		p = eddy.Partition(*jr.Partition)
	}
	return r, p, nil
}

type codecError string

func (e codecError) Error() string { return string(e) }

func jsonBytes(raw json.RawMessage, encoding string) ([]byte, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	switch encoding {
	case "", "json", "string":
	case "base64":
		if raw[0] != '"' {
			return nil, codecError("base64 encoding needs a JSON string")
		}
		s, err := unquote(raw)
		if err != nil {
			return nil, err
		}
		b, err := base64.StdEncoding.DecodeString(string(s))
		if err != nil {
			return nil, codecError("invalid base64: " + err.Error())
		}
		return b, nil
	default:
		return nil, codecError("unknown encoding " + strconv.Quote(encoding) + " (use base64 or leave it out)")
	}
	if raw[0] == '"' {
		return unquote(raw)
	}
	return bytes.Clone(raw), nil
}

// unquote returns the bytes of a JSON string the decoder already validated.
// Without a backslash there is nothing to unescape (and control characters
// were refused by the decoder), so the quotes are stripped and the rest
// copied; only strings with escapes go through encoding/json again.
func unquote(raw json.RawMessage) ([]byte, error) {
	if len(raw) >= 2 && raw[len(raw)-1] == '"' && bytes.IndexByte(raw, '\\') < 0 {
		return bytes.Clone(raw[1 : len(raw)-1]), nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, err
	}
	return []byte(s), nil
}

func jsonHeaders(raw json.RawMessage) ([]eddy.Header, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	if raw[0] == '{' {
		var m map[string]*string
		if err := json.Unmarshal(raw, &m); err != nil {
			return nil, err
		}
		hs := make([]eddy.Header, 0, len(m))
		for k, v := range m {
			h := eddy.Header{Key: k}
			if v != nil {
				h.Value = []byte(*v)
			}
			hs = append(hs, h)
		}
		sortHeaders(hs)
		return hs, nil
	}
	var list []struct {
		Key           string          `json:"key"`
		KeyEncoding   string          `json:"key_encoding"`
		Value         json.RawMessage `json:"value"`
		ValueEncoding string          `json:"value_encoding"`
	}
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, codecError("headers must be [{\"key\":..,\"value\":..}] or {\"key\":\"value\"}")
	}
	hs := make([]eddy.Header, len(list))
	for i, h := range list {
		v, err := jsonBytes(h.Value, h.ValueEncoding)
		if err != nil {
			return nil, err
		}
		hs[i] = eddy.Header{Key: h.Key, Value: v}
		if h.KeyEncoding != "" { // a fetch writes a key of control characters so
			quoted, _ := json.Marshal(h.Key)
			k, err := jsonBytes(quoted, h.KeyEncoding)
			if err != nil {
				return nil, err
			}
			hs[i].Key = string(k)
		}
	}
	return hs, nil
}

// sortHeaders orders headers given as an object by key, so the stored
// order is deterministic.
func sortHeaders(hs []eddy.Header) {
	for i := 1; i < len(hs); i++ {
		for j := i; j > 0 && hs[j].Key < hs[j-1].Key; j-- {
			hs[j], hs[j-1] = hs[j-1], hs[j]
		}
	}
}

func jsonTimestamp(raw json.RawMessage) (int64, error) {
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return 0, err
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return 0, codecError("not RFC 3339: " + s)
		}
		return t.UnixMilli(), nil
	}
	n, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil || n < 0 {
		return 0, codecError("must be milliseconds since the epoch or an RFC 3339 string")
	}
	return n, nil
}

// appendRecordJSON writes one fetched record as JSON:
//
//	{"offset":N,"timestamp":T,"key":K,"value":V,"headers":[...]}
//
// A key, value or header value is written as JSON when it is valid JSON
// (values only), as a string when it is valid UTF-8, and otherwise as
// base64 with "<field>_encoding":"base64". With binary set, keys and values
// are always base64, so any byte string round-trips exactly.
func appendRecordJSON(dst []byte, r *eddy.FetchedRecord, binary bool) []byte {
	dst = append(dst, `{"offset":`...)
	dst = strconv.AppendInt(dst, int64(r.Offset), 10)
	dst = append(dst, ',')
	return appendRecordFields(dst, &r.Record, binary)
}

// appendRecordFields writes a record's fields from "timestamp" on and
// closes the object; the caller wrote "{" and the fields that place it
// (offset; topic and partition; a dry run's source).
func appendRecordFields(dst []byte, r *eddy.Record, binary bool) []byte {
	dst = append(dst, `"timestamp":`...)
	dst = strconv.AppendInt(dst, r.Timestamp, 10)
	dst = appendField(dst, "key", r.Key, false, binary)
	dst = appendField(dst, "value", r.Value, true, binary)
	if len(r.Headers) > 0 {
		dst = append(dst, `,"headers":[`...)
		for i, h := range r.Headers {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, `{"key":`...)
			key := strings.ToValidUTF8(h.Key, "\uFFFD")
			if out, ok := appendEscaped(dst, key, base64Literal(len(key), "key")); ok {
				dst = out
			} else {
				dst = appendBase64(dst, "key", []byte(key))
			}
			dst = appendField(dst, "value", h.Value, false, false)
			dst = append(dst, '}')
		}
		dst = append(dst, ']')
	}
	return append(dst, '}')
}

func appendField(dst []byte, name string, b []byte, allowJSON, binary bool) []byte {
	dst = append(dst, ',', '"')
	dst = append(dst, name...)
	dst = append(dst, '"', ':')
	switch {
	case b == nil:
		return append(dst, "null"...)
	case !binary && allowJSON && len(b) > 0 && (b[0] == '{' || b[0] == '[') && json.Valid(b):
		return append(dst, b...)
	case !binary && utf8.Valid(b):
		if out, ok := appendEscaped(dst, b, base64Literal(len(b), name)); ok {
			return out
		}
	}
	return appendBase64(dst, name, b)
}

// appendBase64 writes b as field name's value in base64, and says so in
// "<name>_encoding".
func appendBase64(dst []byte, name string, b []byte) []byte {
	dst = append(dst, '"')
	dst = base64.StdEncoding.AppendEncode(dst, b)
	dst = append(dst, `","`...)
	dst = append(dst, name...)
	return append(dst, `_encoding":"base64"`...)
}

// base64Literal is the length of n bytes written by appendBase64 for
// field name: a string that would escape to more is written so instead.
// Escaping a control character takes six bytes (\u0001), so a value of
// them was six times its size as a JSON string; the answer's room counts
// 4/3 of a value (jsonAnswerRoom), which base64 keeps to.
func base64Literal(n int, name string) int {
	return base64.StdEncoding.EncodedLen(n) + len(name) + len(`"","_encoding":"base64"`)
}

const hexDigits = "0123456789abcdef"

// jsonSafe[c] reports whether byte c can be copied into a JSON string as is.
var jsonSafe = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\' && c != 0x7f
	}
	return t
}()

// appendJSONString appends s as a JSON string literal. s must be valid UTF-8
// (bytes >= 0x80 are copied as they are).
func appendJSONString[S ~string | ~[]byte](dst []byte, s S) []byte {
	dst, _ = appendEscaped(dst, s, -1)
	return dst
}

// appendEscaped is appendJSONString within limit bytes (none when
// negative): once the literal is sure to be longer, it returns dst as it
// was, and false.
func appendEscaped[S ~string | ~[]byte](dst []byte, s S, limit int) ([]byte, bool) {
	from := len(dst)
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if jsonSafe[c] {
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		start = i + 1
		if limit >= 0 && len(dst)-from+len(s)-start+1 > limit {
			return dst[:from], false
		}
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"'), true
}
