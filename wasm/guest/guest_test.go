package guest

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/eddy-broker/eddy"
	"github.com/eddy-broker/eddy/wasm"
)

func inputs() []eddy.Record {
	return []eddy.Record{
		{Timestamp: 1, Key: []byte("k1"), Value: []byte(`{"t":21}`), Headers: []eddy.Header{{Key: "unit", Value: []byte("C")}}},
		{Timestamp: 2, Key: nil, Value: []byte("drop me")},
		{Timestamp: 3, Key: []byte{}, Value: nil, Headers: []eddy.Header{{Key: "n", Value: nil}}},
	}
}

// roundTrip runs fn over recs as a host would: encode, process in the
// guest, decode and validate the output on the host side.
func roundTrip(t *testing.T, recs []eddy.Record, fn Func) ([]eddy.Record, int32, error) {
	t.Helper()
	in := wasm.EncodeBatch(nil, recs)
	if len(in) != wasm.EncodedSize(recs) {
		t.Fatalf("EncodedSize %d, encoded %d", wasm.EncodedSize(recs), len(in))
	}
	var out output
	status, err := process(fn, in, len(recs), &out)
	if err != nil {
		return nil, status, err
	}
	res, err := wasm.DecodeOutput(append([]byte(nil), out.buf...), recs, len(in))
	if err != nil {
		t.Fatalf("the host refused the SDK's output: %v", err)
	}
	return res, 0, nil
}

func TestKeepDropEmitFanOut(t *testing.T) {
	recs := inputs()
	res, _, err := roundTrip(t, recs, func(r Record, w Writer) error {
		switch {
		case bytes.Equal(r.Value, []byte("drop me")):
		case r.Timestamp == 1:
			w.Keep()
			w.EmitValue([]byte(`{"t":21,"site":"edge-01"}`), Header{Key: "enriched", Value: []byte("1")})
		default:
			if r.Key == nil || len(r.Key) != 0 || r.Value != nil {
				return fmt.Errorf("null/empty not preserved: key %#v value %#v", r.Key, r.Value)
			}
			w.Emit(Record{Key: []byte("new"), Value: []byte("v"), Headers: []Header{{Key: "h", Value: nil}}})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []eddy.Record{
		recs[0],
		{Timestamp: 1, Key: []byte("k1"), Value: []byte(`{"t":21,"site":"edge-01"}`),
			Headers: []eddy.Header{{Key: "unit", Value: []byte("C")}, {Key: "enriched", Value: []byte("1")}}},
		{Timestamp: 3, Key: []byte("new"), Value: []byte("v"), Headers: []eddy.Header{{Key: "h", Value: nil}}},
	}
	if !reflect.DeepEqual(res, want) {
		t.Fatalf("got  %+v\nwant %+v", res, want)
	}
}

func TestHeadersAndNullsReachTheGuest(t *testing.T) {
	recs := inputs()
	var seen []Record
	if _, _, err := roundTrip(t, recs, func(r Record, w Writer) error {
		c := r
		c.Headers = append([]Header(nil), r.Headers...)
		seen = append(seen, c)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(seen) != 3 || seen[0].Timestamp != 1 || string(seen[0].Key) != "k1" {
		t.Fatalf("%+v", seen)
	}
	if v, ok := seen[0].Header("unit"); !ok || string(v) != "C" {
		t.Fatalf("header: %q %v", v, ok)
	}
	if seen[1].Key != nil || seen[2].Value != nil || seen[2].Key == nil || seen[2].Headers[0].Value != nil {
		t.Fatalf("null vs empty lost: %+v", seen)
	}
}

func TestUserErrorFailsTheBatch(t *testing.T) {
	_, status, err := roundTrip(t, inputs(), func(r Record, w Writer) error {
		if r.Timestamp == 2 {
			return errors.New("field temp missing")
		}
		w.Keep()
		return nil
	})
	if status != StatusUserError || err == nil || !bytes.Contains([]byte(err.Error()), []byte("record 1: field temp missing")) {
		t.Fatalf("status %d err %v", status, err)
	}
}

func TestMalformedInput(t *testing.T) {
	in := wasm.EncodeBatch(nil, inputs())
	for name, c := range map[string]struct {
		b     []byte
		count int
	}{
		"truncated":    {in[:len(in)-3], 3},
		"count high":   {in, 4},
		"count low":    {in, 2},
		"garbage":      {[]byte{0xff, 0xff, 0xff, 0x7f, 1, 2, 3}, 1},
		"short header": {in[:10], 1},
	} {
		var out output
		if status, err := process(func(Record, Writer) error { return nil }, c.b, c.count, &out); status != StatusMalformedInput || err == nil {
			t.Errorf("%s: status %d err %v", name, status, err)
		}
	}
}
