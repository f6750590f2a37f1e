package mqtt

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/eddy-broker/eddy"
	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// What the console's MQTT page and GET /v1/mqtt/connections show: each
// connection's tenant, identity and counters, kept in its session
// (atomics: a publish costs two adds and a store), and a kick.

// sessionStats are a session's counters.
type sessionStats struct {
	connected time.Time
	messages  atomic.Int64
	bytes     atomic.Int64
	lastMs    atomic.Int64 // the last publish, ms since the epoch
}

func (s *sessionStats) published(n int) {
	s.messages.Add(1)
	s.bytes.Add(int64(n))
	s.lastMs.Store(time.Now().UnixMilli())
}

// Connection is one live MQTT connection.
type Connection struct {
	ClientID      string        `json:"client_id"` // as the device sent it
	Tenant        eddy.TenantID `json:"tenant"`
	Subject       string        `json:"subject"` // the token's sub
	Scopes        []string      `json:"scopes"`  // the token's, as granted: what the device may publish and read
	Remote        string        `json:"remote"`
	Version       byte          `json:"protocol_version"` // 3, 4 (3.1.1) or 5
	ConnectedMs   int64         `json:"connected_ms"`
	LastPublishMs int64         `json:"last_publish_ms,omitempty"`
	Messages      int64         `json:"messages"`
	Bytes         int64         `json:"bytes"`
	// What it is subscribed to (as the device wrote its filters), whether
	// its session is persistent, its deliveries not yet acknowledged, and
	// the partitions its own readers are catching up on (follow.go).
	Subscriptions    []string `json:"subscriptions,omitempty"`
	Persistent       bool     `json:"persistent,omitempty"`
	Unacknowledged   int      `json:"unacknowledged"`
	PartitionsBehind int      `json:"partitions_behind"`
}

// MaxListed bounds a connections listing.
const MaxListed = 10_000

// Connections lists the live connections of tenant (all tenants when
// tenant is empty), by client id, at most MaxListed.
func (l *Listener) Connections(tenant eddy.TenantID) []Connection {
	l.mu.Lock()
	out := make([]Connection, 0, min(len(l.clients), MaxListed))
	for cl, s := range l.clients {
		if tenant != "" && s.tenant != tenant {
			continue
		}
		if len(out) == MaxListed {
			break
		}
		out = append(out, Connection{ClientID: strings.TrimPrefix(cl.ID, string(s.tenant)+"/"), Tenant: s.tenant, Subject: s.p.Subject, Scopes: s.p.Scopes(),
			Remote: cl.Net.Remote, Version: cl.Properties.ProtocolVersion, ConnectedMs: s.stats.connected.UnixMilli(),
			LastPublishMs: s.stats.lastMs.Load(), Messages: s.stats.messages.Load(), Bytes: s.stats.bytes.Load(), Persistent: s.persistent})
		if st := s.stream.Load(); st != nil {
			st.describe(&out[len(out)-1])
		}
	}
	l.mu.Unlock()
	slices.SortFunc(out, func(a, b Connection) int {
		return strings.Compare(string(a.Tenant)+"/"+a.ClientID, string(b.Tenant)+"/"+b.ClientID)
	})
	return out
}

// Kick disconnects tenant's client (v5: reason 0x98, administrative
// action); false if no such client is connected here.
func (l *Listener) Kick(tenant eddy.TenantID, clientID string) bool {
	l.mu.Lock()
	var found *mochi.Client
	for cl, s := range l.clients {
		if s.tenant == tenant && cl.ID == string(tenant)+"/"+clientID {
			found = cl
			break
		}
	}
	l.mu.Unlock()
	if found == nil {
		return false
	}
	l.m.GetOrCreateCounter("eddy_mqtt_kicked_total").Inc()
	l.srv.DisconnectClient(found, packets.ErrAdministrativeAction)
	return true
}

// describe fills in a connection's subscriptions and delivery state.
func (st *stream) describe(c *Connection) {
	st.mu.Lock()
	for _, f := range st.filters {
		c.Subscriptions = append(c.Subscriptions, f.Filter)
	}
	for key := range st.groups {
		group, rest, _ := strings.Cut(strings.TrimPrefix(key, "$share/"), "/")
		c.Subscriptions = append(c.Subscriptions, "$share/"+group+"/"+unscopeFilter(st.s.tenant, rest))
	}
	st.mu.Unlock()
	slices.Sort(c.Subscriptions)
	c.Unacknowledged = len(st.window)
	st.fol.mu.Lock()
	for _, pl := range st.fol.places {
		if pl.behind {
			c.PartitionsBehind++
		}
	}
	st.fol.mu.Unlock()
}

// writeConnectionCounts writes eddy_mqtt_connections by tenant (for
// /metrics, through the metrics set's writer).
func (l *Listener) writeConnectionCounts(w io.Writer) {
	l.mu.Lock()
	n := map[eddy.TenantID]int{}
	for _, s := range l.clients {
		n[s.tenant]++
	}
	l.mu.Unlock()
	for _, t := range slices.Sorted(maps.Keys(n)) {
		fmt.Fprintf(w, "eddy_mqtt_connections{tenant=%q} %d\n", t, n[t])
	}
}
