package httpapi

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/eddy-broker/eddy/multiraft"
)

// TestSearchFetch: key= and contains= scan within scan_max_bytes and say
// how far they got, so a client resumes from next_offset until done and
// finds every match exactly once; preview_bytes cuts values;
// partition-for-key names the partition a keyed produce went to.
func TestSearchFetch(t *testing.T) {
	e := newEnv(t, multiraft.Config{}, Config{})
	e.mustCreate("s", 1, "")
	var recs []string
	for i := 0; i < 2000; i++ {
		v := fmt.Sprintf(`"reading %d %s"`, i, strings.Repeat("x", 200))
		if i%100 == 7 {
			v = fmt.Sprintf(`"reading %d needle %s"`, i, strings.Repeat("y", 200))
		}
		recs = append(recs, fmt.Sprintf(`{"key":"dev-%d","value":%s}`, i%10, v))
	}
	if code, _, body := e.req("POST", "/v1/topics/s/records", "application/json", `{"records":[`+strings.Join(recs, ",")+`]}`); code != 200 {
		t.Fatalf("produce: %d %s", code, body)
	}
	type answer struct {
		Records []struct {
			Offset    int64
			Key       string
			Value     string
			ValueSize int `json:"value_size"`
		}
		NextOffset   int64 `json:"next_offset"`
		ScannedBytes int64 `json:"scanned_bytes"`
		Done         bool
	}
	scan := func(query string) (found []int64, requests int) {
		off := int64(0)
		for requests = 1; requests < 1000; requests++ {
			code, _, body := e.req("GET", fmt.Sprintf("/v1/topics/s/partitions/0/records?offset=%d&%s", off, query), "", "")
			var a answer
			if code != 200 || json.Unmarshal([]byte(body), &a) != nil {
				t.Fatalf("%s: %d %s", query, code, body)
			}
			if a.ScannedBytes > 64<<10+1024 {
				t.Fatalf("scanned %d bytes over the budget", a.ScannedBytes)
			}
			for _, r := range a.Records {
				found = append(found, r.Offset)
			}
			if a.Done {
				return found, requests
			}
			if a.NextOffset <= off {
				t.Fatalf("no progress at %d: %s", off, body)
			}
			off = a.NextOffset
		}
		t.Fatal("never done")
		return
	}
	found, requests := scan("contains=needle&scan_max_bytes=65536")
	if len(found) != 20 || requests < 5 {
		t.Fatalf("contains: %d matches in %d requests", len(found), requests)
	}
	for i, off := range found {
		if off != int64(i*100+7) {
			t.Fatalf("match %d at offset %d", i, off)
		}
	}
	byKey, _ := scan("key=dev-3&contains=needle&scan_max_bytes=65536")
	if len(byKey) != 0 { // needles are at i%10 == 7
		t.Fatalf("key dev-3 with needle: %v", byKey)
	}
	byKey, _ = scan("key=dev-7&contains=needle&scan_max_bytes=65536")
	if len(byKey) != 20 {
		t.Fatalf("key dev-7 with needle: %d", len(byKey))
	}
	code, _, body := e.req("GET", "/v1/topics/s/partitions/0/records?key=dev-1&max=3&preview_bytes=10", "", "")
	var a answer
	if json.Unmarshal([]byte(body), &a); code != 200 || len(a.Records) != 3 || a.Records[0].Value != "reading 1 " || a.Records[0].ValueSize < 200 || a.Done {
		t.Fatalf("preview: %d %s", code, body)
	}

	e.mustCreate("k", 8, "")
	var produced struct{ Offsets []struct{ Partition int32 } }
	code, _, body = e.req("POST", "/v1/topics/k/records", "application/json", `{"records":[{"key":"sensor-42","value":1}]}`)
	json.Unmarshal([]byte(body), &produced)
	var pk struct{ Partition int32 }
	_, _, pkBody := e.req("GET", "/v1/topics/k/partition-for-key?key=sensor-42", "", "")
	json.Unmarshal([]byte(pkBody), &pk)
	if code != 200 || len(produced.Offsets) != 1 || pk.Partition != produced.Offsets[0].Partition {
		t.Fatalf("partition for key: %s, produced %s", pkBody, body)
	}
}

// TestSearchAnswerBounded: a search whose every record matches answers
// about fetch_max_bytes (64 KiB here) of them at a time, however much it
// may scan, and a client resuming from next_offset gets each once.
func TestSearchAnswerBounded(t *testing.T) {
	e := newEnv(t, multiraft.Config{}, Config{FetchMaxBytes: 64 << 10})
	e.mustCreate("s", 1, "")
	var recs []string
	for i := 0; i < 2000; i++ {
		recs = append(recs, fmt.Sprintf(`{"value":"reading %d %s"}`, i, strings.Repeat("x", 200)))
	}
	if code, _, body := e.req("POST", "/v1/topics/s/records", "application/json", `{"records":[`+strings.Join(recs, ",")+`]}`); code != 200 {
		t.Fatalf("produce: %d %s", code, body)
	}
	off, got := int64(0), 0
	for requests := 0; ; requests++ {
		if requests == 100 {
			t.Fatal("never done")
		}
		code, _, body := e.req("GET", fmt.Sprintf("/v1/topics/s/partitions/0/records?offset=%d&contains=reading&max=10000&scan_max_bytes=268435456", off), "", "")
		var a struct {
			Records    []struct{ Offset int64 }
			NextOffset int64 `json:"next_offset"`
			Done       bool
		}
		if code != 200 || json.Unmarshal([]byte(body), &a) != nil {
			t.Fatalf("%d %s", code, body)
		}
		if len(body) > 64<<10+1024 {
			t.Fatalf("an answer of %d bytes; want about 64 KiB at most", len(body))
		}
		for _, r := range a.Records {
			if r.Offset != int64(got) {
				t.Fatalf("match at offset %d, want %d", r.Offset, got)
			}
			got++
		}
		if a.Done {
			break
		}
		off = a.NextOffset
	}
	if got != 2000 {
		t.Fatalf("%d of 2000 records found", got)
	}
}
