package kafka

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/eddy-broker/eddy"
	"github.com/eddy-broker/eddy/multiraft/catalog"
	"github.com/eddy-broker/eddy/tenants"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestDescribeLogDirsRequest: DescribeLogDirs lists the node's replicas
// of the tenant's topics the token may describe, each with the bytes it
// retains, in the node's data directory; the partitions asked for alone
// when some are; another tenant's never; the volume's size and free
// space to an operator's token only.
func TestDescribeLogDirsRequest(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ref := eddy.TopicRef{Tenant: eddy.DefaultTenant, Name: "t"}
	for range 10 {
		if _, err := e.h.Produce(ctx, ref, []eddy.Record{{Value: make([]byte, 1000)}}, []eddy.Partition{0}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.h.CreateTenant(ctx, "acme", tenants.Quotas{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.h.CreateTopic(ctx, "acme", catalog.TopicSpec{Name: "secret", Partitions: 1, ReplicationFactor: 1}); err != nil {
		t.Fatal(err)
	}
	ask := func(c *client, version int16, topics map[string][]int32) kmsg.DescribeLogDirsResponseDir {
		t.Helper()
		req := kmsg.NewPtrDescribeLogDirsRequest()
		req.Version = version
		for topic, ps := range topics {
			req.Topics = append(req.Topics, kmsg.DescribeLogDirsRequestTopic{Topic: topic, Partitions: ps})
		}
		r := c.do(req).(*kmsg.DescribeLogDirsResponse)
		if r.ErrorCode != 0 || len(r.Dirs) != 1 || r.Dirs[0].ErrorCode != 0 {
			t.Fatalf("v%d: %+v", version, r)
		}
		return r.Dirs[0]
	}
	operator := e.login("default", e.token)
	d := ask(operator, 4, nil)
	if !filepath.IsAbs(d.Dir) || d.TotalBytes <= 0 || d.UsableBytes <= 0 || d.UsableBytes > d.TotalBytes {
		t.Fatalf("the directory and its volume: %q %d %d", d.Dir, d.TotalBytes, d.UsableBytes)
	}
	if len(d.Topics) != 1 || d.Topics[0].Topic != "t" || len(d.Topics[0].Partitions) != 2 {
		t.Fatalf("an operator's token of the default tenant: %+v", d.Topics)
	}
	p0, p1 := d.Topics[0].Partitions[0], d.Topics[0].Partitions[1]
	if p0.Partition != 0 || p0.Size < 10_000 || p1.Partition != 1 || p1.Size != 0 {
		t.Fatalf("the partitions' sizes: %+v %+v", p0, p1)
	}
	if d := ask(operator, 1, map[string][]int32{"t": {1}, "secret": {0}}); len(d.Topics) != 1 || len(d.Topics[0].Partitions) != 1 || d.Topics[0].Partitions[0].Partition != 1 {
		t.Fatalf("partition 1 of t asked for: %+v", d.Topics)
	}
	if _, err := e.h.CreateTopic(ctx, eddy.DefaultTenant, catalog.TopicSpec{Name: "u", Partitions: 1, ReplicationFactor: 1}); err != nil {
		t.Fatal(err)
	}
	tenant := e.login("default", e.mint("default", "consume:u"))
	if d := ask(tenant, 4, nil); d.TotalBytes != -1 || d.UsableBytes != -1 || len(d.Topics) != 1 || d.Topics[0].Topic != "u" {
		t.Fatalf("a token that may describe u alone: %+v", d)
	}
}
