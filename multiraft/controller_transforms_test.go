package multiraft

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	sm "github.com/lni/dragonboat/v4/statemachine"

	"github.com/eddy-broker/eddy"
	"github.com/eddy-broker/eddy/tenants"
)

func shaOf(bin string) string {
	sum := sha256.Sum256([]byte(bin))
	return hex.EncodeToString(sum[:])
}

func deployCmd(name string, bin string) *ctrlCmd {
	return &ctrlCmd{Op: opDeployTransform, Transform: &TransformMeta{Tenant: eddy.DefaultTenant, Name: name},
		Module: &ModuleVersion{SHA256: shaOf(bin), Size: len(bin), Binary: []byte(bin)}}
}

func bindCmd(topic string, b *TransformBinding) *ctrlCmd {
	return &ctrlCmd{Op: opBindTransform, Ref: string(eddy.DefaultTenant) + "/" + topic, Binding: b}
}

func TestControllerTransformVersions(t *testing.T) {
	c := ctrlFixture(t)
	for i := 1; i <= 3; i++ {
		if v := mustApply(t, c, deployCmd("x", string(rune('a'+i)))).Module; v.Version != i || v.Binary != nil {
			t.Fatalf("deploy %d: %+v", i, v)
		}
	}
	// A reader's copy is not changed by later commands (copy on write).
	before := c.st.Transforms["default/x"]
	mustApply(t, c, bindCmd("t", &TransformBinding{Module: "x", Version: 1, OnError: OnErrorReject}))
	for i := 4; i <= 7; i++ {
		mustApply(t, c, deployCmd("x", string(rune('a'+i))))
	}
	if len(before.Versions) != 3 {
		t.Fatalf("a stored TransformMeta changed under a reader: %d versions", len(before.Versions))
	}
	tm := c.st.Transforms["default/x"]
	var vs []int
	for _, v := range tm.Versions {
		vs = append(vs, v.Version)
	}
	// Five kept; the pinned version 1 survives, 2 and 3 were dropped.
	if len(vs) != 5 || vs[0] != 1 || vs[1] != 4 || tm.Latest().Version != 7 || tm.Version(1).SHA256 != shaOf("b") || tm.Version(1).Binary != nil {
		t.Fatalf("versions %v", vs)
	}
	applyErr(t, c, &ctrlCmd{Op: opDeleteTransform, Transform: &TransformMeta{Tenant: eddy.DefaultTenant, Name: "x"}, Version: 1}, eddy.CodeConflict)
	applyErr(t, c, &ctrlCmd{Op: opDeleteTransform, Transform: &TransformMeta{Tenant: eddy.DefaultTenant, Name: "x"}}, eddy.CodeConflict)
	mustApply(t, c, &ctrlCmd{Op: opDeleteTransform, Transform: &TransformMeta{Tenant: eddy.DefaultTenant, Name: "x"}, Version: 4})
	// Pinning every kept version but the latest blocks a deploy.
	for _, v := range []int{5, 6} {
		mustApply(t, c, &ctrlCmd{Op: opCreateTopic, Topic: &TopicMeta{Tenant: eddy.DefaultTenant, Name: eddy.TopicName("p" + string(rune('0'+v))), Partitions: 1, ReplicationFactor: 1}})
		mustApply(t, c, bindCmd("p"+string(rune('0'+v)), &TransformBinding{Module: "x", Version: v, OnError: OnErrorReject}))
	}
	mustApply(t, c, deployCmd("x", "z")) // 1 5 6 7 8
	mustApply(t, c, bindCmd("t", &TransformBinding{Module: "x", Version: 7, OnError: OnErrorReject}))
	mustApply(t, c, &ctrlCmd{Op: opCreateTopic, Topic: &TopicMeta{Tenant: eddy.DefaultTenant, Name: "q", Partitions: 1, ReplicationFactor: 1}})
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
	mustApply(t, c, &ctrlCmd{Op: opCreateTopic, Topic: &TopicMeta{Tenant: eddy.DefaultTenant, Name: "dlq", Partitions: 1, ReplicationFactor: 1}})
	res := mustApply(t, c, bindCmd("t", &TransformBinding{Module: "x", OnError: OnErrorDeadLetter, DeadLetterTopic: "dlq"}))
	if res.Topic.Transform == nil || res.Topic.Transform.DeadLetterTopic != "dlq" {
		t.Fatalf("bound %+v", res.Topic)
	}
	applyErr(t, c, &ctrlCmd{Op: opDeleteTopic, Ref: "default/dlq"}, eddy.CodeConflict)
	mustApply(t, c, bindCmd("t", nil))
	mustApply(t, c, &ctrlCmd{Op: opDeleteTopic, Ref: "default/dlq"})

	mustApply(t, c, &ctrlCmd{Op: opSetQuotas, Tenant: &TenantMeta{Name: eddy.DefaultTenant, Quotas: tenants.Quotas{MaxTransforms: 2}}})
	mustApply(t, c, deployCmd("y", "b"))
	mustApply(t, c, deployCmd("y", "c"))
	applyErr(t, c, deployCmd("z", "d"), eddy.CodeLimitExceeded)

	// A snapshot carries the modules; a force-deleted tenant takes them along.
	var buf bytes.Buffer
	if err := c.SaveSnapshot(&buf, nil, nil); err != nil {
		t.Fatal(err)
	}
	r := &controllerSM{}
	if err := r.RecoverFromSnapshot(&buf, nil, nil); err != nil {
		t.Fatal(err)
	}
	if tm := r.st.Transforms["default/y"]; tm == nil || len(tm.Versions) != 2 || tm.Latest().SHA256 != shaOf("c") {
		t.Fatalf("recovered %+v", tm)
	}
	mustApply(t, c, &ctrlCmd{Op: opCreateTenant, Tenant: &TenantMeta{Name: "acme"}})
	mustApply(t, c, &ctrlCmd{Op: opDeployTransform, Transform: &TransformMeta{Tenant: "acme", Name: "y"}, Module: &ModuleVersion{SHA256: "s", Size: 1, Binary: []byte("e")}})
	mustApply(t, c, &ctrlCmd{Op: opDeleteTenant, Ref: "acme", Force: true})
	if _, ok := c.st.Transforms["acme/y"]; ok || c.st.Transforms["default/y"] == nil {
		t.Fatal("tenant delete: wrong transforms removed")
	}
}

// TestControllerSizeReports: leaders' size reports are kept for live
// partitions only, and go with their topic.
func TestControllerSizeReports(t *testing.T) {
	c := ctrlFixture(t)
	res := mustApply(t, c, &ctrlCmd{Op: opCreateTopic, Topic: &TopicMeta{Tenant: eddy.DefaultTenant, Name: "s", Partitions: 2, ReplicationFactor: 1}})
	a, b := res.Topic.Shards[0], res.Topic.Shards[1]
	mustApply(t, c, &ctrlCmd{Op: opReportSizes, Sizes: map[uint64]int64{a: 100, 99999: 5, b: -1}})
	if len(c.st.Sizes) != 1 || c.st.Sizes[a] != 100 {
		t.Fatalf("sizes %v", c.st.Sizes)
	}
	mustApply(t, c, &ctrlCmd{Op: opReportSizes, Sizes: map[uint64]int64{a: 50, b: 7}})
	if c.st.Sizes[a] != 50 || c.st.Sizes[b] != 7 {
		t.Fatalf("sizes %v", c.st.Sizes)
	}
	mustApply(t, c, &ctrlCmd{Op: opDeleteTopic, Ref: "default/s"})
	if len(c.st.Sizes) != 0 {
		t.Fatalf("sizes of a deleted topic kept: %v", c.st.Sizes)
	}
}

// snapFiles is a snapshot's external files, as dragonboat collects them.
type snapFiles []sm.SnapshotFile

func (f *snapFiles) AddFile(id uint64, path string, meta []byte) {
	*f = append(*f, sm.SnapshotFile{FileID: id, Filepath: path, Metadata: meta})
}

// TestControllerModuleStore: binaries live in the module store, not in the
// state; a snapshot carries them as files to a node that has none; a
// snapshot of the old layout (binaries inline) is moved into the store;
// files no kept version names are removed; a tenant's stored modules are
// bounded by its transform_storage_bytes quota.
func TestControllerModuleStore(t *testing.T) {
	c := ctrlFixture(t)
	c.modules = &moduleStore{dir: t.TempDir()}
	update := func(cmd *ctrlCmd) {
		t.Helper()
		b, _ := json.Marshal(cmd)
		res, err := c.Update(sm.Entry{Cmd: b})
		if err != nil || bytes.Contains(res.Data, []byte(`"err"`)) {
			t.Fatalf("%s: %v %s", cmd.Op, err, res.Data)
		}
	}
	update(deployCmd("m", "one"))
	update(deployCmd("m", "two"))
	if bin, err := c.modules.get(shaOf("two")); err != nil || string(bin) != "two" {
		t.Fatalf("stored: %q %v", bin, err)
	}
	for _, v := range c.st.Transforms["default/m"].Versions {
		if v.Binary != nil {
			t.Fatal("a binary in the controller state")
		}
	}
	var files snapFiles
	var buf bytes.Buffer
	if err := c.SaveSnapshot(&buf, &files, nil); err != nil {
		t.Fatal(err)
	}
	if len(files) != 2 || bytes.Contains(buf.Bytes(), []byte("binary")) {
		t.Fatalf("snapshot: %d files, %d bytes of JSON", len(files), buf.Len())
	}
	other := &controllerSM{modules: &moduleStore{dir: t.TempDir()}}
	if err := other.RecoverFromSnapshot(&buf, files, nil); err != nil {
		t.Fatal(err)
	}
	if bin, err := other.modules.get(shaOf("one")); err != nil || string(bin) != "one" {
		t.Fatalf("a new node's store after the snapshot: %q %v", bin, err)
	}
	// The old layout: binaries inside the JSON.
	old := []byte(`{"nodes":{},"topics":{},"tenants":{},"keys":{},"next_shard":1000,"transforms":{"default/o":{"tenant":"default","name":"o","versions":[{"version":1,"sha256":"` +
		shaOf("old") + `","size":3,"binary":"b2xk"}],"next_version":2}}}`)
	if err := other.RecoverFromSnapshot(bytes.NewReader(old), nil, nil); err != nil {
		t.Fatal(err)
	}
	if bin, err := other.modules.get(shaOf("old")); err != nil || string(bin) != "old" || other.st.Transforms["default/o"].Versions[0].Binary != nil {
		t.Fatalf("old snapshot: %q %v", bin, err)
	}
	if _, err := os.Stat(filepath.Join(other.modules.dir, shaOf("one")+".wasm")); !os.IsNotExist(err) {
		t.Fatal("a module no kept version names is still on disk")
	}
	// Deleting the transform removes its files.
	update(&ctrlCmd{Op: opDeleteTransform, Transform: &TransformMeta{Tenant: eddy.DefaultTenant, Name: "m"}})
	if ents, _ := os.ReadDir(c.modules.dir); len(ents) != 0 {
		t.Fatalf("%d module files after the delete", len(ents))
	}
	// The quota counts each distinct binary once.
	update(&ctrlCmd{Op: opSetQuotas, Tenant: &TenantMeta{Name: eddy.DefaultTenant, Quotas: tenants.Quotas{TransformStorageBytes: 7}}})
	update(deployCmd("q", "four"))
	update(deployCmd("q2", "four"))
	if res := c.apply(deployCmd("q", "xyzw")); res.Err == nil || res.Err.Code != eddy.CodeLimitExceeded {
		t.Fatalf("over transform_storage_bytes: %+v", res.Err)
	}
}
