package httpapi

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/eddy-broker/eddy/multiraft"
	"github.com/eddy-broker/eddy/series"
)

// TestSeriesFilteredToToken: GET /v1/series answers only the token's
// tenant's series, and of those only the topics its scopes name and the
// groups it may consume; another tenant's series never show, under any
// prefix.
func TestSeriesFilteredToToken(t *testing.T) {
	store := series.New(series.Config{Step: time.Second, Points: 60})
	e := newEnv(t, multiraft.Config{}, Config{Series: store})
	e.mustCreate("t", 1, "")
	e.mustCreate("u", 1, "")
	if code, _, body := e.req("POST", "/v1/tenants", "application/json", `{"name":"globex"}`); code != 201 {
		t.Fatalf("tenant: %d %s", code, body)
	}
	if code, _, body := e.req("POST", "/v1/groups/gt/offsets", "application/json", `{"topic":"t","to":"earliest"}`); code != 200 {
		t.Fatalf("group: %d %s", code, body)
	}
	now := time.Now()
	pts := func(v float64) []series.Point {
		return []series.Point{
			{Key: series.Key{Tenant: "default", Name: "produce_records", Subject: "t"}, Value: v},
			{Key: series.Key{Tenant: "default", Name: "produce_records", Subject: "u"}, Value: v},
			{Key: series.Key{Tenant: "globex", Name: "produce_records", Subject: "t"}, Value: v},
		}
	}
	store.Record(now.Add(-2*time.Second), pts(10), nil)
	store.Record(now.Add(-time.Second), pts(20), []series.Point{{Key: series.Key{Tenant: "default", Name: "group_lag", Subject: "gt"}, Value: 5}})
	seen := func(token, path string) map[string]bool {
		t.Helper()
		code, _, body := e.reqAs(token, "GET", path, "", "")
		if code != 200 {
			t.Fatalf("%s: %d %s", path, code, body)
		}
		var out struct{ Series []series.Series }
		json.Unmarshal([]byte(body), &out)
		got := map[string]bool{}
		for _, s := range out.Series {
			got[s.Name+":"+s.Subject] = true
		}
		return got
	}
	all := seen(e.token, "/v1/series")
	if !all["produce_records:t"] || !all["produce_records:u"] || !all["group_lag:gt"] || len(all) != 3 {
		t.Fatalf("the operator in default: %v", all)
	}
	if g := seen(e.token, "/v1/tenants/globex/series"); len(g) != 1 || !g["produce_records:t"] {
		t.Fatalf("the operator in globex: %v", g)
	}
	reader := e.mint("default", "consume:t")
	if r := seen(reader, "/v1/series"); len(r) != 2 || !r["produce_records:t"] || !r["group_lag:gt"] {
		t.Fatalf("consume:t: %v", r)
	}
	if r := seen(reader, "/v1/series?group=gt"); len(r) != 1 || !r["group_lag:gt"] {
		t.Fatalf("consume:t, one group: %v", r)
	}
	producerU := e.mint("default", "produce:u")
	if r := seen(producerU, "/v1/series"); len(r) != 1 || !r["produce_records:u"] {
		t.Fatalf("produce:u: %v", r)
	}
	globex := e.mint("globex", "admin")
	if r := seen(globex, "/v1/series"); len(r) != 1 || !r["produce_records:t"] {
		t.Fatalf("globex: %v", r)
	}
	if code, _, _ := e.reqAs(globex, "GET", "/v1/tenants/default/series", "", ""); code != 404 {
		t.Fatalf("globex reading default's series: %d", code)
	}
}
