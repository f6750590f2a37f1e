package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestARM64Node: gateways run linux/arm64, so the arm64 release build runs
// here under qemu-user, and what `make cross` only compiles is run:
// records produced over HTTP, over Kafka (franz-go, idempotent, acks=all)
// and over MQTT (QoS 1) are all read back, each exactly once, and so is a
// record a tenant's WebAssembly transform enriched (wazero compiles it
// for arm64), again after a kill -9 and a restart. It catches what an
// amd64 run cannot: a system call that differs on arm64 (the Raft log
// store's direct I/O, fadvise, the descriptor limit), a 64-bit atomic off
// its alignment, a byte-order assumption in the stores' encodings.
func TestARM64Node(t *testing.T) {
	qemu := toolPath(t, "qemu-aarch64-static", "apt-get install qemu-user-static")
	bin := filepath.Join(t.TempDir(), "eddy-arm64")
	build := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, "../cmd/eddy")
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=arm64")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build for arm64: %v\n%s", err, out)
	}
	p := newProc(t)
	p.bin, p.wrap = bin, []string{qemu}
	// Each sync drops all but 4 KiB of a partition's segments from the
	// page cache (fadvise), as a long-running gateway's partitions do.
	p.env = append(p.env, "EDDY_SEGMENT_CACHE_BYTES=4096")
	p.start()
	if exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", p.cmd.Process.Pid)); filepath.Base(exe) != filepath.Base(qemu) {
		t.Fatalf("the node runs %s, not the arm64 build under %s", exe, qemu)
	}
	p.mustCreateTopic("t", 2)

	const n = 2000 // of each protocol
	want := map[string]bool{}
	p.produceValues("t", 0, n) // HTTP: r-0 ...
	for i := range n {
		want[fmt.Sprintf("r-%d", i)] = true
	}
	cl := kgoClient(t, []*proc{p}, kgo.DefaultProduceTopic("t"), kgo.RequiredAcks(kgo.AllISRAcks()))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	recs := make([]*kgo.Record, n)
	for i := range recs {
		recs[i] = &kgo.Record{Key: []byte(fmt.Sprintf("dev-%d", i%7)), Value: []byte(fmt.Sprintf("k-%d", i))}
		want[fmt.Sprintf("k-%d", i)] = true
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("kafka produce: %v", err)
	}
	var lines strings.Builder
	for i := range 200 {
		fmt.Fprintf(&lines, "m-%d\n", i)
		want[fmt.Sprintf("m-%d", i)] = true
	}
	pub := exec.Command("mosquitto_pub", "-h", "127.0.0.1", "-p", p.mqttPort(), "-V", "mqttv5", "-u", "default", "-P", p.token,
		"-t", "t/dev-1", "-q", "1", "-l", "-i", "arm64")
	pub.Stdin = strings.NewReader(lines.String())
	if out, err := pub.CombinedOutput(); err != nil {
		t.Fatalf("mosquitto_pub: %v\n%s", err, out)
	}

	check := func(when string) {
		t.Helper()
		got := map[string]int{}
		for part := range 2 {
			for _, r := range p.readPartition("t", part) {
				got[jsonString(r.Value)]++
			}
		}
		missing, twice := 0, 0
		for v := range want {
			switch got[v] {
			case 0:
				missing++
			case 1:
			default:
				twice++
			}
		}
		if missing > 0 || twice > 0 || len(got) != len(want) {
			t.Fatalf("%s: %d records acknowledged, %d distinct read back: %d missing, %d more than once", when, len(want), len(got), missing, twice)
		}
	}
	check("before the kill")

	// A tenant's transform, compiled by wazero for arm64.
	p.mustCreateTopic("enriched", 1)
	p.mustDeploy("enrich", buildWasm(t, "examples/transforms/enrich"))
	p.mustBind("enriched", `{"module":"enrich","config":{"fields":{"site":"edge-01"}}}`)
	enriched := func(when string) {
		t.Helper()
		got := p.records("", "enriched", 0)
		if len(got) != 1 || string(got[0].Value) != `{"temp":20,"site":"edge-01"}` || got[0].header("site") != "edge-01" {
			t.Fatalf("%s: the transform's output %+v", when, got)
		}
	}
	if code, a := p.produceJSON("", "enriched", `{"records":[{"key":"d1","value":{"temp":20}}]}`); code != 200 || len(a.Offsets) != 1 {
		t.Fatalf("produce through the transform: %d %+v", code, a)
	}
	enriched("before the kill")

	p.kill()
	p.start()
	check("after kill -9 and a restart")
	enriched("after kill -9 and a restart")
}
