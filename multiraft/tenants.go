package multiraft

import (
	"cmp"
	"context"
	"maps"
	"slices"
	"sort"
	"time"

	"github.com/eddy-broker/eddy/internal/logkey"

	"github.com/eddy-broker/eddy/multiraft/catalog"

	"github.com/eddy-broker/eddy"
	"github.com/eddy-broker/eddy/tenants"
)

// CreateTenant creates a tenant with its quotas.
func (h *Host) CreateTenant(ctx context.Context, name eddy.TenantID, q tenants.Quotas) (*catalog.TenantMeta, error) {
	if err := h.storageFull("a tenant", 0); err != nil {
		return nil, err
	}
	return h.createTenant(ctx, name, q)
}

// createTenant creates a tenant without the free-space check: the node's
// own default tenant at its first start, which must start on a nearly full
// disk too (and then refuse writes).
func (h *Host) createTenant(ctx context.Context, name eddy.TenantID, q tenants.Quotas) (*catalog.TenantMeta, error) {
	if err := name.Validate(); err != nil {
		return nil, err
	}
	if err := q.Validate(); err != nil {
		return nil, err
	}
	res, err := h.ctrlPropose(ctx, &catalog.Cmd{Op: catalog.OpCreateTenant, Tenant: &catalog.TenantMeta{Name: name, Quotas: q, CreatedMs: time.Now().UnixMilli()}})
	if err != nil {
		return nil, err
	}
	return res.Tenant, nil
}

// SetQuotas replaces a tenant's quotas.
func (h *Host) SetQuotas(ctx context.Context, name eddy.TenantID, q tenants.Quotas) (*catalog.TenantMeta, error) {
	if err := q.Validate(); err != nil {
		return nil, err
	}
	res, err := h.ctrlPropose(ctx, &catalog.Cmd{Op: catalog.OpSetQuotas, Tenant: &catalog.TenantMeta{Name: name, Quotas: q}})
	if err != nil {
		return nil, err
	}
	return res.Tenant, nil
}

// DeleteTenant deletes a tenant; with force, its topics and keys too.
func (h *Host) DeleteTenant(ctx context.Context, name eddy.TenantID, force bool) error {
	_, err := h.ctrlPropose(ctx, &catalog.Cmd{Op: catalog.OpDeleteTenant, Ref: string(name), Force: force})
	h.kickReconcile()
	return err
}

// Tenant returns a tenant, or CodeNotFound.
func (h *Host) Tenant(name eddy.TenantID) (*catalog.TenantMeta, error) {
	var t *catalog.TenantMeta
	h.ctrl.view(func(st *catalog.State) {
		if m, ok := st.Tenants[name]; ok {
			c := *m
			t = &c
		}
	})
	if t == nil {
		return nil, eddy.Errorf(eddy.CodeNotFound, "tenant %s does not exist", name)
	}
	return t, nil
}

// Tenants lists every tenant by name.
func (h *Host) Tenants() []*catalog.TenantMeta {
	var out []*catalog.TenantMeta
	h.ctrl.view(func(st *catalog.State) {
		for _, m := range st.Tenants {
			c := *m
			out = append(out, &c)
		}
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// TenantUsage is what a tenant uses now, as this node sees it.
type TenantUsage struct {
	Topics       int64 `json:"topics"`
	Partitions   int64 `json:"partitions"`
	StorageBytes int64 `json:"storage_bytes"`
	Keys         int64 `json:"keys"`
}

// Usage counts a tenant's topics, partitions and keys (from the
// controller) and its retained bytes (StorageUsed).
func (h *Host) Usage(name eddy.TenantID) TenantUsage {
	var u TenantUsage
	h.ctrl.view(func(st *catalog.State) {
		u.Topics, u.Partitions = st.TenantCounts(name)
		for _, k := range st.Keys {
			if k.Tenant == name {
				u.Keys++
			}
		}
	})
	u.StorageBytes = h.StorageUsed(name)
	return u
}

// StorageUsed is a tenant's retained bytes, one replica of each partition:
// the controller's sum of what the partitions' leaders last reported
// (reportSizes, every few seconds), corrected by this node's own replicas,
// whose size it knows now (liveReplicas).
func (h *Host) StorageUsed(name eddy.TenantID) int64 {
	var n int64
	h.liveReplicas(name, func(st *catalog.State, live []localReplica) {
		n = st.TenantBytes(name)
		for _, r := range live {
			n += r.Bytes - st.Sizes[r.shard]
		}
	})
	return n
}

// ReplicaSize is what a replica of a partition retains on this node.
type ReplicaSize struct {
	Topic     eddy.TopicName
	Partition eddy.Partition
	Bytes     int64
}

// LocalReplicas lists the replicas this node holds of the tenant's
// partitions, with the bytes each retains (Kafka's DescribeLogDirs), by
// topic and partition.
func (h *Host) LocalReplicas(name eddy.TenantID) []ReplicaSize {
	var out []ReplicaSize
	h.liveReplicas(name, func(_ *catalog.State, live []localReplica) {
		out = make([]ReplicaSize, len(live))
		for i, r := range live {
			out[i] = r.ReplicaSize
		}
	})
	slices.SortFunc(out, func(a, b ReplicaSize) int {
		return cmp.Or(cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
	})
	return out
}

// localReplica is a replica of a tenant's partition on this node.
type localReplica struct {
	ReplicaSize
	shard uint64
	key   string // its topic's key in the catalog
}

// liveReplicas hands fn, under the catalog's view, the tenant's replicas
// on this node with the bytes each retains, but those of a deleted topic
// still stopping. It walks only the tenant's replicas, so a produce
// checking a storage quota costs the same however large the catalog.
func (h *Host) liveReplicas(name eddy.TenantID, fn func(st *catalog.State, live []localReplica)) {
	h.mu.RLock()
	local := make([]localReplica, 0, len(h.byTenant[name]))
	for shard, lp := range h.byTenant[name] {
		if lg, err := lp.sm.log(); err == nil {
			local = append(local, localReplica{ReplicaSize{lp.ref.Name, lp.partition, lg.Size()}, shard, lp.ref.String()})
		}
	}
	h.mu.RUnlock()
	h.ctrl.view(func(st *catalog.State) {
		live := local[:0]
		for _, r := range local {
			if _, ok := st.Topics[r.key]; ok {
				live = append(live, r)
			}
		}
		fn(st, live)
	})
}

// reportSizes tells the controller the retained bytes of the partitions
// this node leads, where they changed by 64 KiB or 1% since the last
// report (one controller entry for all of them, none when idle).
func (h *Host) reportSizes() {
	parts := h.localPartitions()
	var known map[uint64]int64
	h.ctrl.view(func(st *catalog.State) { known = maps.Clone(st.Sizes) })
	sizes := map[uint64]int64{}
	for _, lp := range parts {
		if id, _, ok, _ := h.nh.GetLeaderID(lp.shardID); !ok || id != lp.replicaID {
			continue
		}
		lg, err := lp.sm.log()
		if err != nil {
			continue
		}
		n := lg.Size()
		last, ok := known[lp.shardID]
		if d := n - last; !ok || d >= 64<<10 || -d >= 64<<10 || d*100 > last || -d*100 > last {
			sizes[lp.shardID] = n
		}
	}
	if len(sizes) == 0 {
		return
	}
	if _, err := h.ctrlPropose(context.Background(), &catalog.Cmd{Op: catalog.OpReportSizes, Sizes: sizes}); err != nil {
		h.log.Debug("size report failed", logkey.Err, err)
	}
}

// AddKey registers a tenant's public key.
func (h *Host) AddKey(ctx context.Context, k *tenants.Key) error {
	if _, err := tenants.ParseKey(k.ID, k.Tenant, k.Alg, k.PEM); err != nil {
		return err
	}
	_, err := h.tenantPropose(ctx, k.Tenant, &catalog.Cmd{Op: catalog.OpAddKey, Key: k})
	return err
}

// RemoveKey revokes a tenant's key: tokens it signed stop verifying at once.
func (h *Host) RemoveKey(ctx context.Context, tenant eddy.TenantID, kid string) error {
	_, err := h.tenantPropose(ctx, tenant, &catalog.Cmd{Op: catalog.OpRemoveKey, Ref: kid, Tenant: &catalog.TenantMeta{Name: tenant}})
	return err
}

// Keys lists a tenant's keys.
func (h *Host) Keys(tenant eddy.TenantID) []tenants.Key {
	var out []tenants.Key
	h.ctrl.view(func(st *catalog.State) {
		for _, k := range st.Keys {
			if k.Tenant == tenant {
				out = append(out, tenants.Key{ID: k.ID, Tenant: k.Tenant, Alg: k.Alg, PEM: k.PEM})
			}
		}
	})
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Key finds a verification key: the operator's (tenant empty) or a
// tenant's, by kid. Parsed keys are cached by tenant and kid; a removed or
// replaced key is never served.
func (h *Host) Key(tenant eddy.TenantID, kid string) (*tenants.Key, bool) {
	if tenant == "" {
		if op, ok := h.operatorPublic.Load().(*tenants.Key); ok && op.ID == kid {
			return op, true
		}
		return nil, false
	}
	var pemText, alg string
	found := false
	ref := catalog.KeyRef(tenant, kid)
	h.ctrl.view(func(st *catalog.State) {
		if k, ok := st.Keys[ref]; ok {
			pemText, alg, found = k.PEM, k.Alg, true
		}
	})
	if !found {
		return nil, false
	}
	if c, ok := h.keyCache.Load(ref); ok {
		if k := c.(*tenants.Key); k.PEM == pemText && k.Alg == alg && k.Tenant == tenant {
			return k, true
		}
	}
	k, err := tenants.ParseKey(kid, tenant, alg, pemText)
	if err != nil {
		return nil, false
	}
	h.keyCache.Store(ref, k)
	return k, true
}

// Incarnation returns tenant t's incarnation (see TenantMeta).
func (h *Host) Incarnation(t eddy.TenantID) (inc tenants.Incarnation, ok bool) {
	h.ctrl.view(func(st *catalog.State) {
		if m, found := st.Tenants[t]; found {
			inc, ok = tenants.Incarnation{Number: m.Incarnation, CreatedMs: m.CreatedMs}, true
		}
	})
	return inc, ok
}

// EnsureOperatorKey records the operator key in the controller unless one
// is there already, and returns the cluster's (the first node's wins).
func (h *Host) EnsureOperatorKey(ctx context.Context, proposed *catalog.OperatorKey) (*catalog.OperatorKey, error) {
	var cur *catalog.OperatorKey
	h.ctrl.view(func(st *catalog.State) {
		if st.Operator != nil {
			c := *st.Operator
			cur = &c
		}
	})
	if cur == nil {
		res, err := h.ctrlPropose(ctx, &catalog.Cmd{Op: catalog.OpSetOperator, Operator: proposed})
		if err != nil {
			return nil, err
		}
		cur = res.Operator
	}
	return cur, nil
}

// SetOperatorPublic installs the operator's verification key.
func (h *Host) SetOperatorPublic(k *tenants.Key) { h.operatorPublic.Store(k) }

// SetMQTTMapping replaces a tenant's MQTT topic mapping (nil: the default).
func (h *Host) SetMQTTMapping(ctx context.Context, name eddy.TenantID, m *tenants.MQTTMapping) (*catalog.TenantMeta, error) {
	if m != nil {
		if err := m.Validate(); err != nil {
			return nil, err
		}
	}
	res, err := h.tenantPropose(ctx, name, &catalog.Cmd{Op: catalog.OpSetMQTT, Ref: string(name), MQTT: m})
	if err != nil {
		return nil, err
	}
	return res.Tenant, nil
}
