package e2e

import (
	"fmt"
	"strings"
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
			p.wrap = []string{"unshare", "-rm", "sh", "-c",
				fmt.Sprintf(`mount -t tmpfs -o size=%dm tmpfs "%s" && exec "$0" "$@"`, mib, p.dataDir)}
			p.ownMount = true
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
			acked, refused := 0, 0
			if code == 201 {
				value := strings.Repeat("x", 1000)
				var recs []string
				for i := 0; i < 100; i++ {
					recs = append(recs, fmt.Sprintf(`{"value":"%s"}`, value))
				}
				body := `{"records":[` + strings.Join(recs, ",") + `]}`
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
			// Deleting the topic frees its space: writes come back.
			if c, err := p.do("DELETE", "/v1/topics/fill", "", nil, nil); err != nil || c != 204 {
				t.Fatalf("delete: %d %v", c, err)
			}
			deadline := time.Now().Add(30 * time.Second)
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
