package catalog

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"

	"github.com/eddy-broker/eddy"
	"github.com/eddy-broker/eddy/tenants"
)

func shaOf(bin string) string {
	sum := sha256.Sum256([]byte(bin))
	return hex.EncodeToString(sum[:])
}

func deployCmd(name string, bin string) *Cmd {
	return &Cmd{Op: OpDeployTransform, Transform: &TransformMeta{Tenant: eddy.DefaultTenant, Name: name},
		Module: &ModuleVersion{SHA256: shaOf(bin), Size: len(bin), Binary: []byte(bin)}}
}

func bindCmd(topic string, b *TransformBinding) *Cmd {
	return &Cmd{Op: OpBindTransform, Ref: string(eddy.DefaultTenant) + "/" + topic, Binding: b}
}

func TestControllerTransformVersions(t *testing.T) {
	c := ctrlFixture(t)
	for i := 1; i <= 3; i++ {
		if v := mustApply(t, c, deployCmd("x", string(rune('a'+i)))).Module; v.Version != i || v.Binary != nil {
			t.Fatalf("deploy %d: %+v", i, v)
		}
	}
	// A reader's copy is not changed by later commands (copy on write).
	before := c.Transforms["default/x"]
	mustApply(t, c, bindCmd("t", &TransformBinding{Module: "x", Version: 1, OnError: OnErrorReject}))
	for i := 4; i <= 7; i++ {
		mustApply(t, c, deployCmd("x", string(rune('a'+i))))
	}
	if len(before.Versions) != 3 {
		t.Fatalf("a stored TransformMeta changed under a reader: %d versions", len(before.Versions))
	}
	tm := c.Transforms["default/x"]
	var vs []int
	for _, v := range tm.Versions {
		vs = append(vs, v.Version)
	}
	// Five kept; the pinned version 1 survives, 2 and 3 were dropped.
	if len(vs) != 5 || vs[0] != 1 || vs[1] != 4 || tm.Latest().Version != 7 || tm.Version(1).SHA256 != shaOf("b") || tm.Version(1).Binary != nil {
		t.Fatalf("versions %v", vs)
	}
	applyErr(t, c, &Cmd{Op: OpDeleteTransform, Transform: &TransformMeta{Tenant: eddy.DefaultTenant, Name: "x"}, Version: 1}, eddy.CodeConflict)
	applyErr(t, c, &Cmd{Op: OpDeleteTransform, Transform: &TransformMeta{Tenant: eddy.DefaultTenant, Name: "x"}}, eddy.CodeConflict)
	mustApply(t, c, &Cmd{Op: OpDeleteTransform, Transform: &TransformMeta{Tenant: eddy.DefaultTenant, Name: "x"}, Version: 4})
	// Pinning every kept version but the latest blocks a deploy.
	for _, v := range []int{5, 6} {
		mustApply(t, c, &Cmd{Op: OpCreateTopic, Topic: &TopicMeta{Tenant: eddy.DefaultTenant, Name: eddy.TopicName("p" + string(rune('0'+v))), Partitions: 1, ReplicationFactor: 1}})
		mustApply(t, c, bindCmd("p"+string(rune('0'+v)), &TransformBinding{Module: "x", Version: v, OnError: OnErrorReject}))
	}
	mustApply(t, c, deployCmd("x", "z")) // 1 5 6 7 8
	mustApply(t, c, bindCmd("t", &TransformBinding{Module: "x", Version: 7, OnError: OnErrorReject}))
	mustApply(t, c, &Cmd{Op: OpCreateTopic, Topic: &TopicMeta{Tenant: eddy.DefaultTenant, Name: "q", Partitions: 1, ReplicationFactor: 1}})
	mustApply(t, c, bindCmd("q", &TransformBinding{Module: "x", Version: 1, OnError: OnErrorReject}))
	applyErr(t, c, deployCmd("x", "full"), eddy.CodeLimitExceeded)
}

func TestControllerTransformBindingsAndQuotas(t *testing.T) {
	c := ctrlFixture(t)
	applyErr(t, c, bindCmd("t", &TransformBinding{Module: "x", OnError: OnErrorReject}), eddy.CodeNotFound)
	mustApply(t, c, deployCmd("x", "a"))
	applyErr(t, c, bindCmd("t", &TransformBinding{Module: "x", Version: 2, OnError: OnErrorReject}), eddy.CodeNotFound)
	applyErr(t, c, bindCmd("t", &TransformBinding{Module: "x", OnError: OnErrorDeadLetter, DeadLetterTopic: "nope"}), eddy.CodeNotFound)
	applyErr(t, c, bindCmd("t", &TransformBinding{Module: "x", OnError: OnErrorDeadLetter, DeadLetterTopic: "t"}), eddy.CodeInvalid)
	applyErr(t, c, bindCmd("t", nil), eddy.CodeNotFound)
	mustApply(t, c, &Cmd{Op: OpCreateTopic, Topic: &TopicMeta{Tenant: eddy.DefaultTenant, Name: "dlq", Partitions: 1, ReplicationFactor: 1}})
	res := mustApply(t, c, bindCmd("t", &TransformBinding{Module: "x", OnError: OnErrorDeadLetter, DeadLetterTopic: "dlq"}))
	if res.Topic.Transform == nil || res.Topic.Transform.DeadLetterTopic != "dlq" {
		t.Fatalf("bound %+v", res.Topic)
	}
	applyErr(t, c, &Cmd{Op: OpDeleteTopic, Ref: "default/dlq"}, eddy.CodeConflict)
	mustApply(t, c, bindCmd("t", nil))
	mustApply(t, c, &Cmd{Op: OpDeleteTopic, Ref: "default/dlq"})

	mustApply(t, c, &Cmd{Op: OpSetQuotas, Tenant: &TenantMeta{Name: eddy.DefaultTenant, Quotas: tenants.Quotas{MaxTransforms: 2}}})
	mustApply(t, c, deployCmd("y", "b"))
	mustApply(t, c, deployCmd("y", "c"))
	applyErr(t, c, deployCmd("z", "d"), eddy.CodeLimitExceeded)

	mustApply(t, c, &Cmd{Op: OpCreateTenant, Tenant: &TenantMeta{Name: "acme"}})
	mustApply(t, c, &Cmd{Op: OpDeployTransform, Transform: &TransformMeta{Tenant: "acme", Name: "y"}, Module: &ModuleVersion{SHA256: "s", Size: 1, Binary: []byte("e")}})
	mustApply(t, c, &Cmd{Op: OpDeleteTenant, Ref: "acme", Force: true})
	if _, ok := c.Transforms["acme/y"]; ok || c.Transforms["default/y"] == nil {
		t.Fatal("tenant delete: wrong transforms removed")
	}
}

// TestControllerSizeReports: leaders' size reports are kept for live
// partitions only, and go with their topic.
func TestControllerSizeReports(t *testing.T) {
	c := ctrlFixture(t)
	res := mustApply(t, c, &Cmd{Op: OpCreateTopic, Topic: &TopicMeta{Tenant: eddy.DefaultTenant, Name: "s", Partitions: 2, ReplicationFactor: 1}})
	a, b := res.Topic.Shards[0], res.Topic.Shards[1]
	mustApply(t, c, &Cmd{Op: OpReportSizes, Sizes: map[uint64]int64{a: 100, 99999: 5, b: -1}})
	if len(c.Sizes) != 1 || c.Sizes[a] != 100 {
		t.Fatalf("sizes %v", c.Sizes)
	}
	mustApply(t, c, &Cmd{Op: OpReportSizes, Sizes: map[uint64]int64{a: 50, b: 7}})
	if c.Sizes[a] != 50 || c.Sizes[b] != 7 {
		t.Fatalf("sizes %v", c.Sizes)
	}
	mustApply(t, c, &Cmd{Op: OpDeleteTopic, Ref: "default/s"})
	if len(c.Sizes) != 0 {
		t.Fatalf("sizes of a deleted topic kept: %v", c.Sizes)
	}
}
