package node

import (
	"fmt"
	"reflect"
	"strings"
)

// Reload applies what may change while the node runs (SIGHUP): the log
// level, the quotas of tenants created from now on (tenant_defaults), the
// MQTT bridges (by name: added, removed, changed), raft_tls_permissive, and the TLS
// certificates and CAs, read again from their files (node/tls.go). It returns what it reloaded
// and the settings that changed but take a restart. A certificate that fails to load keeps the old one and
// is an error.
func (n *Node) Reload(next Config) (reloaded, needRestart []string, err error) {
	if next.LogLevel != n.given.LogLevel {
		lvl, perr := parseLevel(next.LogLevel)
		if perr != nil {
			return nil, nil, perr
		}
		logLevel.Set(lvl)
		reloaded = append(reloaded, "log_level="+next.LogLevel)
		n.given.LogLevel = next.LogLevel
	}
	if !reflect.DeepEqual(next.TenantDefaults, n.given.TenantDefaults) {
		if err := next.TenantDefaults.Validate(); err != nil {
			return nil, nil, err
		}
		n.http.SetDefaultQuotas(next.TenantDefaults)
		n.given.TenantDefaults = next.TenantDefaults
		reloaded = append(reloaded, "tenant_defaults")
	}
	var errs []string
	if !reflect.DeepEqual(next.MQTTBridges, n.given.MQTTBridges) {
		if err := next.validateBridges(); err != nil {
			return nil, nil, err
		}
		did, err := n.bridges.reload(next.MQTTBridges)
		if err != nil {
			errs = append(errs, err.Error()+" (the bridges stay as they were)")
		} else {
			reloaded = append(reloaded, did...)
			n.given.MQTTBridges = next.MQTTBridges
		}
	}
	// raft_tls_permissive turns on or off in place on a node that has
	// Raft TLS (taking it on or off takes a restart).
	permissiveReloads := n.cfg.RaftTLSCert != "" && next.RaftTLSCert != ""
	if next.RaftTLSPermissive != n.given.RaftTLSPermissive && permissiveReloads {
		n.host.SetPeerTLSPermissive(next.RaftTLSPermissive)
		n.given.RaftTLSPermissive = next.RaftTLSPermissive
		reloaded = append(reloaded, fmt.Sprintf("raft_tls_permissive=%v", next.RaftTLSPermissive))
	}
	for _, f := range n.tlsFiles {
		if err := f.load(); err != nil {
			errs = append(errs, err.Error()+" (what was loaded stays)")
			continue
		}
		reloaded = append(reloaded, f.name())
	}
	// The rest is compared field by field: what differs takes a restart.
	cur, nv := reflect.ValueOf(n.given), reflect.ValueOf(next)
	for i := range cur.NumField() {
		f := cur.Type().Field(i)
		if !f.IsExported() || f.Name == "LogLevel" || f.Name == "TenantDefaults" || f.Name == "MQTTBridges" || (f.Name == "RaftTLSPermissive" && permissiveReloads) {
			continue
		}
		if !reflect.DeepEqual(cur.Field(i).Interface(), nv.Field(i).Interface()) {
			name := strings.Split(f.Tag.Get("yaml"), ",")[0]
			if name == "" {
				name = f.Name
			}
			needRestart = append(needRestart, name)
		}
	}
	if len(errs) > 0 {
		err = fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return reloaded, needRestart, err
}
