package catalog

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/eddy-broker/eddy"
)

// Transform modules live in the controller: their metadata in its state,
// their binaries in each node's module store (modules.go), replicated by
// its log and its snapshots; a binding in a topic's metadata names the
// module a produce runs.

// MaxTransformVersions is how many versions of one transform the
// controller keeps. Deploying another drops the oldest version no topic
// pins; when every kept version is pinned, the deploy is refused.
const MaxTransformVersions = 5

// MaxTransformsDefault bounds a tenant's transforms when its quota says
// unlimited: every node holds every kept version in memory.
const MaxTransformsDefault = 64

// TransformMeta is a tenant's transform: a name and its kept versions.
type TransformMeta struct {
	Tenant      eddy.TenantID    `json:"tenant"`
	Name        string           `json:"name"`
	Versions    []*ModuleVersion `json:"versions"` // ascending
	NextVersion int              `json:"next_version"`
	CreatedMs   int64            `json:"created_ms"`
}

// ModuleVersion is one deployed binary of a transform.
type ModuleVersion struct {
	Version   int    `json:"version"`
	SHA256    string `json:"sha256"`
	Size      int    `json:"size"`
	CreatedMs int64  `json:"created_ms"`
	// Binary is the module, only in the deploy command: the controller
	// keeps it in the module store, by SHA256 (see moduleStore).
	Binary []byte `json:"binary,omitempty"`
}

// Latest is the newest kept version.
func (t *TransformMeta) Latest() *ModuleVersion {
	if len(t.Versions) == 0 {
		return nil
	}
	return t.Versions[len(t.Versions)-1]
}

// Version finds a kept version; 0 means the latest.
func (t *TransformMeta) Version(v int) *ModuleVersion {
	if v == 0 {
		return t.Latest()
	}
	for _, mv := range t.Versions {
		if mv.Version == v {
			return mv
		}
	}
	return nil
}

// withoutBinaries copies the metadata, leaving the binaries out.
func (t *TransformMeta) WithoutBinaries() *TransformMeta {
	c := *t
	c.Versions = make([]*ModuleVersion, len(t.Versions))
	for i, v := range t.Versions {
		vc := *v
		vc.Binary = nil
		c.Versions[i] = &vc
	}
	return &c
}

// Failure policies of a binding.
const (
	OnErrorReject     = "reject"
	OnErrorDeadLetter = "dead-letter"
	OnErrorPass       = "pass"
)

// TransformBinding attaches a transform to a topic.
type TransformBinding struct {
	Module string `json:"module"`
	// Version pins a version; 0 follows the latest deployed.
	Version         int             `json:"version,omitempty"`
	Config          json.RawMessage `json:"config,omitempty"`
	OnError         string          `json:"on_error"`
	DeadLetterTopic string          `json:"dead_letter_topic,omitempty"`
	UpdatedMs       int64           `json:"updated_ms,omitempty"`
}

// Validate checks the binding's own fields (the controller checks the
// module and the dead-letter topic exist).
func (b *TransformBinding) Validate() error {
	if err := ValidateTransformName(b.Module); err != nil {
		return err
	}
	if b.Version < 0 {
		return eddy.Errorf(eddy.CodeInvalid, "version must be positive (or 0 for the latest), got %d", b.Version)
	}
	switch b.OnError {
	case "":
		b.OnError = OnErrorReject
	case OnErrorReject, OnErrorPass:
	case OnErrorDeadLetter:
		if b.DeadLetterTopic == "" {
			return eddy.Errorf(eddy.CodeInvalid, "on_error dead-letter needs dead_letter_topic")
		}
		if err := eddy.TopicName(b.DeadLetterTopic).Validate(); err != nil {
			return err
		}
	default:
		return eddy.Errorf(eddy.CodeInvalid, "on_error must be reject, dead-letter or pass, got %q", b.OnError)
	}
	if b.OnError != OnErrorDeadLetter && b.DeadLetterTopic != "" {
		return eddy.Errorf(eddy.CodeInvalid, "dead_letter_topic is only used with on_error dead-letter")
	}
	if len(b.Config) > 64<<10 {
		return eddy.Errorf(eddy.CodeInvalid, "config is %d bytes, over the 64 KiB limit", len(b.Config))
	}
	if len(b.Config) > 0 && !json.Valid(b.Config) {
		return eddy.Errorf(eddy.CodeInvalid, "config is not valid JSON")
	}
	return nil
}

// ValidateTransformName checks a transform's name: 1 to 64 of a-z, A-Z,
// 0-9, '.', '_' and '-'.
func ValidateTransformName(name string) error {
	if len(name) < 1 || len(name) > 64 {
		return eddy.Errorf(eddy.CodeInvalid, "transform name must be 1 to 64 characters, got %d", len(name))
	}
	if name == "." || name == ".." {
		return eddy.Errorf(eddy.CodeInvalid, "transform name %q is reserved", name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
		default:
			return eddy.Errorf(eddy.CodeInvalid, "transform name %q: only A-Z, a-z, 0-9, '.', '_' and '-' are allowed", name)
		}
	}
	return nil
}

func TransformKey(tenant eddy.TenantID, name string) string { return string(tenant) + "/" + name }

// pinned is the versions of a transform that bindings pin, and the topics
// bound to it at all.
func (st *State) Pinned(tenant eddy.TenantID, name string) (versions map[int]bool, topics []string) {
	versions = map[int]bool{}
	for _, t := range st.Topics {
		if t.Tenant == tenant && t.Transform != nil && t.Transform.Module == name {
			versions[t.Transform.Version] = true
			topics = append(topics, string(t.Name))
		}
	}
	sort.Strings(topics)
	return versions, topics
}

func (st *State) applyTransform(cmd *Cmd) Result {
	switch cmd.Op {
	case OpDeployTransform:
		tm, mv := cmd.Transform, cmd.Module
		if tm == nil || mv == nil || mv.SHA256 == "" || mv.Size == 0 {
			return errResult(eddy.CodeInvalid, "deploy_transform: missing module")
		}
		tn, ok := st.Tenants[tm.Tenant]
		if !ok {
			return errResult(eddy.CodeNotFound, "tenant "+string(tm.Tenant)+" does not exist")
		}
		key := TransformKey(tm.Tenant, tm.Name)
		cur, ok := st.Transforms[key]
		if !ok {
			limit := tn.Quotas.MaxTransforms
			if limit == 0 {
				limit = MaxTransformsDefault
			}
			n := 0
			for _, t := range st.Transforms {
				if t.Tenant == tm.Tenant {
					n++
				}
			}
			if int64(n) >= limit {
				return errResult(eddy.CodeLimitExceeded, fmt.Sprintf("tenant %s is at its limit of %d transforms", tm.Tenant, limit))
			}
			cur = &TransformMeta{Tenant: tm.Tenant, Name: tm.Name, NextVersion: 1, CreatedMs: mv.CreatedMs}
		}
		// Copy on write: readers may hold the old metadata.
		next := *cur
		next.Versions = append([]*ModuleVersion(nil), cur.Versions...)
		if len(next.Versions) >= MaxTransformVersions {
			pins, _ := st.Pinned(tm.Tenant, tm.Name)
			drop := -1
			for i, v := range next.Versions[:len(next.Versions)-1] { // the latest may be followed
				if !pins[v.Version] {
					drop = i
					break
				}
			}
			if drop < 0 {
				return errResult(eddy.CodeLimitExceeded, fmt.Sprintf("transform %s keeps %d versions and topics pin all of them; unpin one first", tm.Name, MaxTransformVersions))
			}
			next.Versions = append(next.Versions[:drop], next.Versions[drop+1:]...)
		}
		v := *mv
		v.Binary = nil
		v.Version = next.NextVersion
		next.NextVersion++
		next.Versions = append(next.Versions, &v)
		if q := tn.Quotas.TransformStorageBytes; q > 0 {
			if used := st.tenantModuleBytes(tm.Tenant, key, next.Versions); used > q {
				return errResult(eddy.CodeLimitExceeded, fmt.Sprintf("tenant %s's transforms would take %d bytes, over its transform_storage_bytes quota of %d; delete old versions first", tm.Tenant, used, q))
			}
		}
		st.Transforms[key] = &next
		res := v
		res.Binary = nil
		return Result{Module: &res}
	case OpDeleteTransform:
		tm := cmd.Transform
		if tm == nil {
			return errResult(eddy.CodeInvalid, "delete_transform: missing transform")
		}
		key := TransformKey(tm.Tenant, tm.Name)
		cur, ok := st.Transforms[key]
		if !ok {
			return errResult(eddy.CodeNotFound, "transform "+tm.Name+" does not exist")
		}
		pins, topics := st.Pinned(tm.Tenant, tm.Name)
		if cmd.Version == 0 {
			if len(topics) > 0 {
				return errResult(eddy.CodeConflict, fmt.Sprintf("transform %s is attached to topic(s) %s; detach it first", tm.Name, strings.Join(topics, ", ")))
			}
			delete(st.Transforms, key)
			return Result{}
		}
		if cur.Version(cmd.Version) == nil {
			return errResult(eddy.CodeNotFound, fmt.Sprintf("transform %s has no version %d", tm.Name, cmd.Version))
		}
		if pins[cmd.Version] || (pins[0] && cur.Latest().Version == cmd.Version) {
			return errResult(eddy.CodeConflict, fmt.Sprintf("version %d of transform %s is in use by topic(s) %s", cmd.Version, tm.Name, strings.Join(topics, ", ")))
		}
		next := *cur
		next.Versions = nil
		for _, v := range cur.Versions {
			if v.Version != cmd.Version {
				next.Versions = append(next.Versions, v)
			}
		}
		if len(next.Versions) == 0 {
			delete(st.Transforms, key)
		} else {
			st.Transforms[key] = &next
		}
		return Result{}
	case OpBindTransform:
		t, ok := st.Topics[cmd.Ref]
		if !ok {
			return errResult(eddy.CodeNotFound, "topic does not exist")
		}
		nt := *t // copy on write; the binding is replaced whole
		if b := cmd.Binding; b != nil {
			tm, ok := st.Transforms[TransformKey(t.Tenant, b.Module)]
			if !ok {
				return errResult(eddy.CodeNotFound, "transform "+b.Module+" does not exist")
			}
			if tm.Version(b.Version) == nil {
				return errResult(eddy.CodeNotFound, fmt.Sprintf("transform %s has no version %d", b.Module, b.Version))
			}
			if b.OnError == OnErrorDeadLetter {
				if b.DeadLetterTopic == string(t.Name) {
					return errResult(eddy.CodeInvalid, "the dead-letter topic must not be the topic itself")
				}
				if _, ok := st.Topics[string(t.Tenant)+"/"+b.DeadLetterTopic]; !ok {
					return errResult(eddy.CodeNotFound, "dead-letter topic "+b.DeadLetterTopic+" does not exist")
				}
			}
			c := *b
			nt.Transform = &c
		} else {
			if t.Transform == nil {
				return errResult(eddy.CodeNotFound, "topic "+string(t.Name)+" has no transform")
			}
			nt.Transform = nil
		}
		st.Topics[cmd.Ref] = &nt
		return Result{Topic: &nt}
	}
	return errResult(eddy.CodeInvalid, "controller: unknown op "+cmd.Op)
}
