package catalog

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"
	"github.com/eddy-broker/eddy"
)

// linkCmd reads the link commands of the catalog's scripts (see
// TestCatalogSpec); nil for any other command.
func linkCmd(t *testing.T, d *datadriven.TestData) *Cmd {
	lc := &LinkCmd{}
	if d.HasArg("tenant") {
		lc.Tenant, lc.Name = eddy.TenantID(arg(t, d, "tenant")), arg(t, d, "name")
	}
	switch d.Cmd {
	case "link":
		spec := &LinkSpec{To: listArg(d, "to"), Topics: listArg(d, "topics"), Priority: listArg(d, "priority")}
		if d.HasArg("sasl") {
			spec.SASL, spec.Username, spec.Password = arg(t, d, "sasl"), "u", "secret"
		}
		if d.HasArg("compression") {
			spec.Compression = arg(t, d, "compression")
		}
		if d.HasArg("prefix") {
			spec.TargetPrefix = arg(t, d, "prefix")
		}
		spec.MaxBytesPerSec = intArg(t, d, "rate", 0)
		lc.Spec = spec
		return &Cmd{Op: OpCreateLink, Link: lc}
	case "delete-link":
		return &Cmd{Op: OpDeleteLink, Link: lc}
	case "pause-link", "resume-link":
		lc.Paused = d.Cmd == "pause-link"
		return &Cmd{Op: OpPauseLink, Link: lc}
	case "link-progress":
		u := LinkProgress{Shard: uint64(intArg(t, d, "shard", 0))}
		if v := listArg(d, "expect"); len(v) == 5 {
			u.Expect = progressArg(t, d, v)
		}
		u.Next = *progressArg(t, d, listArg(d, "next"))
		u.Next.Dropped, u.Next.Resets = intArg(t, d, "dropped", 0), intArg(t, d, "resets", 0)
		if d.HasArg("state") {
			u.Next.State, u.StatusOnly = arg(t, d, "state"), true
		}
		lc.Progress = []LinkProgress{u}
		return &Cmd{Op: OpLinkProgress, Link: lc}
	}
	return nil
}

// progressArg is (sent,inflight,pid,epoch,seq).
func progressArg(t *testing.T, d *datadriven.TestData, v []string) *LinkPartition {
	var n [5]int64
	if len(v) != 5 {
		d.Fatalf(t, "progress is (sent,inflight,pid,epoch,seq), got %v", v)
	}
	for i, s := range v {
		fmt.Sscan(s, &n[i])
	}
	return &LinkPartition{Sent: n[0], InFlight: n[1], ProducerID: n[2], Epoch: int16(n[3]), Seq: int32(n[4])}
}

func writeLink(b *strings.Builder, st *State, c *LinkCmd) {
	l := st.Links[LinkKey(c.Tenant, c.Name)]
	if l == nil {
		fmt.Fprintf(b, "link %s/%s deleted\n", c.Tenant, c.Name)
		return
	}
	fmt.Fprintf(b, "link %s/%s to %v topics %v start %s", l.Tenant, l.Name, l.To, l.Topics, l.Start)
	if l.Paused {
		b.WriteString(" paused")
	}
	b.WriteString("\n")
	for _, s := range slices.Sorted(maps.Keys(l.Partitions)) {
		p := l.Partitions[s]
		fmt.Fprintf(b, "  shard %d: sent %d in flight %d producer %d/%d seq %d dropped %d resets %d", s, p.Sent, p.InFlight, p.ProducerID, p.Epoch, p.Seq, p.Dropped, p.Resets)
		if p.State != "" {
			fmt.Fprintf(b, " %s", p.State)
		}
		b.WriteString("\n")
	}
	if c.Progress != nil {
		fmt.Fprintf(b, "hold of shard %d: %d\n", c.Progress[0].Shard, st.LinkHold(c.Progress[0].Shard))
	}
}
