package e2e

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestKafkaDeleteRecords: kadm's DeleteRecords (as kafka-delete-records
// or a console's "purge") on an RF 3 topic of three partitions led by
// different nodes: each partition's log start moves to the offset asked,
// on every replica, and a read below it is out of range; -1 moves it to
// the high watermark, and past it is OFFSET_OUT_OF_RANGE.
func TestKafkaDeleteRecords(t *testing.T) {
	procs := newCluster(t, 3)
	if code, err := procs[0].do("POST", "/v1/topics", "application/json", []byte(`{"name":"purge","partitions":3,"replication_factor":3}`), nil); err != nil || code != 201 {
		t.Fatalf("create: %d %v", code, err)
	}
	cl := kgoClient(t, procs, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for part := range int32(3) {
		for i := range 10 {
			if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "purge", Partition: part, Value: fmt.Appendf(nil, "r%d", i)}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	adm := kadm.NewClient(cl)
	del := func(offset int64) kadm.DeleteRecordsResponses {
		t.Helper()
		var os kadm.Offsets
		for part := range int32(3) {
			os.Add(kadm.Offset{Topic: "purge", Partition: part, At: offset})
		}
		r, err := adm.DeleteRecords(ctx, os)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	for _, r := range del(4).Sorted() {
		if r.Err != nil || r.LowWatermark != 4 {
			t.Fatalf("delete before 4, partition %d: low watermark %d, %v", r.Partition, r.LowWatermark, r.Err)
		}
	}
	starts, err := adm.ListStartOffsets(ctx, "purge")
	if err != nil || starts.Error() != nil {
		t.Fatal(err, starts.Error())
	}
	starts.Each(func(o kadm.ListedOffset) {
		if o.Offset != 4 {
			t.Fatalf("partition %d starts at %d", o.Partition, o.Offset)
		}
	})
	// Every replica applied it: a read below the start is out of range on
	// each node, and a read from it gets the rest.
	for _, p := range procs {
		for part := range 3 {
			waitFor(t, fmt.Sprintf("node %d: partition %d starts at 4", p.nodeID, part), 10*time.Second, func() bool {
				code, _ := p.do("GET", fmt.Sprintf("/v1/topics/purge/partitions/%d/records?offset=0", part), "", nil, nil)
				var out struct{ Records []struct{ Offset int64 } }
				code2, err := p.do("GET", fmt.Sprintf("/v1/topics/purge/partitions/%d/records?offset=4", part), "", nil, &out)
				return code == 416 && err == nil && code2 == 200 && len(out.Records) == 6 && out.Records[0].Offset == 4
			})
		}
	}
	for _, r := range del(11).Sorted() {
		if !errors.Is(r.Err, kerr.OffsetOutOfRange) {
			t.Fatalf("delete past the high watermark, partition %d: %v", r.Partition, r.Err)
		}
	}
	for _, r := range del(-1).Sorted() {
		if r.Err != nil || r.LowWatermark != 10 {
			t.Fatalf("delete to the high watermark, partition %d: low watermark %d, %v", r.Partition, r.LowWatermark, r.Err)
		}
	}
}

// TestDeleteRecordsHTTP: the HTTP API and the CLI move log starts through
// any node (a partition of one replica elsewhere is forwarded to its
// node); a read below is out of range; past the high watermark is 416,
// and a token without the tenant's admin scope is refused.
func TestDeleteRecordsHTTP(t *testing.T) {
	procs := newCluster(t, 3)
	if code, err := procs[0].do("POST", "/v1/topics", "application/json", []byte(`{"name":"spread","partitions":3,"replication_factor":1}`), nil); err != nil || code != 201 {
		t.Fatalf("create: %d %v", code, err)
	}
	for part := range 3 {
		body := `{"records":[{"value":"a"},{"value":"b"},{"value":"c"},{"value":"d"},{"value":"e"}]}`
		if code, err := procs[0].do("POST", fmt.Sprintf("/v1/topics/spread/records?partition=%d", part), "application/json", []byte(body), nil); err != nil || code != 200 {
			t.Fatalf("produce: %d %v", code, err)
		}
	}
	out := procs[0].mustCLI("", "topic", "delete-records", "spread", "--before", "2")
	for part := range 3 {
		if want := fmt.Sprintf("partition %d: starts at offset 2\n", part); !strings.Contains(out, want) {
			t.Fatalf("the CLI said %q, want %q in it", out, want)
		}
		for _, p := range procs {
			if code, _ := p.do("GET", fmt.Sprintf("/v1/topics/spread/partitions/%d/records?offset=1", part), "", nil, nil); code != 416 {
				t.Fatalf("node %d: a read below the start of partition %d: %d, want 416", p.nodeID, part, code)
			}
		}
	}
	for _, p := range procs {
		var res struct {
			Partition int32
			LogStart  int64 `json:"log_start_offset"`
		}
		if code, err := p.do("DELETE", "/v1/topics/spread/partitions/1/records?before=3", "", nil, &res); err != nil || code != 200 || res.LogStart < 3 {
			t.Fatalf("through node %d: %d %v %+v", p.nodeID, code, err, res)
		}
	}
	if a := procs[1].request("DELETE", "/v1/topics/spread/partitions/0/records?before=6", procs[1].token, ""); a.code != 416 || !strings.Contains(a.body, "offset_out_of_range") {
		t.Fatalf("past the high watermark: %d %s", a.code, a.body)
	}
	if a := procs[1].request("DELETE", "/v1/topics/spread/partitions/0/records?before=-1", procs[1].token, ""); a.code != 200 || !strings.Contains(a.body, `"log_start_offset":5`) {
		t.Fatalf("to the high watermark: %d %s", a.code, a.body)
	}
	if out := procs[2].mustCLI("", "topic", "delete-records", "spread", "--partition", "2", "--before", "4", "-o", "json"); out != "{\"partition\":2,\"log_start_offset\":4}\n" {
		t.Fatalf("-o json: %q", out)
	}
	consumer := procs[0].tenantToken("default", "consume:spread", "produce:spread")
	if a := procs[0].request("DELETE", "/v1/topics/spread/partitions/2/records?before=3", consumer, ""); a.code != 403 {
		t.Fatalf("without admin: %d %s", a.code, a.body)
	}
	if _, errOut, err := procs[0].cli("", "topic", "delete-records", "spread", "--before", "soon"); err == nil || !strings.Contains(errOut, "an offset, or end") {
		t.Fatalf("--before soon: %v %s", err, errOut)
	}
}
