package kafka

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestRespondFetchSplices: a fetch's answer written with its batches
// spliced in is, byte for byte, kmsg's encoding of the whole answer, at
// every version served, with several topics, partitions with and without
// batches, batches of sizes whose lengths take one to three varint bytes,
// and a topic named like the marker's length byte.
func TestRespondFetchSplices(t *testing.T) {
	fill := func(n int, c byte) []byte { return bytes.Repeat([]byte{c}, n) }
	for v := int16(4); v <= 12; v++ {
		resp := kmsg.NewPtrFetchResponse()
		resp.SetVersion(v)
		for ti, name := range []string{"a", "\x11\x00\x00\x00\x10", "c"} {
			rt := kmsg.NewFetchResponseTopic()
			rt.Topic = name
			for pi, size := range []int{0, 1, 126, 127, 20000, 70 << 10} {
				rp := kmsg.NewFetchResponseTopicPartition()
				rp.Partition, rp.HighWatermark, rp.LogStartOffset = int32(pi), int64(1000*ti+pi), 7
				rp.RecordBatches = fill(size, byte('A'+ti*6+pi))
				if ti == 2 && pi == 3 {
					rp.ErrorCode = 6
				}
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		h := header{key: 1, version: v, corr: 77}
		want := (&conn{}).encode(h, resp)
		want = append([]byte(nil), want...)

		client, server := net.Pipe()
		c := &conn{l: &Listener{cfg: Config{IdleTimeout: 5 * time.Second}}, nc: server}
		got := make(chan []byte, 1)
		go func() {
			b, _ := io.ReadAll(client)
			got <- b
		}()
		if err := c.respondFetch(h, resp); err != nil {
			t.Fatalf("v%d: %v", v, err)
		}
		server.Close()
		if b := <-got; !bytes.Equal(b, want) {
			t.Fatalf("v%d: the spliced answer (%d bytes) is not the encoded one (%d bytes)", v, len(b), len(want))
		}
		// The answer keeps its batches (a caller may hand them back).
		if p := resp.Topics[1].Partitions[4]; len(p.RecordBatches) != 20000 || p.RecordBatches[0] != 'A'+10 {
			t.Fatalf("v%d: a partition's batches were not given back to the answer", v)
		}
	}
}

// TestSpliceRefusesWithoutMarker: an encoding that does not hold the
// markers, each behind its length, is not spliced.
func TestSpliceRefusesWithoutMarker(t *testing.T) {
	b := append([]byte{0, 0, 0, 0, 1, 2, 3, 0x10}, batchesMarker...)
	if _, ok := splice(b, [][]byte{{1}}, true); ok {
		t.Fatal("a marker behind the wrong length was spliced")
	}
	if _, ok := splice(b[:8], [][]byte{{1}}, false); ok {
		t.Fatal("an encoding without the marker was spliced")
	}
	if out, ok := splice(append([]byte{0, 0, 0, 0, 0, 0, 0, 16}, batchesMarker...), [][]byte{{9, 9}}, false); !ok {
		t.Fatal("a marker behind its int32 length was not spliced")
	} else if all := bytes.Join(out, nil); !bytes.Equal(all, []byte{0, 0, 0, 6, 0, 0, 0, 2, 9, 9}) {
		t.Fatalf("spliced %v", all)
	}
}
