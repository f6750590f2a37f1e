package e2e

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestKafkaDescribeLogDirs: kadm's DescribeAllLogDirs (as kafka-log-dirs
// or a console's topic sizes) asks every node of a 3-node cluster for
// its replicas: each partition (of an RF 1 topic spread over the nodes,
// of an RF 3 one on all) is listed by exactly the nodes Metadata names
// as its replicas, each in its data directory, and its replicas come to
// the same size, at least that of what was written.
func TestKafkaDescribeLogDirs(t *testing.T) {
	procs := newCluster(t, 3)
	written := map[string]int{"spread": 3, "sized": 1} // topic: partitions
	for topic, n := range written {
		rf := 4 - n // 3 partitions of RF 1, 1 of RF 3
		if code, err := procs[0].do("POST", "/v1/topics", "application/json", fmt.Appendf(nil, `{"name":%q,"partitions":%d,"replication_factor":%d}`, topic, n, rf), nil); err != nil || code != 201 {
			t.Fatalf("create %s: %d %v", topic, code, err)
		}
	}
	cl := kgoClient(t, procs, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerBatchCompression(kgo.NoCompression()))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for topic, n := range written {
		for part := range int32(n) {
			for i := range 20 * (part + 1) {
				if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Partition: part, Value: fmt.Appendf(nil, "%0500d", i)}).FirstErr(); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	adm := kadm.NewClient(cl)
	topics, err := adm.ListTopics(ctx, "spread", "sized")
	if err != nil || topics.Error() != nil {
		t.Fatal(err, topics.Error())
	}
	dirs := map[int32]string{}
	for _, p := range procs {
		dirs[int32(p.nodeID)] = p.dataDir
	}
	waitFor(t, "every replica listed at its node, at the same size", 20*time.Second, func() bool {
		all, err := adm.DescribeAllLogDirs(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, pd := range topics.Sorted() {
			for _, p := range pd.Partitions.Sorted() {
				var on []int32
				var sizes []int64
				all.Each(func(d kadm.DescribedLogDir) {
					if d.Err != nil || d.Dir != dirs[d.Broker] {
						t.Fatalf("node %d: %q %v, want its data directory %q", d.Broker, d.Dir, d.Err, dirs[d.Broker])
					}
					if dp, ok := d.Topics.Lookup(p.Topic, p.Partition); ok {
						on, sizes = append(on, d.Broker), append(sizes, dp.Size)
					}
				})
				slices.Sort(on)
				if replicas := slices.Sorted(slices.Values(p.Replicas)); !slices.Equal(on, replicas) {
					t.Fatalf("%s/%d is listed by nodes %v, its replicas are %v", p.Topic, p.Partition, on, replicas)
				}
				for _, n := range sizes {
					if n != sizes[0] || n < int64(20*(p.Partition+1)*500) {
						return false // a follower still applying
					}
				}
			}
		}
		return true
	})
}
