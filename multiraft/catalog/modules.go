package catalog

import "github.com/eddy-broker/eddy"

// modules is every module hash a kept version names.
func (st *State) Modules() map[string]bool {
	keep := map[string]bool{}
	for _, t := range st.Transforms {
		for _, v := range t.Versions {
			keep[v.SHA256] = true
		}
	}
	return keep
}

// tenantModuleBytes is what tenant t's kept versions would take on disk
// (each distinct module once) with the transform at key holding versions.
func (st *State) tenantModuleBytes(t eddy.TenantID, key string, versions []*ModuleVersion) int64 {
	seen, n := map[string]bool{}, int64(0)
	add := func(vs []*ModuleVersion) {
		for _, v := range vs {
			if !seen[v.SHA256] {
				seen[v.SHA256] = true
				n += int64(v.Size)
			}
		}
	}
	for k, tm := range st.Transforms {
		if tm.Tenant == t && k != key {
			add(tm.Versions)
		}
	}
	add(versions)
	return n
}
