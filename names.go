package eddy

import (
	"fmt"
	"strings"
)

// TenantID names a tenant: [a-z0-9][a-z0-9-]{0,31}.
type TenantID string

// DefaultTenant is the tenant that always exists. Requests that name no
// tenant act on it until authentication assigns one.
const DefaultTenant TenantID = "default"

// TopicName is a topic's name inside its tenant: [A-Za-z0-9._-]{1,200}.
type TopicName string

// Partition is a partition number inside a topic, from 0.
type Partition int32

// Offset is a record's position in its partition: dense, from 0, assigned
// when the record is appended, never by a client.
type Offset int64

// TopicRef is a fully qualified topic: tenant and name. Its string form is
// "tenant/topic".
type TopicRef struct {
	Tenant TenantID
	Name   TopicName
}

// String returns "tenant/topic".
func (r TopicRef) String() string { return string(r.Tenant) + "/" + string(r.Name) }

// ParseTopicRef parses "tenant/topic".
func ParseTopicRef(s string) (TopicRef, error) {
	t, n, ok := strings.Cut(s, "/")
	if !ok {
		return TopicRef{}, Errorf(CodeInvalid, "topic reference %q is not tenant/topic", s)
	}
	r := TopicRef{Tenant: TenantID(t), Name: TopicName(n)}
	if err := r.Tenant.Validate(); err != nil {
		return TopicRef{}, err
	}
	if err := r.Name.Validate(); err != nil {
		return TopicRef{}, err
	}
	return r, nil
}

// Validate reports whether the tenant ID is well formed.
func (t TenantID) Validate() error {
	if len(t) < 1 || len(t) > 32 {
		return Errorf(CodeInvalid, "tenant name %q must be 1 to 32 characters", string(t))
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case c == '-' && i > 0:
		default:
			return Errorf(CodeInvalid, "tenant name %q: only a-z, 0-9 and '-' (not first) are allowed", string(t))
		}
	}
	return nil
}

// Validate reports whether the topic name is well formed.
func (n TopicName) Validate() error {
	if len(n) < 1 || len(n) > 200 {
		return Errorf(CodeInvalid, "topic name must be 1 to 200 characters, got %d", len(n))
	}
	if n == "." || n == ".." {
		return Errorf(CodeInvalid, "topic name %q is reserved", string(n))
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
		default:
			return Errorf(CodeInvalid, "topic name %q: only A-Z, a-z, 0-9, '.', '_' and '-' are allowed", string(n))
		}
	}
	return nil
}

// Validate reports whether p is a valid partition of a topic with n partitions.
func (p Partition) Validate(n int32) error {
	if p < 0 || int32(p) >= n {
		return Errorf(CodeNotFound, "partition %d does not exist (topic has %d)", p, n)
	}
	return nil
}

func (p Partition) String() string { return fmt.Sprintf("%d", int32(p)) }
