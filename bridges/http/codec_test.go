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

// TestRecordJSONBounded: a key, value or header key whose escaping would
// be longer than its base64 (control characters take six bytes each) is
// written base64, so an answer is at most about 4/3 of what it holds
// (the room a fetch takes for it); each reads back as it was, through
// the produce side too. Text with a few escapes stays a string.
func TestRecordJSONBounded(t *testing.T) {
	ctl := strings.Repeat("\x01", 64<<10)
	text := `he said "hi"` + "\n" + strings.Repeat("x", 100)
	r := eddy.FetchedRecord{Record: eddy.Record{Key: []byte(ctl[:3000]), Value: []byte(ctl), Timestamp: 1,
		Headers: []eddy.Header{{Key: ctl[:5000], Value: []byte(ctl[:7000])}, {Key: "unit", Value: []byte(text)}}}}
	out := appendRecordJSON(nil, &r, false)
	if held := 3000 + 64<<10 + 5000 + 7000 + 4 + len(text); len(out) > held*4/3+512 {
		t.Fatalf("%d bytes of JSON for %d held", len(out), held)
	}
	var jr jsonRecord // as a produce reads it
	if err := json.Unmarshal(out, &jr); err != nil {
		t.Fatal(err)
	}
	got, _, err := jr.toRecord(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if string(got.Key) != ctl[:3000] || string(got.Value) != ctl || jr.KeyEncoding != "base64" || jr.ValueEncoding != "base64" {
		t.Fatalf("key (%s, %d bytes) or value (%s, %d bytes) did not read back", jr.KeyEncoding, len(got.Key), jr.ValueEncoding, len(got.Value))
	}
	if len(got.Headers) != 2 || got.Headers[0].Key != ctl[:5000] || string(got.Headers[0].Value) != ctl[:7000] ||
		got.Headers[1].Key != "unit" || string(got.Headers[1].Value) != text {
		t.Fatalf("headers did not read back: %d", len(got.Headers))
	}
	if !strings.Contains(string(out), `"value":"he said \"hi\"\n`) {
		t.Fatal("text with a few escapes was not written as a string")
	}
}
