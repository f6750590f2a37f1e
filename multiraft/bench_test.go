package multiraft

import (
	"context"
	"testing"
	"time"

	"github.com/eddy-broker/eddy"
	"github.com/eddy-broker/eddy/batch"
	"github.com/eddy-broker/eddy/internal/testutil"
)

// BenchmarkLoneRecord is one producer writing one 1 KiB record at a time
// to a partition of one replica: ns/op is the latency of one durable
// record through the partition's proposer ("proposer"), and of the same
// entry proposed to dragonboat directly ("raft": one Raft round, one sync
// of the log store and the apply, the floor the proposer adds to).
func BenchmarkLoneRecord(b *testing.B) {
	h := mustStartHost(b, b.TempDir(), testutil.FreeAddr(b))
	defer h.Close()
	_, meta := oneTopic(b, h, "lone")
	recs := []eddy.Record{{Value: make([]byte, 1024)}}
	ctx := context.Background()
	b.Run("proposer", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if _, err := h.ProduceTo(ctx, meta, recs, []eddy.Partition{0}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("raft", func(b *testing.B) {
		lp, err := h.local(meta, 0)
		if err != nil {
			b.Fatal(err)
		}
		sess := h.nh.GetNoOPSession(lp.shardID)
		cmd := batch.Append(encodeAppend(nil, false), recs, batch.Options{ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1})
		for i := 0; i < b.N; i++ {
			ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			if _, err := h.nh.SyncPropose(ctx, sess, cmd); err != nil {
				b.Fatal(err)
			}
			cancel()
		}
	})
}
