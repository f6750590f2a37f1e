package e2e

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestFullDiskNeverCrashes runs a node whose data directory is a small
// tmpfs (mounted in a mount namespace of its own, so no root is needed
// where user namespaces are allowed): 64, 128 and 256 MiB. Writes are
// refused with storage_full before the disk is full, the node never
// crashes, reads serve every acknowledged record, and deleting a topic
// brings writes back without a restart.
func TestFullDiskNeverCrashes(t *testing.T) {
	for _, mib := range []int{64, 128, 256} {
		t.Run(fmt.Sprintf("%dMiB", mib), func(t *testing.T) {
			p := newProc(t)
			smallVolume(t, p, mib)
			p.start()
			var out map[string]any
			code, _ := p.do("POST", "/v1/topics", "application/json", []byte(`{"name":"fill","partitions":2}`), &out)
			if code == 507 {
				if mib >= 256 {
					t.Fatalf("a topic refused on an empty %d MiB disk: %v", mib, out)
				}
				t.Logf("%d MiB: the topic was refused (storage_full): %v", mib, out)
			} else if code != 201 {
				t.Fatalf("create: %d %v", code, out)
			}
			acked, refused, body := 0, 0, ""
			if code == 201 {
				value := strings.Repeat("x", 1000)
				var recs []string
				for i := 0; i < 100; i++ {
					recs = append(recs, fmt.Sprintf(`{"value":"%s"}`, value))
				}
				body = `{"records":[` + strings.Join(recs, ",") + `]}`
				deadline := time.Now().Add(60 * time.Second)
				for refused < 3 && time.Now().Before(deadline) {
					c, a := p.produceJSON("", "fill", body)
					switch c {
					case 200:
						acked += len(a.Offsets)
					case 507:
						refused++
						time.Sleep(200 * time.Millisecond)
					default:
						t.Fatalf("produce: %d (the node must refuse with 507, not fail)\n%s", c, p.log)
					}
				}
				if refused == 0 {
					t.Fatalf("%d records written to a %d MiB disk and never refused", acked, mib)
				}
			}
			if !p.alive() {
				t.Fatalf("the node died\n%s", p.log)
			}
			got := 0
			for part := 0; part < 2 && code == 201; part++ {
				got += len(p.readPartition("fill", part))
			}
			if got < acked {
				t.Fatalf("%d acknowledged, %d readable", acked, got)
			}
			t.Logf("%d MiB: %d records acknowledged, then storage_full; all readable", mib, acked)
			if code != 201 {
				return
			}
			// A node that ran out of disk starts again, serves what it
			// acknowledged and still refuses writes it has no room for.
			p.kill()
			p.start()
			got = 0
			for part := 0; part < 2; part++ {
				got += len(p.readPartition("fill", part))
			}
			if got < acked {
				t.Fatalf("after a restart on a full disk: %d acknowledged, %d readable", acked, got)
			}
			// Restarting may free some space (the log store drops what it
			// no longer needs); the node fills it and refuses again.
			more, deadline := 0, time.Now().Add(60*time.Second)
			for c := 0; c != 507; {
				if c, _ = p.produceJSON("", "fill", body); c == 200 {
					more += 100
				} else if c != 507 {
					t.Fatalf("produce after a restart on a full disk: %d, want 200 or 507\n%s", c, p.log)
				}
				if time.Now().After(deadline) {
					t.Fatalf("after a restart, %d more records and never refused", more)
				}
			}
			t.Logf("%d MiB: restarted on a full disk, all %d records readable; %d more acknowledged before storage_full again", mib, acked, more)
			// Deleting the topic frees its space: writes come back.
			if c, err := p.do("DELETE", "/v1/topics/fill", "", nil, nil); err != nil || c != 204 {
				t.Fatalf("delete: %d %v", c, err)
			}
			deadline = time.Now().Add(30 * time.Second)
			for {
				c, _ := p.do("POST", "/v1/topics", "application/json", []byte(`{"name":"again"}`), nil)
				if c == 201 || c == 409 {
					if pc, _ := p.produceJSON("", "again", `{"records":[{"value":1}]}`); pc == 200 {
						break
					}
				}
				if time.Now().After(deadline) {
					t.Fatalf("writes did not come back after the topic was deleted: %d", c)
				}
				time.Sleep(500 * time.Millisecond)
			}
		})
	}
}

// smallVolume gives p a data directory on a tmpfs of mib MiB that outlives
// the node's restarts: a holder process mounts it in a mount namespace of
// its own (with a user namespace, so no root is needed where those are
// allowed) and the node is started inside that namespace.
func smallVolume(t *testing.T, p *proc, mib int) {
	t.Helper()
	holder := exec.Command("unshare", "-rm", "sh", "-c",
		`mount -t tmpfs -o size=${1}m tmpfs "$0" && echo mounted && exec sleep 3600`, p.dataDir, fmt.Sprint(mib))
	out, err := holder.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	holder.Stderr = os.Stderr
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { holder.Process.Kill(); holder.Wait() })
	if line, err := bufio.NewReader(out).ReadString('\n'); err != nil || line != "mounted\n" {
		t.Fatalf("mounting a %d MiB tmpfs: %q %v", mib, line, err)
	}
	p.mountNS = holder.Process.Pid
	p.wrap = []string{"nsenter", "-t", fmt.Sprint(p.mountNS), "-U", "-m", "--preserve-credentials"}
}

// TestDiskFilledByAnotherProcess: while clients produce, another process
// takes every free byte of the node's disk, past min_free_bytes, so the
// node's next write meets ENOSPC. The node gives up its disk reserve,
// completes what it had in flight and refuses further writes (507); it
// never crashes, and every acknowledged record stays readable, before and
// after a restart. Freeing the space brings writes back.
func TestDiskFilledByAnotherProcess(t *testing.T) {
	p := newProc(t)
	smallVolume(t, p, 256)
	p.start()
	p.mustCreateTopic("fill", 2)
	body := `{"records":[` + strings.TrimSuffix(strings.Repeat(`{"value":"`+strings.Repeat("x", 1000)+`"},`, 100), ",") + `]}`
	var mu sync.Mutex
	acked, refused, stop := 0, 0, make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				var a produceAnswer
				code, err := p.do("POST", "/v1/topics/fill/records", "application/json", []byte(body), &a)
				mu.Lock()
				switch {
				case err != nil:
					t.Errorf("produce: %v (the node must refuse, not fail)", err)
				case code == 200:
					acked += len(a.Offsets)
				case code == 507:
					refused++
				default:
					t.Errorf("produce: %d, want 200 or 507", code)
				}
				mu.Unlock()
				if err != nil || (code != 200 && code != 507) {
					return
				}
			}
		}()
	}
	// The filler starts once the node holds some acknowledged records,
	// well before its own writes reach min_free_bytes: on a fast machine
	// 300 ms of writes took the node to its threshold, the filler took
	// only the rest, and freeing it could not bring writes back.
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		mu.Lock()
		n := acked
		mu.Unlock()
		if n >= 10_000 {
			break
		}
	}
	filler := p.path("filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 1<<20)
	filled := 0
	for {
		if _, err := f.Write(chunk); err != nil {
			break // ENOSPC: the disk is full
		}
		filled++
	}
	f.Close()
	time.Sleep(2 * time.Second) // the clients go on against a full disk
	close(stop)
	wg.Wait()
	if !p.alive() {
		t.Fatalf("the node died when the disk filled\n%s", p.log)
	}
	if refused == 0 {
		t.Fatalf("%d records acknowledged on a full disk and none refused", acked)
	}
	readable := func() int {
		n := 0
		for part := range 2 {
			n += len(p.readPartition("fill", part))
		}
		return n
	}
	if got := readable(); got < acked {
		t.Fatalf("%d acknowledged, %d readable", acked, got)
	}
	t.Logf("another process took %d MiB; %d records acknowledged, %d requests refused; all readable", filled, acked, refused)
	if strings.Contains(p.log.String(), "disk reserve was released") {
		t.Logf("a write met ENOSPC: the node gave up its disk reserve")
	} else {
		t.Logf("the node's own check refused writes before any write met ENOSPC")
	}
	p.kill()
	p.start()
	if got := readable(); got < acked {
		t.Fatalf("after a restart: %d acknowledged, %d readable", acked, got)
	}
	if c, _ := p.produceJSON("", "fill", body); c != 507 && c != 200 { // a restart may free some space
		t.Fatalf("after a restart on a full disk, produce answered %d, want 507 or 200", c)
	}
	os.Remove(filler)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if c, _ := p.produceJSON("", "fill", body); c == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("writes did not come back after the space was freed\n%s", p.log)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
