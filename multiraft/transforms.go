package multiraft

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"sort"
	"time"

	"github.com/eddy-broker/eddy/multiraft/catalog"

	"github.com/eddy-broker/eddy"
)

// DeployTransform stores a new version of a tenant's transform. The caller
// has validated the binary (the node compiles it before it asks).
func (h *Host) DeployTransform(ctx context.Context, tenant eddy.TenantID, name string, bin []byte) (*catalog.ModuleVersion, error) {
	if err := catalog.ValidateTransformName(name); err != nil {
		return nil, err
	}
	if err := h.storageFull("a module", uint64(len(bin))); err != nil {
		return nil, err
	}
	sum := sha256.Sum256(bin)
	now := time.Now().UnixMilli()
	res, err := h.tenantPropose(ctx, tenant, &catalog.Cmd{Op: catalog.OpDeployTransform,
		Transform: &catalog.TransformMeta{Tenant: tenant, Name: name},
		Module:    &catalog.ModuleVersion{SHA256: hex.EncodeToString(sum[:]), Size: len(bin), CreatedMs: now, Binary: bin}})
	if err != nil {
		return nil, err
	}
	return res.Module, nil
}

// DeleteTransform deletes one version (or, with version 0, the whole
// transform); refused while a topic uses it.
func (h *Host) DeleteTransform(ctx context.Context, tenant eddy.TenantID, name string, version int) error {
	_, err := h.tenantPropose(ctx, tenant, &catalog.Cmd{Op: catalog.OpDeleteTransform, Transform: &catalog.TransformMeta{Tenant: tenant, Name: name}, Version: version})
	return err
}

// Transforms lists a tenant's transforms (without binaries), by name.
func (h *Host) Transforms(tenant eddy.TenantID) []*catalog.TransformMeta {
	var out []*catalog.TransformMeta
	h.ctrl.view(func(st *catalog.State) {
		for _, t := range st.Transforms {
			if t.Tenant == tenant {
				out = append(out, t.WithoutBinaries())
			}
		}
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Transform describes one transform (without binaries), or CodeNotFound.
func (h *Host) Transform(tenant eddy.TenantID, name string) (*catalog.TransformMeta, error) {
	var out *catalog.TransformMeta
	h.ctrl.view(func(st *catalog.State) {
		if t, ok := st.Transforms[catalog.TransformKey(tenant, name)]; ok {
			out = t.WithoutBinaries()
		}
	})
	if out == nil {
		return nil, eddy.Errorf(eddy.CodeNotFound, "transform %s does not exist", name)
	}
	return out, nil
}

// ModuleBinary reads a module from this node's module store.
func (h *Host) ModuleBinary(sha string) ([]byte, error) { return h.ctrl.modules.get(sha) }

// TransformModule returns a version (0: the latest), without its binary
// (ModuleBinary reads it).
func (h *Host) TransformModule(tenant eddy.TenantID, name string, version int) (*catalog.ModuleVersion, error) {
	var out *catalog.ModuleVersion
	found := false
	h.ctrl.view(func(st *catalog.State) {
		if t, ok := st.Transforms[catalog.TransformKey(tenant, name)]; ok {
			found = true
			out = t.Version(version)
		}
	})
	switch {
	case !found:
		return nil, eddy.Errorf(eddy.CodeNotFound, "transform %s does not exist", name)
	case out == nil:
		return nil, eddy.Errorf(eddy.CodeNotFound, "transform %s has no version %d", name, version)
	}
	return out, nil
}

// SetTopicTransform attaches (b != nil) or detaches (nil) a topic's
// transform.
func (h *Host) SetTopicTransform(ctx context.Context, ref eddy.TopicRef, b *catalog.TransformBinding) (*catalog.TopicMeta, error) {
	if b != nil {
		if err := b.Validate(); err != nil {
			return nil, err
		}
		b.UpdatedMs = time.Now().UnixMilli()
	}
	res, err := h.tenantPropose(ctx, ref.Tenant, &catalog.Cmd{Op: catalog.OpBindTransform, Ref: ref.String(), Binding: b})
	if err != nil {
		return nil, err
	}
	return res.Topic, nil
}
