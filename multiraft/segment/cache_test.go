package segment

import (
	"bytes"
	"fmt"
	"os"
	"testing"

	"github.com/eddy-broker/eddy"
	"github.com/eddy-broker/eddy/batch"
	"github.com/eddy-broker/eddy/internal/testutil"
)

// TestSyncDropsAllButNewest: once a Sync has put the log on the disk, it
// is dropped from the page cache but for its newest CacheBytes, across
// segments (a rolled segment's tail once the newer ones hold
// CacheBytes); a Writeback drops what it synced of the same; only durable
// bytes are ever dropped; a negative CacheBytes drops nothing.
// The reads still find every record.
func TestSyncDropsAllButNewest(t *testing.T) {
	for _, cache := range []int64{100 << 10, 300 << 10, -1} {
		t.Run(fmt.Sprint(cache), func(t *testing.T) {
			fsys := NewMemFS()
			l := mustOpen(t, fsys, dir, Config{SegmentBytes: 128 << 10, CacheBytes: cache})
			var want []eddy.Record
			index := uint64(0)
			for round := 0; round < 12; round++ {
				for i := 0; i < 30+round*5; i++ {
					index++
					recs := []eddy.Record{{Key: []byte(fmt.Sprint(index)), Value: bytes.Repeat([]byte{byte(index)}, 1000+int(index%200))}}
					want = append(want, recs...)
					apply(t, l, []entry{{index: index, batch: batch.Append(nil, recs, batch.Options{ProducerID: -1})}})
				}
				if round%3 == 1 {
					if err := l.Writeback(); err != nil {
						t.Fatal(err)
					}
					checkDrops(t, fsys, l, cache, false)
				}
				if round%2 == 1 {
					if err := l.Sync(); err != nil {
						t.Fatal(err)
					}
					checkDrops(t, fsys, l, cache, true)
				}
			}
			if n := len(l.Segments()); n < 4 {
				t.Fatalf("%d segments: the test wants the log to roll", n)
			}
			readsAll(t, l, want)
		})
	}
}

// checkDrops checks each segment's dropped ranges: from the file's
// start, each past the last, of durable bytes only, and, after a Sync
// (synced), all but the log's newest cache bytes (none with cache
// negative).
func checkDrops(t *testing.T, fsys *MemFS, l *Log, cache int64, synced bool) {
	t.Helper()
	segs := l.Segments()
	keep := cache
	for i := len(segs) - 1; i >= 0; i-- {
		sg := segs[i]
		var dropped int64
		for _, d := range fsys.CacheDrops(segName(dir, sg.Base, ".log")) {
			if d.Off != 0 || d.N <= dropped || d.N > d.Durable {
				t.Fatalf("segment %d: dropped [%d, +%d) after %d bytes dropped, with %d durable", sg.Base, d.Off, d.N, dropped, d.Durable)
			}
			dropped = d.N
		}
		want := max(0, sg.Size-max(keep, 0))
		if cache < 0 {
			want = 0
		}
		if (synced && dropped != want) || dropped > want {
			t.Fatalf("segment %d of %d bytes (synced %v): %d dropped, want %d", sg.Base, sg.Size, synced, dropped, want)
		}
		keep -= sg.Size
	}
}

// TestSyncDropsPagesFromTheCache: on a real file system the pages a Sync
// drops leave the page cache (mincore), where they were before it, and a
// read of them does not bring them back for good.
func TestSyncDropsPagesFromTheCache(t *testing.T) {
	d := testutil.DiskDir(t)
	const cache = 1 << 20
	l := mustOpen(t, OSFS{}, d, Config{SegmentBytes: 4 << 20, CacheBytes: cache})
	defer l.Close()
	value := bytes.Repeat([]byte("v"), 64<<10)
	for i := uint64(1); i <= 160; i++ { // 10 MiB
		apply(t, l, []entry{{index: i, batch: batch.Append(nil, []eddy.Record{{Value: value}}, batch.Options{ProducerID: -1})}})
	}
	segs := l.Segments()
	resident := func(sg SegmentInfo, from, to int64) (in, all int) {
		f, err := os.Open(segName(d, sg.Base, ".log"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		return testutil.ResidentPages(t, f, sg.Size, from, to)
	}
	in, all := 0, 0
	for _, sg := range segs[:len(segs)-1] {
		i, a := resident(sg, 0, sg.Size)
		in, all = in+i, all+a
	}
	if all == 0 || in < all*9/10 {
		t.Fatalf("before the sync %d of %d pages of the older segments were cached: nothing to drop", in, all)
	}
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	dropped := func(when string) {
		keep := int64(cache)
		for i := len(segs) - 1; i >= 0; i-- {
			sg := segs[i]
			// The page the kept bytes begin in stays: a page is dropped
			// only whole.
			to := max(0, sg.Size-max(keep, 0)) &^ int64(os.Getpagesize()-1)
			if in, all := resident(sg, 0, to); in > 0 {
				t.Errorf("segment %d %s: %d of %d pages the sync dropped are cached", sg.Base, when, in, all)
			}
			keep -= sg.Size
		}
	}
	dropped("after the sync")
	// A read from the start finds them on the disk and drops them again.
	if n := len(readAllRecords(t, l)); n != 160 {
		t.Fatalf("read %d records, want 160", n)
	}
	dropped("after a read from the start")
}
