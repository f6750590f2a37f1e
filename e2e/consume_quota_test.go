package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
	"github.com/twmb/franz-go/pkg/sasl/plain"
)

// TestConsumeQuota: a tenant's consume_bytes_per_sec throttles its reads
// after the read that went over, never cutting an answer. Over HTTP the
// next fetch waits the debt out, or, owing more than 5 s, is refused 429
// quota_exceeded with Retry-After. Over Kafka a fetch is answered its
// records and ThrottleMillis, the connection is muted as long (a client
// of Fetch v6 sends at once and waits in the socket), and a fetch that
// arrives owing is answered offsets alone at once. Another tenant's
// reads meanwhile are not held, nor the operator's.
func TestConsumeQuota(t *testing.T) {
	p := newProc(t)
	p.start()
	for name, rate := range map[string]int{"slow": 64 << 10, "kslow": 256 << 10} {
		body := fmt.Sprintf(`{"name":%q,"quotas":{"consume_bytes_per_sec":%d}}`, name, rate)
		if code, err := p.do("POST", "/v1/tenants", "application/json", []byte(body), nil); err != nil || code != 201 {
			t.Fatalf("tenant %s: %d %v", name, code, err)
		}
	}
	p.mustCreateTopic("free", 1)
	p.producePadded("free", 0, 1000, 1000, "f")
	tokens := map[string]string{}
	for _, name := range []string{"slow", "kslow"} {
		tokens[name] = p.tenantToken(name, "admin")
		if code, _, _ := tenantDo(t, p, tokens[name], "POST", "/v1/topics", `{"name":"t","partitions":1}`); code != 201 {
			t.Fatalf("%s's topic: %d", name, code)
		}
		for i := 0; i < 1000; i += 50 { // 1,000 records of 1,000 bytes
			var b strings.Builder
			b.WriteString(`{"records":[`)
			for j := range 50 {
				if j > 0 {
					b.WriteByte(',')
				}
				fmt.Fprintf(&b, `{"value":%q}`, strings.Repeat("v", 1000))
			}
			b.WriteString(`]}`)
			if code, _, _ := tenantDo(t, p, tokens[name], "POST", "/v1/topics/t/records", b.String()); code != 200 {
				t.Fatalf("%s's produce: %d", name, code)
			}
		}
	}

	// HTTP: the first fetch of 1 MB is answered whole (the bucket held
	// 64 KiB); the tenant then owes about 15 s.
	fetch := "/v1/topics/t/partitions/0/records?offset=0&format=batches&max_bytes=1048576"
	if code, got, _ := tenantDo(t, p, tokens["slow"], "GET", fetch, ""); code != 200 || got < 900_000 {
		t.Fatalf("the first fetch: %d, %d bytes", code, got)
	}
	code, _, h := tenantDo(t, p, tokens["slow"], "GET", fetch, "")
	retry := h.Get("Retry-After")
	if secs, _ := strconv.Atoi(retry); code != 429 || secs < 10 || secs > 17 {
		t.Fatalf("a fetch owing about 15 s: %d, Retry-After %q; want 429 and about 15", code, retry)
	}
	// The operator reads slow's topic at once meanwhile (not slow's own
	// client; and so a read one node forwards to another, with its
	// operator token, is counted once), and the default tenant, with no
	// quota, its own.
	start := time.Now()
	if code, err := p.do("GET", "/v1/tenants/slow"+fetch[3:], "", nil, nil); err != nil || code != 200 {
		t.Fatalf("the operator's fetch of slow's topic: %d %v", code, err)
	}
	if code, err := p.do("GET", "/v1/topics/free/partitions/0/records?offset=0&format=batches&max_bytes=1048576", "", nil, nil); err != nil || code != 200 {
		t.Fatalf("another tenant's fetch: %d %v", code, err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("another tenant's fetch took %v: held behind the throttled one", d)
	}
	kafkaOf := func(tenant string) *kgo.Client {
		cl, err := kgo.NewClient(kgo.SeedBrokers(p.kafkaAddr), kgo.MaxVersions(kversion.V1_0_0()),
			kgo.SASL(plain.Auth{User: tenant, Pass: tokens[tenant]}.AsMechanism()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cl.Close)
		return cl
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var cl *kgo.Client
	kfetch := func(offset int64) (*kmsg.FetchResponse, kmsg.FetchResponseTopicPartition) {
		fr := kmsg.NewPtrFetchRequest()
		fr.Version = 6
		fr.MaxWaitMillis, fr.MaxBytes = 100, 1<<20
		fr.Topics = []kmsg.FetchRequestTopic{{Topic: "t", Partitions: []kmsg.FetchRequestTopicPartition{{Partition: 0, FetchOffset: offset, PartitionMaxBytes: 1 << 20}}}}
		resp, err := cl.Request(ctx, fr)
		if err != nil {
			t.Fatal(err)
		}
		r := resp.(*kmsg.FetchResponse)
		return r, r.Topics[0].Partitions[0]
	}
	// slow, owing about 14 s more, over Kafka: offsets alone, at once,
	// throttled 10 s at most (a throttle is bounded; the next is another).
	cl = kafkaOf("slow")
	start = time.Now()
	owing, op := kfetch(0)
	if len(op.RecordBatches) != 0 || owing.ThrottleMillis < 9000 || owing.ThrottleMillis > 10001 || time.Since(start) > 3*time.Second {
		t.Fatalf("slow's Kafka fetch owing about 14 s: %d bytes, throttle %d ms, in %v; want offsets alone at once, throttled 10 s", len(op.RecordBatches), owing.ThrottleMillis, time.Since(start))
	}

	// Kafka, with Fetch v6 (before KIP-219, the client does not wait by
	// itself): the first fetch gets its records and about 3 s of
	// ThrottleMillis; the second is read once the mute ends, and is
	// answered records again.
	cl = kafkaOf("kslow")
	first, fp := kfetch(0)
	if fp.ErrorCode != 0 || len(fp.RecordBatches) < 900_000 || first.ThrottleMillis < 2500 || first.ThrottleMillis > 3500 {
		t.Fatalf("the first Kafka fetch: error %d, %d bytes, throttle %d ms; want its records and about 3,000 ms", fp.ErrorCode, len(fp.RecordBatches), first.ThrottleMillis)
	}
	start = time.Now()
	second, sp := kfetch(0)
	if d := time.Since(start); d < 2500*time.Millisecond {
		t.Fatalf("the fetch after a throttle was answered in %v: the connection was not muted", d)
	}
	if sp.ErrorCode != 0 || len(sp.RecordBatches) < 900_000 {
		t.Fatalf("the fetch after the mute: error %d, %d bytes (throttle %d ms)", sp.ErrorCode, len(sp.RecordBatches), second.ThrottleMillis)
	}
	// A fetch on a new connection while owing: offsets alone, at once.
	cl = kafkaOf("kslow")
	third, tp := kfetch(0)
	if tp.ErrorCode != 0 || len(tp.RecordBatches) != 0 || tp.HighWatermark != 1000 || third.ThrottleMillis < 1000 {
		t.Fatalf("a fetch while owing: error %d, %d bytes, high watermark %d, throttle %d ms; want offsets alone and a throttle", tp.ErrorCode, len(tp.RecordBatches), tp.HighWatermark, third.ThrottleMillis)
	}
	// kcat (librdkafka: one connection to a node for everything, Fetch
	// v11) reads kslow's 1,000 records whole, in order, through the
	// throttles: about 4 s owed, then 1 MB at 256 KiB/s.
	start = time.Now()
	out, err := p.kcat("kslow", tokens["kslow"], "", "-C", "-t", "t", "-o", "beginning", "-e", "-q", "-f", "%o\n")
	offsets := strings.Fields(out)
	if err != nil || len(offsets) != 1000 || offsets[0] != "0" || offsets[999] != "999" {
		t.Fatalf("kcat under the throttle: %v, %d records (%.200s)", err, len(offsets), out)
	}
	if d := time.Since(start); d < 3*time.Second {
		t.Fatalf("kcat read 1 MB in %v owing 4 s, over a quota of 256 KiB/s", d)
	}
	if n := p.metric(`eddy_tenant_consume_throttled_total{tenant="kslow"}`); n < 2 {
		t.Fatalf("kslow's throttled reads counted %v, want 2 or more", n)
	}
	if n := p.metric(`eddy_tenant_consume_throttled_total{tenant="slow"}`); n < 1 {
		t.Fatalf("slow's throttled reads counted %v", n)
	}
}

// tenantDo sends a request with a tenant's token, and answers its status,
// its body's length and its headers.
func tenantDo(t *testing.T, p *proc, token, method, path, body string) (int, int, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(method, p.url(path), strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	n, _ := io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, int(n), resp.Header
}
