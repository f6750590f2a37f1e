package batch

import (
	"math/rand/v2"
	"testing"

	"github.com/eddy-broker/eddy"
	"github.com/eddy-broker/eddy/internal/testutil"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestBatchRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for n := 1; n < 50; n += 7 {
		recs := testutil.RandomRecords(rng, n)
		b := Append(nil, recs, Options{ProducerID: 7, ProducerEpoch: 1, BaseSequence: 42})
		h, err := Check(b)
		if err != nil {
			t.Fatal(err)
		}
		if h.Size() != len(b) || h.NumRecords != int32(n) || h.ProducerID != 7 || h.BaseSequence != 42 {
			t.Fatalf("header %+v, len %d", h, len(b))
		}
		// kmsg reads what we wrote, field by field.
		var kb kmsg.RecordBatch
		if err := kb.ReadFrom(b); err != nil {
			t.Fatalf("kmsg: %v", err)
		}
		if kb.NumRecords != int32(n) || int(kb.Length)+12 != len(b) {
			t.Fatalf("kmsg header %+v", kb)
		}
		SetFirstOffset(b, 1000)
		if _, err := Check(b); err != nil {
			t.Fatalf("patching the base offset broke the CRC: %v", err)
		}
		got, err := Decode(nil, b)
		if err != nil {
			t.Fatal(err)
		}
		for i := range recs {
			if got[i].Offset != eddy.Offset(1000+i) || !testutil.SameRecord(got[i].Record, recs[i]) {
				t.Fatalf("record %d: got %+v want %+v", i, got[i], recs[i])
			}
		}
	}
}

func TestBatchLogAppendTime(t *testing.T) {
	recs := []eddy.Record{{Value: []byte("a"), Timestamp: 5}, {Value: []byte("b"), Timestamp: 9}}
	b := Append(nil, recs, Options{ProducerID: -1, LogAppendTime: 12345})
	got, err := Decode(nil, b)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range got {
		if r.Timestamp != 12345 {
			t.Fatalf("timestamp %d, want log-append time", r.Timestamp)
		}
	}
}

func TestCheckBatchRejects(t *testing.T) {
	good := Append(nil, []eddy.Record{{Value: []byte("hello")}}, Options{ProducerID: -1})
	tests := []struct {
		name   string
		mutate func([]byte) []byte
		code   eddy.Code
	}{
		{"short", func(b []byte) []byte { return b[:30] }, eddy.CodeInvalid},
		{"truncated body", func(b []byte) []byte { return b[:len(b)-1] }, eddy.CodeInvalid},
		{"bad magic", func(b []byte) []byte { b[16] = 1; return b }, eddy.CodeInvalid},
		{"flipped value bit", func(b []byte) []byte { b[len(b)-3] ^= 1; return b }, eddy.CodeCorrupt},
		{"flipped crc", func(b []byte) []byte { b[18] ^= 0x80; return b }, eddy.CodeCorrupt},
		{"huge length", func(b []byte) []byte { b[8] = 0x7f; return b }, eddy.CodeInvalid},
		{"negative delta", func(b []byte) []byte { b[23] = 0xff; return b }, eddy.CodeInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.mutate(append([]byte(nil), good...))
			_, err := Check(b)
			if got := eddy.ErrorCode(err); got != tc.code {
				t.Fatalf("code %q (%v), want %q", got, err, tc.code)
			}
		})
	}
}

func TestSetBaseSequence(t *testing.T) {
	recs := []eddy.Record{{Value: []byte("a")}, {Value: []byte("b")}}
	b := Append(nil, recs, Options{ProducerID: 7, BaseSequence: 10})
	SetBaseSequence(b, 4242)
	h, err := Check(b)
	if err != nil {
		t.Fatalf("the batch no longer checks: %v", err)
	}
	if h.BaseSequence != 4242 || h.ProducerID != 7 || h.NumRecords != 2 {
		t.Fatalf("header after SetBaseSequence: %+v", h)
	}
}
