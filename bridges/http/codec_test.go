package httpapi

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/eddy-broker/eddy"
)

func TestAppendJSONStringRoundTrips(t *testing.T) {
	var all strings.Builder
	for c := 0; c < 0x80; c++ {
		all.WriteByte(byte(c))
	}
	inputs := []string{"", "plain", all.String(), "héllo \u2028 ✓ 日本", `"quoted" \back\slash`, "\x00\x7f"}
	for _, in := range inputs {
		out := appendJSONString(nil, in)
		if !json.Valid(out) {
			t.Fatalf("invalid JSON for %q: %s", in, out)
		}
		var back string
		if err := json.Unmarshal(out, &back); err != nil || back != in {
			t.Fatalf("round trip of %q gave %q (%v)", in, back, err)
		}
	}
}

func FuzzRecordJSON(f *testing.F) {
	f.Add([]byte("k"), []byte(`{"a":1}`), "h", []byte("v"))
	f.Add([]byte{0xff}, []byte{0, 1, 2}, "\xfe", []byte{0x80})
	f.Fuzz(func(t *testing.T, key, value []byte, hk string, hv []byte) {
		r := eddy.FetchedRecord{Offset: 3, Record: eddy.Record{Key: key, Value: value, Timestamp: 1,
			Headers: []eddy.Header{{Key: hk, Value: hv}}}}
		for _, binary := range []bool{false, true} {
			out := appendRecordJSON(nil, &r, binary)
			if !json.Valid(out) {
				t.Fatalf("invalid JSON: %s", out)
			}
			var back struct {
				Key, Value       json.RawMessage
				KeyEnc, ValueEnc string
				KeyEncoding      string `json:"key_encoding"`
				ValueEncoding    string `json:"value_encoding"`
			}
			json.Unmarshal(out, &back)
			got, err := jsonBytes(back.Value, back.ValueEncoding)
			if err != nil {
				t.Fatal(err)
			}
			// A value that came back as JSON text or a string or base64
			// decodes to the original bytes, except JSON objects/arrays
			// (kept as text, which is what was stored) - equal too.
			if utf8.Valid(value) || binary || back.ValueEncoding == "base64" {
				if string(got) != string(value) && !(len(value) > 0 && (value[0] == '{' || value[0] == '[')) {
					t.Fatalf("value %q came back as %q", value, got)
				}
			}
		}
	})
}

func TestJSONBytes(t *testing.T) {
	tests := []struct{ raw, enc, want string }{
		{`"plain"`, "", "plain"},
		{`"esc\"aped\n\u00e9"`, "", "esc\"aped\né"},
		{`"héllo"`, "", "héllo"},
		{`{"a": 1}`, "", `{"a": 1}`},
		{`42`, "", "42"},
		{`"aGk="`, "base64", "hi"},
		{`"aG\u006b="`, "base64", "hi"},
	}
	for _, tc := range tests {
		got, err := jsonBytes(json.RawMessage(tc.raw), tc.enc)
		if err != nil || string(got) != tc.want {
			t.Errorf("jsonBytes(%s, %q) = %q, %v; want %q", tc.raw, tc.enc, got, err, tc.want)
		}
	}
	if b, err := jsonBytes(json.RawMessage("null"), ""); b != nil || err != nil {
		t.Errorf("null: %q %v", b, err)
	}
	if _, err := jsonBytes(json.RawMessage("5"), "base64"); err == nil {
		t.Error("base64 of a number accepted")
	}
}
