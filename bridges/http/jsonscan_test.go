package httpapi

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// stdProduce is how produce bodies were decoded before parseProduceJSON:
// the reference the fuzz target holds it to.
func stdProduce(body []byte) ([]jsonRecord, error) {
	var req struct {
		Records []jsonRecord `json:"records"`
	}
	if err := decodeStrict(body, &req); err != nil {
		return nil, err
	}
	return req.Records, nil
}

func stdRecord(line []byte) (jsonRecord, error) {
	var jr jsonRecord
	err := decodeStrict(line, &jr)
	return jr, err
}

var produceSeeds = []string{
	`{"records":[{"key":"dev-17","value":{"temp":21.5},"headers":{"unit":"C"}},{"value":"hello"}]}`,
	`{"records":[{"value":"aGVsbG8=","value_encoding":"base64","key":null,"partition":2,"timestamp":"2026-01-02T03:04:05Z"}]}`,
	`{"records":[{"value":[1,2,{"a":[true,false,null]}],"headers":[{"key":"k","value":"v"}],"timestamp":1700000000000}]}`,
	`{"records":[{"VALUE":1,"Key":"k","PARTITION":null}]}`,
	` {"records" : [ null , {"value":-0.5e+10} ] } `,
	`{"records":[]}`, `{"records":null}`, `null`, `{}`, ``, `[]`, `"x"`,
	`{"records":[{"value":1}]} x`, `{"records":[{"value":1}]}}`, `{"records":[{"value":1}],"records":[{"key":"a"}]}`,
	`{"records":[{"value":1,"value":2}]}`, `{"records":[{"nope":1}]}`, `{"records":[{"partition":1.5}]}`,
	`{"records":[{"partition":2147483648}]}`, `{"records":[{"partition":"1"}]}`, `{"records":[{"value":01}]}`,
	`{"records":[{"value":"a\u00e9\n\"q\"\\"}]}`, `{"records":[{"value":"bad \x01 control"}]}`, `{"records":[{"value":"\uZZZZ"}]}`,
	`{"records":[{"value":1,}]}`, `{"records":[{"value":1}],}`, `{"records":[{"value":tru}]}`, `{"records":[{"value":nulll}]}`,
	`{"records":[{"\u212aey":"kelvin"}]}`, `{"rec\u006frds":[{"value":1}]}`, `{"records":[{"key_encoding":7}]}`,
	`{"records":[{"value":"\xff\xfe invalid utf-8"}]}`, `{"records":[{"value":1e}]}`, `{"records":[{"value":-}]}`,
}

// FuzzProduceJSON holds parseProduceJSON to encoding/json: the same bodies
// are accepted and give the same records, except that it also refuses a
// repeated field and trailing data.
func FuzzProduceJSON(f *testing.F) {
	for _, s := range produceSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		got, err := parseProduceJSON(body)
		want, stdErr := stdProduce(body)
		compareParse(t, body, got, err, want, stdErr)
		// The same bytes as an NDJSON line.
		g1, err := parseRecordJSON(body)
		w1, stdErr := stdRecord(body)
		compareParse(t, body, []jsonRecord{g1}, err, []jsonRecord{w1}, stdErr)
	})
}

func compareParse(t *testing.T, body []byte, got []jsonRecord, err error, want []jsonRecord, stdErr error) {
	t.Helper()
	var se *scanErr
	switch {
	case err == nil && stdErr != nil:
		t.Fatalf("%q: accepted, encoding/json refuses it: %v", body, stdErr)
	case err != nil && !errors.As(err, &se):
		t.Fatalf("%q: error of type %T: %v", body, err, err)
	case err != nil && stdErr == nil && !se.strict:
		t.Fatalf("%q: refused (%v), encoding/json accepts it", body, err)
	case err == nil:
		if len(got) == 0 && len(want) == 0 {
			return
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%q:\n got %+v\nwant %+v", body, got, want)
		}
	}
}

func TestProduceJSONSeeds(t *testing.T) {
	for _, s := range produceSeeds {
		got, err := parseProduceJSON([]byte(s))
		want, stdErr := stdProduce([]byte(s))
		compareParse(t, []byte(s), got, err, want, stdErr)
	}
	// What the parser keeps points into the body: no copy per record.
	body := []byte(`{"records":[{"key":"k","value":{"a":1}}]}`)
	recs, err := parseProduceJSON(body)
	if err != nil || len(recs) != 1 || string(recs[0].Value) != `{"a":1}` {
		t.Fatalf("%v %+v", err, recs)
	}
	if &recs[0].Value[0] != &body[bytes.Index(body, []byte(`{"a"`))] {
		t.Fatal("the value was copied")
	}
	// Strict refusals say why.
	for body, want := range map[string]string{
		`{"records":[{"value":1}]} x`:                 "trailing data",
		`{"records":[{"value":1,"value":2}]}`:         "given twice",
		`{"records":[{"nope":1}]}`:                    `unknown field "nope"`,
		`{"records":[{"partition":2147483648}]}`:      "not a 32-bit integer",
		`{"records":[{"value":1}`:                     "unexpected end",
		strings.Repeat("[", 20000):                    "must be an object",
		`{"records":[{"value":` + deep(10001) + `}]}`: "exceeded max depth",
		`{"records":[{"value":"a` + "\x01" + `"}]}`:   "invalid character",
	} {
		if _, err := parseProduceJSON([]byte(body)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%.60q: %v, want %q", body, err, want)
		}
	}
	if _, err := parseProduceJSON([]byte(`{"records":[{"value":` + deep(9990) + `}]}`)); err != nil {
		t.Errorf("nesting under the limit: %v", err)
	}
}

func deep(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }

// BenchmarkProduceJSON: the parser against encoding/json on a body of 100
// records of 1 KiB, as eddy bench produce sends.
func BenchmarkProduceJSON(b *testing.B) {
	var sb strings.Builder
	sb.WriteString(`{"records":[`)
	for i := 0; i < 100; i++ {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(`{"key":"dev-17","value":"` + strings.Repeat("x", 1024) + `"}`)
	}
	sb.WriteString(`]}`)
	body := []byte(sb.String())
	for _, c := range []struct {
		name  string
		parse func([]byte) ([]jsonRecord, error)
	}{{"scan", parseProduceJSON}, {"encoding_json", stdProduce}} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.parse(body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func TestFirstControl(t *testing.T) {
	for n := 0; n < 40; n++ {
		for pos := -1; pos < n; pos++ {
			for _, bad := range []byte{0x00, 0x1f} {
				seg := bytes.Repeat([]byte{' '}, n)
				for i := range seg {
					seg[i] = byte(0x20 + (i*37)%0xdf) // every byte value from 0x20 up
				}
				if pos >= 0 {
					seg[pos] = bad
				}
				if got := firstControl(seg); got != pos {
					t.Fatalf("n=%d pos=%d bad=%#x: got %d", n, pos, bad, got)
				}
			}
		}
	}
}
