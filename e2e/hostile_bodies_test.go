package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// bodyPost opens a connection and sends the head of a POST of a
// declared body of size bytes with token (none: ""), then sent bytes of
// it; the connection is left open.
func bodyPost(t *testing.T, p *proc, path, token string, size, sent int) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", p.httpAddr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	head := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: eddy\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n", path, size)
	if token != "" {
		head += "Authorization: Bearer " + token + "\r\n"
	}
	c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte(head + "\r\n")); err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 256<<10)
	for left := sent; left > 0; left -= len(chunk) {
		if _, err := c.Write(chunk[:min(left, len(chunk))]); err != nil {
			break // the node answered and closed: what it does with a refused body
		}
	}
	return c
}

// TestRequestMemoryBounded: request bodies are read only after the token
// is verified, and the node holds at most max_request_memory of them, a
// tenant at most half. Forty clients without a token each sending 8 MiB
// used to be held whole (fasthttp read every body before any handler:
// 1.3 GB for forty 30 MiB bodies); a tenant that opens many slow large
// requests gets two in and the rest refused (429) while another tenant
// still produces.
func TestRequestMemoryBounded(t *testing.T) {
	p := newProc(t)
	p.env = []string{"EDDY_MAX_BODY_BYTES=8388608", "EDDY_MAX_REQUEST_MEMORY=33554432", "EDDY_MAX_CONNECTIONS_PER_IP=200"}
	p.start()
	acme := p.tenantToken("acme", "produce:*")
	globex := p.tenantToken("globex", "produce:*")
	for _, tn := range []string{"acme", "globex"} {
		if code, err := p.do("POST", "/v1/tenants/"+tn+"/topics", "application/json", []byte(`{"name":"in"}`), nil); err != nil || code != 201 {
			t.Fatalf("topic of %s: %d %v", tn, code, err)
		}
	}
	before := rss(t, p.cmd.Process.Pid)

	var wg sync.WaitGroup
	for range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			bodyPost(t, p, "/v1/topics/in/records", "", 8<<20, 8<<20)
		}()
	}
	wg.Wait()
	if grew := rss(t, p.cmd.Process.Pid) - before; grew > 64<<20 {
		t.Fatalf("RSS grew by %d MiB for 40 bodies of 8 MiB sent without a token", grew>>20)
	}

	// A client with a bad token and a 4 MiB body reads its 401 (the body
	// is read and dropped after the answer, not reset), and its next
	// request goes through.
	client := &http.Client{}
	req, _ := http.NewRequest("POST", p.url("/v1/topics/in/records"), bytes.NewReader(make([]byte, 4<<20)))
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set("Authorization", "Bearer not-a-token")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("a bad token with a 4 MiB body: %v, want its 401", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatalf("a bad token with a 4 MiB body: %d, want 401", resp.StatusCode)
	}
	req, _ = http.NewRequest("POST", p.url("/v1/topics/in/records"), strings.NewReader(`{"records":[{"value":"next"}]}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+acme)
	if resp, err = client.Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("the same client's next request: %v %v", resp, err)
	}
	resp.Body.Close()

	// acme: ten requests of 8 MiB, 7 MiB of each sent, the rest never.
	slow := make([]net.Conn, 10)
	for i := range slow {
		wg.Add(1)
		go func() {
			defer wg.Done()
			slow[i] = bodyPost(t, p, "/v1/topics/in/records", acme, 8<<20, 7<<20)
		}()
	}
	time.Sleep(time.Second) // all ten are in or waiting
	// globex is not starved meanwhile.
	req, _ = http.NewRequest("POST", p.url("/v1/topics/in/records"), strings.NewReader(`{"records":[{"value":"still here"}]}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+globex)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("globex's produce while acme holds its share: %d", resp.StatusCode)
	}
	if held := p.metric("eddy_request_memory_bytes"); held != 16<<20 {
		t.Fatalf("eddy_request_memory_bytes = %v with acme's slow requests in; want its half of 32 MiB", held)
	}
	wg.Wait()
	// The eight waiting are refused after 5 s (the node reads and drops
	// what they send meanwhile, so they read the answer, not a reset);
	// the two let in get no answer: their bodies never end.
	lines := make(chan string, len(slow))
	for _, c := range slow {
		go func() {
			c.SetReadDeadline(time.Now().Add(8 * time.Second))
			line, _ := bufio.NewReader(c).ReadString('\n')
			lines <- line
		}()
	}
	refused := 0
	for range slow {
		if strings.HasPrefix(<-lines, "HTTP/1.1 429") {
			refused++
		}
	}
	if refused != 8 {
		t.Fatalf("%d of acme's 10 slow requests refused with 429; want 8 (two fit its half of max_request_memory)", refused)
	}
	if grew := rss(t, p.cmd.Process.Pid) - before; grew > 96<<20 {
		t.Fatalf("RSS grew by %d MiB with acme's 10 slow requests of 8 MiB", grew>>20)
	}
	for _, c := range slow {
		c.Close()
	}
	// Once they are gone, acme produces again.
	deadline := time.Now().Add(5 * time.Second)
	for p.metric("eddy_request_memory_bytes") != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("eddy_request_memory_bytes = %v after the slow requests closed", p.metric("eddy_request_memory_bytes"))
		}
		time.Sleep(100 * time.Millisecond)
	}
	req, _ = http.NewRequest("POST", p.url("/v1/topics/in/records"), bytes.NewReader([]byte(`{"records":[{"value":"back"}]}`)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+acme)
	if resp, err = http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("acme's produce after its slow requests closed: %v %v", resp, err)
	}
	resp.Body.Close()
}

// TestMQTTLargePacketsBounded: an MQTT packet of 64 KiB or more is read
// once the node's request memory holds its size (mochi allocates a packet
// whole at its header), so a tenant's devices that each start a large
// publish and stall hold at most the tenant's half; once they go, it is
// given back.
func TestMQTTLargePacketsBounded(t *testing.T) {
	p := newProc(t)
	p.env = []string{"EDDY_MAX_BODY_BYTES=8388608", "EDDY_MAX_REQUEST_MEMORY=33554432", "EDDY_MAX_CONNECTIONS_PER_IP=200"}
	p.start()
	acme := p.tenantToken("acme", "produce:*")
	if code, err := p.do("POST", "/v1/tenants/acme/topics", "application/json", []byte(`{"name":"in"}`), nil); err != nil || code != 201 {
		t.Fatalf("topic: %d %v", code, err)
	}
	p.mustCreateTopic("sensors", 1)
	body := append(mqttStr("in/x"), 0, 1, 0) // packet id 1, no properties
	head := append(append([]byte{0x32}, mqttLen(len(body)+900<<10)...), body...)
	var devs []*rawMQTT
	for i := range 40 {
		m := dialMQTT(t, p)
		if _, rc := m.connect(t, 5, fmt.Sprintf("dev-%d", i), "acme", acme, true); rc != 0 {
			t.Fatalf("connect: rc %d", rc)
		}
		m.c.Write(append(head, make([]byte, 100<<10)...)) // 100 of 900 KiB, then nothing
		devs = append(devs, m)
	}
	time.Sleep(time.Second)
	held := p.metric("eddy_request_memory_bytes")
	if held > 16<<20 || held < 8<<20 {
		t.Fatalf("eddy_request_memory_bytes = %v with 40 devices each in a 900 KiB publish; want up to acme's half of 32 MiB, and most of it", held)
	}
	p.pubWithin(5*time.Second, "mqttv5", "sensors/dev-1", "another tenant's device still publishes")
	for _, m := range devs {
		m.c.Close()
	}
	deadline := time.Now().Add(5 * time.Second)
	for p.metric("eddy_request_memory_bytes") != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("eddy_request_memory_bytes = %v after the devices went", p.metric("eddy_request_memory_bytes"))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestKafkaFetchMemoryBounded: three kcat consumers that ask for fetches
// of 2 GB (fetch.max.bytes, and 1 GB a partition) each read a topic of
// 96 MB from the start. A fetch's answer is at most fetch_max_bytes
// (16 MiB) and held within max_request_memory (128 MiB), so the node's
// peak stays within that twice over (the collector) and 128 MB besides;
// each answer used to hold whatever the client asked, and the same
// consumers took a node to 1.8 GB for 200 MB of records.
func TestKafkaFetchMemoryBounded(t *testing.T) {
	p := newProc(t)
	p.start()
	p.mustCreateTopic("big", 4)
	const clients, batches, perBatch = 8, 120, 100
	if err := appendKiBRecords(p, "big", clients, batches, perBatch); err != nil {
		t.Fatal(err)
	}
	const consumers, want = 3, clients * batches * perBatch
	var wg sync.WaitGroup
	got := make([]int, consumers)
	cerrs := make([]error, consumers)
	for i := range consumers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, "kcat", "-b", p.kafkaAddr, "-X", "security.protocol=SASL_PLAINTEXT", "-X", "sasl.mechanisms=PLAIN",
				"-X", "sasl.username=default", "-X", "sasl.password="+p.token,
				"-X", "fetch.max.bytes=2000000000", "-X", "fetch.message.max.bytes=1000000000", "-X", "receive.message.max.bytes=2147483647",
				"-X", "queued.max.messages.kbytes=2097151", "-C", "-t", "big", "-o", "beginning", "-e", "-q", "-f", "%o\n")
			out, err := cmd.Output()
			got[i], cerrs[i] = bytes.Count(out, []byte("\n")), err
		}()
	}
	wg.Wait()
	peak := peakRSS(t, p)
	for i := range consumers {
		if cerrs[i] != nil || got[i] != want {
			t.Fatalf("consumer %d read %d of %d records: %v\n%s", i, got[i], want, cerrs[i], p.log)
		}
	}
	t.Logf("%d consumers asking for 2 GB fetches read %d records each; the node's peak RSS %d MB", consumers, want, peak>>20)
	if limit := int64(2*128+128) << 20; peak > limit {
		t.Fatalf("peak RSS %d MB, over %d MB", peak>>20, limit>>20)
	}
}

// appendKiBRecords appends clients x batches x perBatch records of 1 KiB to
// topic over HTTP, the clients at once, with keys unique to each record.
func appendKiBRecords(p *proc, topic string, clients, batches, perBatch int) error {
	value := strings.Repeat("v", 1000)
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range batches {
				var recs []string
				for i := range perBatch {
					recs = append(recs, fmt.Sprintf(`{"key":"k%d-%d-%d","value":"%s"}`, c, b, i, value))
				}
				if code, err := p.do("POST", "/v1/topics/"+topic+"/records", "application/json", []byte(`{"records":[`+strings.Join(recs, ",")+`]}`), nil); err != nil || code != 200 {
					errs <- fmt.Errorf("produce: %d %v", code, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// TestHTTPFetchMemoryBounded: 120 fetches of 16 MiB at once (max_bytes at
// fetch_max_bytes, half as JSON, half as stored batches) from a partition
// of 60 MB are each answered, or refused with 429 and a Retry-After, and
// the node's peak stays within its request memory twice over and 128 MB
// besides; the same fetches took a node to 3 GB when each answer was
// bounded but not their number.
func TestHTTPFetchMemoryBounded(t *testing.T) {
	p := newProc(t)
	p.start()
	p.mustCreateTopic("big", 1)
	if err := appendKiBRecords(p, "big", 6, 100, 100); err != nil {
		t.Fatal(err)
	}
	const fetches = 120
	codes := make([]int, fetches)
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 2 * time.Minute, Transport: &http.Transport{MaxConnsPerHost: fetches, MaxIdleConnsPerHost: fetches}}
	for i := range fetches {
		wg.Add(1)
		go func() {
			defer wg.Done()
			format := []string{"json", "batches"}[i%2]
			req, _ := http.NewRequest("GET", fmt.Sprintf("http://%s/v1/topics/big/partitions/0/records?offset=%d&max=10000&max_bytes=16777216&format=%s", p.httpAddr, i*100, format), nil)
			req.Header.Set("Authorization", "Bearer "+p.token)
			resp, err := client.Do(req)
			if err != nil {
				return
			}
			n, _ := io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 && n < 8<<20 {
				t.Errorf("fetch %d (%s): 200 with %d bytes; want at least 8 MiB of the 60 MB there", i, format, n)
			}
			if resp.StatusCode == 429 && resp.Header.Get("Retry-After") == "" {
				t.Errorf("fetch %d: 429 without Retry-After", i)
			}
			codes[i] = resp.StatusCode
		}()
	}
	wg.Wait()
	peak := peakRSS(t, p)
	count := map[int]int{}
	for _, c := range codes {
		count[c]++
	}
	t.Logf("%d fetches of 16 MiB at once: answers by status %v; the node's peak RSS %d MB", fetches, count, peak>>20)
	if count[200]+count[429] != fetches || count[200] == 0 {
		t.Fatalf("answers by status %v; want each 200 or 429, some 200\n%s", count, p.log)
	}
	if limit := int64(2*128+128) << 20; peak > limit {
		t.Fatalf("peak RSS %d MB, over %d MB", peak>>20, limit>>20)
	}
}

// TestStalledTailsBounded: 120 live tails resume a topic of 8 partitions
// holding 40 MB from its start and their clients stop reading: the
// node's peak stays within 384 MB (each tail's partition readers held a
// read of 1 MiB each, and 64 events, before), and a tail that reads gets
// the records.
func TestStalledTailsBounded(t *testing.T) {
	p := newProc(t)
	p.start()
	p.mustCreateTopic("m", 8)
	if err := appendKiBRecords(p, "m", 8, 50, 100); err != nil {
		t.Fatal(err)
	}
	from := "/v1/topics/m/tail?from=0:0,1:0,2:0,3:0,4:0,5:0,6:0,7:0"
	for range 120 {
		c, err := net.DialTimeout("tcp", p.httpAddr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: eddy\r\nAuthorization: Bearer %s\r\n\r\n", from, p.token)
		head := make([]byte, 12)
		if _, err := io.ReadFull(c, head); err != nil || string(head[9:12]) != "200" {
			t.Fatalf("tail: %q %v", head, err)
		}
		// and never reads again
	}
	time.Sleep(5 * time.Second) // the stalled tails' readers go on until their sockets and queues fill
	got := readEvents(t, p, from, 1000, func() {})
	peak := peakRSS(t, p)
	t.Logf("120 stalled live tails from the start of 40 MB: a reading tail got %d events; the node's peak RSS %d MB", len(got), peak>>20)
	if len(got) != 1000 {
		t.Fatalf("the tail that reads got %d of the first 1,000 records", len(got))
	}
	if limit := int64(384) << 20; peak > limit {
		t.Fatalf("peak RSS %d MB, over %d MB", peak>>20, limit>>20)
	}
}

// TestRemoteLongPollsHoldNoRoom: fetches long-polling a partition held
// on another node hold no request memory while they wait. Each JSON
// fetch of 16 MiB takes about 40 MiB of room to answer, and a tenant
// gets half of the 128 MiB: the read used to long-poll the other node
// holding that room, so of four such idle fetches three were refused
// (429) after 5 s. Now all four wait holding nothing, and the record
// produced meanwhile answers each of them, in JSON and as batches.
func TestRemoteLongPollsHoldNoRoom(t *testing.T) {
	procs := newCluster(t, 2)
	if code, err := procs[0].do("POST", "/v1/topics", "application/json", []byte(`{"name":"far","partitions":4,"replication_factor":1}`), nil); err != nil || code != 201 {
		t.Fatalf("create: %d %v", code, err)
	}
	far, part := procs[0], remotePartition(t, procs, "far", 4)
	const fetches = 4
	type answer struct {
		code int
		body string
	}
	answers := make(chan answer, fetches)
	client := &http.Client{Timeout: time.Minute}
	for i := range fetches {
		go func() {
			format := []string{"json", "batches"}[i%2]
			req, _ := http.NewRequest("GET", fmt.Sprintf("http://%s/v1/topics/far/partitions/%d/records?offset=0&max=10000&max_bytes=16777216&wait_ms=15000&format=%s", far.httpAddr, part, format), nil)
			req.Header.Set("Authorization", "Bearer "+far.token)
			resp, err := client.Do(req)
			if err != nil {
				answers <- answer{0, err.Error()}
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			answers <- answer{resp.StatusCode, string(b)}
		}()
	}
	// Past the 5 s a fetch waits for room before it is refused.
	time.Sleep(6 * time.Second)
	if held := far.metric("eddy_request_memory_bytes"); held >= 1<<20 {
		t.Errorf("%d idle long polls of a partition on another node hold %.0f bytes of request memory", fetches, held)
	}
	body := fmt.Sprintf(`{"records":[{"value":"awaited","partition":%d}]}`, part)
	if code, err := far.do("POST", "/v1/topics/far/records", "application/json", []byte(body), nil); err != nil || code != 200 {
		t.Fatalf("produce: %d %v", code, err)
	}
	for range fetches {
		a := <-answers
		if a.code != 200 || !strings.Contains(a.body, "awaited") {
			t.Errorf("a long poll of a partition on another node was answered %d %.200q; want 200 with the record", a.code, a.body)
		}
	}
}

// TestRemoteLongPollsReadNothing: a node long-polls a partition another
// node holds without reading it there. Sixty fetches of 8 MiB waiting
// on node 1 for a partition of node 2 each read the 4 MiB record that
// woke them when it came (one batch each, outside the request memory),
// 240 MiB at once, before each read it again within its room.
func TestRemoteLongPollsReadNothing(t *testing.T) {
	procs := newCluster(t, 2)
	if code, err := procs[0].do("POST", "/v1/topics", "application/json", []byte(`{"name":"far","partitions":4,"replication_factor":1,"config":{"max.message.bytes":"8388608"}}`), nil); err != nil || code != 201 {
		t.Fatalf("create: %d %v", code, err)
	}
	far, part := procs[0], remotePartition(t, procs, "far", 4)
	const fetches = 60
	codes := make(chan int, fetches)
	client := &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxConnsPerHost: fetches, MaxIdleConnsPerHost: fetches}}
	for range fetches {
		go func() {
			req, _ := http.NewRequest("GET", fmt.Sprintf("http://%s/v1/topics/far/partitions/%d/records?offset=0&max_bytes=8388608&wait_ms=20000", far.httpAddr, part), nil)
			req.Header.Set("Authorization", "Bearer "+far.token)
			resp, err := client.Do(req)
			if err != nil {
				codes <- 0
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			codes <- resp.StatusCode
		}()
	}
	time.Sleep(2 * time.Second)
	before := peakRSS(t, far)
	body := fmt.Sprintf(`{"records":[{"value":%q,"partition":%d}]}`, strings.Repeat("x", 4<<20), part)
	if code, err := procs[1].do("POST", "/v1/topics/far/records", "application/json", []byte(body), nil); err != nil || code != 200 {
		t.Fatalf("produce: %d %v", code, err)
	}
	count := map[int]int{}
	for range fetches {
		count[<-codes]++
	}
	peak := peakRSS(t, far)
	t.Logf("%d long polls of a partition on another node, woken by a 4 MiB record: answers by status %v; node 1's peak RSS %d MB (%d MB before the record)", fetches, count, peak>>20, before>>20)
	if count[200] == 0 || count[200]+count[429] != fetches {
		t.Fatalf("answers by status %v; want each 200 or 429, some 200", count)
	}
	if grew := peak - before; grew > 160<<20 {
		t.Fatalf("node 1 grew by %d MB as the record woke its long polls", grew>>20)
	}
}

// remotePartition is a partition of topic (of n) that node 2 holds and
// node 1 does not.
func remotePartition(t *testing.T, procs []*proc, topic string, n int) int {
	t.Helper()
	for p := range n {
		if leaderOf(t, procs, topic, p) == 2 {
			return p
		}
	}
	t.Fatalf("node 2 holds none of the %d partitions of %s", n, topic)
	return -1
}

// batchOf8MB is a produce request of 8,000 records of 1,000 bytes: one
// stored batch of 8 MB.
func batchOf8MB() []byte {
	var recs []string
	for range 8000 {
		recs = append(recs, fmt.Sprintf(`{"value":%q}`, strings.Repeat("x", 1000)))
	}
	return []byte(`{"records":[` + strings.Join(recs, ",") + `]}`)
}

// TestFetchRoomForWholeBatch: a read returns the batch at its offset
// whole, however small its max_bytes, and one HTTP request's records are
// one batch (8 MB here). Sixty clients fetching max_bytes=1 from inside
// it, as batches, and never reading their answers, held 8 MB each for 2
// bytes of room: the node grew by about 500 MB. Now each takes room for
// the batch, so the tenant's half of max_request_memory bounds them, and
// the rest are refused (429).
func TestFetchRoomForWholeBatch(t *testing.T) {
	p := newProc(t)
	p.start()
	p.mustCreateTopic("one", 1)
	if code, err := p.do("POST", "/v1/topics/one/records", "application/json", batchOf8MB(), nil); err != nil || code != 200 {
		t.Fatalf("produce: %d %v", code, err)
	}
	before := peakRSS(t, p)
	const stalled = 60
	stallFetches(t, p, "one", 0, stalled)
	time.Sleep(8 * time.Second) // past the 5 s a fetch waits for room
	peak := peakRSS(t, p)
	t.Logf("%d stalled fetches of max_bytes=1 inside an 8 MB batch: the node's peak RSS %d MB (%d MB before)", stalled, peak>>20, before>>20)
	if grew := peak - before; grew > 200<<20 {
		t.Fatalf("the node grew by %d MB", grew>>20)
	}
}

// TestScansTakeRoom: a checksum reads a partition whole and a search
// scans up to scan_max_bytes of it, reading a stored batch at a time,
// whole, however large; either takes request memory for each read (a
// checksum took none, a search room for a 4 MiB page only), so
// concurrent scans inside large batches are refused 429 rather than
// holding memory the node never counted.
func TestScansTakeRoom(t *testing.T) {
	p := newProc(t)
	p.start()
	p.mustCreateTopic("one", 1)
	body := batchOf8MB()
	for range 4 { // four batches of 8 MB
		if code, err := p.do("POST", "/v1/topics/one/records", "application/json", body, nil); err != nil || code != 200 {
			t.Fatalf("produce: %d %v", code, err)
		}
	}
	for _, scan := range []string{"records?contains=y&scan_max_bytes=40000000", "checksum"} { // VmHWM: the larger grower last
		before := peakRSS(t, p)
		const concurrent = 60
		codes := make(chan int, concurrent)
		var wg sync.WaitGroup
		for range concurrent {
			wg.Add(1)
			go func() {
				defer wg.Done()
				code, err := p.do("GET", "/v1/topics/one/partitions/0/"+scan, "", nil, nil)
				if err != nil {
					t.Error(err)
				}
				codes <- code
			}()
		}
		wg.Wait()
		close(codes)
		count := map[int]int{}
		for c := range codes {
			count[c]++
		}
		peak := peakRSS(t, p)
		t.Logf("%d concurrent %s inside 8 MB batches: answers %v; the node's peak RSS %d MB (%d MB before)", concurrent, scan, count, peak>>20, before>>20)
		if count[200] == 0 || count[200]+count[429] != concurrent {
			t.Fatalf("answers %v: want 200s, and 429s for what found no room", count)
		}
		if grew := peak - before; grew > 200<<20 {
			t.Fatalf("the node grew by %d MB", grew>>20)
		}
	}
}

// TestRemoteFetchRoomForWholeBatch: TestFetchRoomForWholeBatch on a node
// that holds no replica of the partition. It forwards each read to the
// node that does, which takes room for the batch there and answers it;
// the forwarding node then held the 8 MB answer for 2 bytes of room of
// its own (it cannot know the batch's size before the answer comes).
func TestRemoteFetchRoomForWholeBatch(t *testing.T) {
	procs := newCluster(t, 2)
	if code, err := procs[0].do("POST", "/v1/topics", "application/json", []byte(`{"name":"far","partitions":4,"replication_factor":1}`), nil); err != nil || code != 201 {
		t.Fatalf("create: %d %v", code, err)
	}
	near, part := procs[0], remotePartition(t, procs, "far", 4)
	body := strings.Replace(string(batchOf8MB()), `{"value"`, fmt.Sprintf(`{"partition":%d,"value"`, part), -1)
	if code, err := procs[1].do("POST", "/v1/topics/far/records", "application/json", []byte(body), nil); err != nil || code != 200 {
		t.Fatalf("produce: %d %v", code, err)
	}
	before := peakRSS(t, near)
	const stalled = 60
	stallFetches(t, near, "far", part, stalled)
	time.Sleep(12 * time.Second) // past the 5 s a read waits for room, on either node
	peak := peakRSS(t, near)
	t.Logf("%d stalled fetches of max_bytes=1 inside an 8 MB batch held on another node: the forwarding node's peak RSS %d MB (%d MB before)", stalled, peak>>20, before>>20)
	if grew := peak - before; grew > 200<<20 {
		t.Fatalf("the forwarding node grew by %d MB", grew>>20)
	}
}

// stallFetches sends n fetches of max_bytes=1 of stored batches from
// inside the first batch of a topic's partition, through p, and never
// reads their answers (the connections close when the test ends).
func stallFetches(t *testing.T, p *proc, topic string, part, n int) {
	t.Helper()
	for i := range n {
		c, err := net.Dial("tcp", p.httpAddr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		fmt.Fprintf(c, "GET /v1/topics/%s/partitions/%d/records?offset=%d&max_bytes=1&format=batches HTTP/1.1\r\nHost: eddy\r\nAuthorization: Bearer %s\r\n\r\n", topic, part, 5+i, p.token)
	}
}
