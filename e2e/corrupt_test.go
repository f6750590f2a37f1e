package e2e

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Damaged partitions (issue 12, item 11): one bad partition never takes a
// node down.

// segmentCheckpoint reads a partition's checkpoint (12 bytes of header,
// then JSON) to learn what was synced.
func segmentCheckpoint(t *testing.T, dir string) (segs []struct {
	Base int64 `json:"base"`
	Size int64 `json:"size"`
}) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "checkpoint"))
	if err != nil || len(b) < 12 {
		t.Fatalf("checkpoint in %s: %v", dir, err)
	}
	var cp struct {
		Segments []struct {
			Base int64 `json:"base"`
			Size int64 `json:"size"`
		} `json:"segments"`
	}
	if err := json.Unmarshal(b[12:], &cp); err != nil {
		t.Fatal(err)
	}
	return cp.Segments
}

// flipByte damages one byte of a file.
func flipByte(t *testing.T, name string, pos int64) {
	t.Helper()
	f, err := os.OpenFile(name, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	f.ReadAt(b, pos)
	b[0] ^= 0x40
	if _, err := f.WriteAt(b, pos); err != nil {
		t.Fatal(err)
	}
}

// fetchAt fetches from offset and returns the status, the offsets read and
// the error code and message.
func (p *proc) fetchAt(topic string, offset int64) (int, []int64, string, string) {
	p.tb.Helper()
	var fr struct {
		Records []struct {
			Offset int64 `json:"offset"`
		} `json:"records"`
		Error struct{ Code, Message string } `json:"error"`
	}
	code, _ := p.do("GET", fmt.Sprintf("/v1/topics/%s/partitions/0/records?offset=%d&max=10000", topic, offset), "", nil, &fr)
	var offs []int64
	for _, r := range fr.Records {
		offs = append(offs, r.Offset)
	}
	return code, offs, fr.Error.Code, fr.Error.Message
}

func TestDamagedPartitions(t *testing.T) {
	p := newProc(t)
	p.env = []string{"EDDY_SYNC_BYTES=1024"}
	p.start()
	// Shards 1000, 1001, 1002 in this order.
	p.mustCreateTopic("active", 1)
	if code, err := p.do("POST", "/v1/topics", "application/json", []byte(`{"name":"sealed","config":{"segment.bytes":"4096"}}`), nil); err != nil || code != 201 {
		t.Fatalf("create sealed: %d %v", code, err)
	}
	p.mustCreateTopic("good", 1)
	for _, topic := range []string{"active", "sealed", "good"} {
		for b := 0; b < 20; b++ {
			var recs []string
			for i := 0; i < 10; i++ {
				recs = append(recs, fmt.Sprintf(`{"value":"%s-%d-%d-%s"}`, topic, b, i, strings.Repeat("x", 40)))
			}
			if code, _ := p.produceJSON("", topic, `{"records":[`+strings.Join(recs, ",")+`]}`); code != 200 {
				t.Fatalf("produce %s: %d", topic, code)
			}
		}
	}
	part := func(shard int) string { return filepath.Join(p.dataDir, "partitions", fmt.Sprintf("%010d", shard)) }
	// Wait for the syncs to cover what was written, then stop.
	deadline := time.Now().Add(20 * time.Second)
	for {
		segs := segmentCheckpoint(t, part(1000))
		if len(segs) > 0 && segs[len(segs)-1].Size > 8000 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the active topic's checkpoint never covered its data: %+v", segs)
		}
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(2 * time.Second) // sealed's syncs too
	p.cmd.Process.Signal(syscall.SIGTERM)
	<-p.exited

	// A byte flipped in the synced part of active's active segment: it
	// cannot be opened. A byte flipped in a sealed segment of sealed: it
	// opens (sealed segments are trusted), the bad batch is found by reads.
	act := segmentCheckpoint(t, part(1000))
	flipByte(t, filepath.Join(part(1000), fmt.Sprintf("%020d.log", act[0].Base)), act[0].Size/2)
	sealed := segmentCheckpoint(t, part(1001))
	if len(sealed) < 3 {
		t.Fatalf("sealed has %d segments", len(sealed))
	}
	// In the records of its second segment's second batch (a Kafka v2
	// batch: base offset, length, then 49 more bytes of header).
	segFile := filepath.Join(part(1001), fmt.Sprintf("%020d.log", sealed[1].Base))
	raw, err := os.ReadFile(segFile)
	if err != nil {
		t.Fatal(err)
	}
	second := 12 + int64(binary.BigEndian.Uint32(raw[8:12]))
	flipByte(t, segFile, second+61+10)
	p.start()

	// The node is up and ready, and says which replica it set aside.
	resp, err := http.Get(p.url("/readyz"))
	if err != nil {
		t.Fatal(err)
	}
	var rz struct {
		Status      string `json:"status"`
		Quarantined []struct {
			Topic, Reason string
		} `json:"quarantined"`
	}
	json.NewDecoder(resp.Body).Decode(&rz)
	resp.Body.Close()
	if resp.StatusCode != 200 || len(rz.Quarantined) != 1 || rz.Quarantined[0].Topic != "default/active" {
		t.Fatalf("readyz %d %+v", resp.StatusCode, rz)
	}
	if n := p.metric(`eddy_partition_quarantined{topic="default/active",partition="0"}`); n != 1 {
		t.Fatalf("eddy_partition_quarantined = %v", n)
	}
	var desc struct {
		PartitionInfo []struct{ Quarantined string } `json:"partition_info"`
	}
	if code, err := p.do("GET", "/v1/topics/active", "", nil, &desc); err != nil || code != 200 || len(desc.PartitionInfo) != 1 || desc.PartitionInfo[0].Quarantined == "" {
		t.Fatalf("describe: %d %v %+v", code, err, desc)
	}
	if code, _, ecode, msg := p.fetchAt("active", 0); code != 500 || ecode != "corrupt" || !strings.Contains(msg, "quarantined") {
		t.Fatalf("fetch from the quarantined partition: %d %s %s", code, ecode, msg)
	}
	// Every other partition serves.
	if code, offs, _, _ := p.fetchAt("good", 0); code != 200 || len(offs) != 200 {
		t.Fatalf("the good topic: %d, %d records", code, len(offs))
	}
	if code, _ := p.produceJSON("", "good", `{"records":[{"value":"after"}]}`); code != 200 {
		t.Fatalf("produce to good: %d", code)
	}

	// A bad batch in a sealed segment: the records before it are served,
	// a read at it says where it is and where the next batch starts.
	code, offs, _, _ := p.fetchAt("sealed", 0)
	if code != 200 || len(offs) == 0 || offs[len(offs)-1] >= 190 {
		t.Fatalf("fetch over the bad batch: %d, %d records", code, len(offs))
	}
	bad := offs[len(offs)-1] + 1
	for code == 200 && len(offs) > 0 { // read on up to the bad batch
		bad = offs[len(offs)-1] + 1
		code, offs, _, _ = p.fetchAt("sealed", bad)
	}
	code, _, ecode, msg := p.fetchAt("sealed", bad)
	if code != 500 || ecode != "corrupt" || !strings.Contains(msg, "next batch starts at offset") {
		t.Fatalf("fetch at the bad batch %d: %d %s %s", bad, code, ecode, msg)
	}
	if code, offs, _, _ := p.fetchAt("sealed", bad+10); code != 200 || len(offs) == 0 {
		t.Fatalf("fetch after the bad batch: %d %v", code, offs)
	}

	// The operator repairs the single-replica partition: told what was
	// lost, it serves again from what was kept.
	cmd := exec.Command(eddyBin, "topic", "repair", "active", "0", "--server", "http://"+p.httpAddr, "--token", p.token)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "lost: offsets") {
		t.Fatalf("eddy topic repair: %v\n%s", err, out)
	}
	t.Logf("%s", out)
	deadline = time.Now().Add(20 * time.Second)
	for {
		code, offs, _, _ := p.fetchAt("active", 0)
		if code == 200 {
			if len(offs) == 0 || len(offs) >= 200 {
				t.Fatalf("after the repair: %d records (some before the damage, not all)", len(offs))
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("active never served after the repair: %d", code)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if code, _ := p.produceJSON("", "active", `{"records":[{"value":"after the repair"}]}`); code != 200 {
		t.Fatalf("produce after the repair: %d", code)
	}
}

// TestClusterRebuildsDamagedReplica: in a 3-node cluster, node 3's replica
// of a partition (RF 3) is damaged while it is down. It starts with the
// replica quarantined, serves the topic through the other replicas, and
// the replica is rebuilt from them on its own: every node ends with the
// same bytes, and nothing acknowledged is lost.
func TestClusterRebuildsDamagedReplica(t *testing.T) {
	procs := newCluster(t, 3, "EDDY_SYNC_BYTES=1024")
	p := procs[0]
	if code, err := p.do("POST", "/v1/topics", "application/json", []byte(`{"name":"r","partitions":1,"replication_factor":3}`), nil); err != nil || code != 201 {
		t.Fatalf("create: %d %v", code, err)
	}
	for b := 0; b < 20; b++ {
		var recs []string
		for i := 0; i < 10; i++ {
			recs = append(recs, fmt.Sprintf(`{"value":"r-%d-%d-%s"}`, b, i, strings.Repeat("y", 40)))
		}
		if code, _ := p.produceJSON("", "r", `{"records":[`+strings.Join(recs, ",")+`]}`); code != 200 {
			t.Fatalf("produce: %d", code)
		}
	}
	victim := procs[2]
	dir := filepath.Join(victim.dataDir, "partitions", fmt.Sprintf("%010d", 1000))
	deadline := time.Now().Add(20 * time.Second)
	for {
		segs := segmentCheckpoint(t, dir)
		if len(segs) > 0 && segs[len(segs)-1].Size > 8000 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node 3's checkpoint never covered the data: %+v", segs)
		}
		time.Sleep(200 * time.Millisecond)
	}
	victim.cmd.Process.Signal(syscall.SIGTERM)
	<-victim.exited
	segs := segmentCheckpoint(t, dir)
	flipByte(t, filepath.Join(dir, fmt.Sprintf("%020d.log", segs[0].Base)), segs[0].Size/2)
	victim.start()
	// Served meanwhile through the healthy replicas, by any node.
	if code, offs, _, _ := victim.fetchAt("r", 0); code != 200 || len(offs) != 200 {
		t.Fatalf("fetch through node 3 while its replica is damaged: %d, %d records", code, len(offs))
	}
	// Rebuilt: node 3 holds a replica again, with the same bytes.
	deadline = time.Now().Add(60 * time.Second)
	for {
		var sums []string
		for _, n := range procs {
			var c struct {
				Node   uint64 `json:"node"`
				SHA256 string `json:"sha256"`
				Upto   int64  `json:"upto"`
			}
			if code, err := n.do("GET", "/v1/topics/r/partitions/0/checksum?upto=200", "", nil, &c); err == nil && code == 200 && c.Node == uint64(n.nodeID) {
				sums = append(sums, c.SHA256)
			}
		}
		if len(sums) == 3 && sums[0] == sums[1] && sums[1] == sums[2] {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node 3's replica was not rebuilt: checksums %v\n%s", sums, victim.diag())
		}
		time.Sleep(500 * time.Millisecond)
	}
	if aside, _ := filepath.Glob(dir + ".damaged-*"); len(aside) != 1 {
		t.Fatalf("damaged copies kept: %v\n%s", aside, victim.log)
	}
	resp, err := http.Get(victim.url("/readyz"))
	if err != nil {
		t.Fatal(err)
	}
	var rz map[string]any
	json.NewDecoder(resp.Body).Decode(&rz)
	resp.Body.Close()
	if rz["quarantined"] != nil {
		t.Fatalf("still quarantined after the rebuild: %v", rz)
	}
	if code, _ := victim.produceJSON("", "r", `{"records":[{"value":"after"}]}`); code != 200 {
		t.Fatalf("produce after the rebuild: %d", code)
	}
}
