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
	"github.com/eddy-broker/eddy/multiraft/catalog"
	"github.com/eddy-broker/eddy/tenants"
)

func shaOf(bin string) string {
	sum := sha256.Sum256([]byte(bin))
	return hex.EncodeToString(sum[:])
}

func deployCmd(name string, bin string) *catalog.Cmd {
	return &catalog.Cmd{Op: catalog.OpDeployTransform, Transform: &catalog.TransformMeta{Tenant: eddy.DefaultTenant, Name: name},
		Module: &catalog.ModuleVersion{SHA256: shaOf(bin), Size: len(bin), Binary: []byte(bin)}}
}

// ctrlFixture is a controller state machine holding the default tenant.
func ctrlFixture(t *testing.T) *controllerSM {
	c := &controllerSM{st: catalog.NewState()}
	mustApply(t, c, &catalog.Cmd{Op: catalog.OpCreateTenant, Tenant: &catalog.TenantMeta{Name: eddy.DefaultTenant}})
	return c
}

func mustApply(t *testing.T, c *controllerSM, cmd *catalog.Cmd) catalog.Result {
	t.Helper()
	res := c.st.Apply(cmd)
	if res.Err != nil {
		t.Fatalf("%s: %s %s", cmd.Op, res.Err.Code, res.Err.Message)
	}
	return res
}

// TestControllerSnapshotCarriesTransforms: a snapshot restores the
// transforms' versions.
func TestControllerSnapshotCarriesTransforms(t *testing.T) {
	c := ctrlFixture(t)
	mustApply(t, c, deployCmd("y", "b"))
	mustApply(t, c, deployCmd("y", "c"))
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
	update := func(cmd *catalog.Cmd) {
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
	update(&catalog.Cmd{Op: catalog.OpDeleteTransform, Transform: &catalog.TransformMeta{Tenant: eddy.DefaultTenant, Name: "m"}})
	if ents, _ := os.ReadDir(c.modules.dir); len(ents) != 0 {
		t.Fatalf("%d module files after the delete", len(ents))
	}
	// The quota counts each distinct binary once.
	update(&catalog.Cmd{Op: catalog.OpSetQuotas, Tenant: &catalog.TenantMeta{Name: eddy.DefaultTenant, Quotas: tenants.Quotas{TransformStorageBytes: 7}}})
	update(deployCmd("q", "four"))
	update(deployCmd("q2", "four"))
	if res := c.st.Apply(deployCmd("q", "xyzw")); res.Err == nil || res.Err.Code != eddy.CodeLimitExceeded {
		t.Fatalf("over transform_storage_bytes: %+v", res.Err)
	}
}
