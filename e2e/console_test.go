package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/eddy-broker/eddy/internal/testutil"
)

// The web console in a real Chromium (Debian's), driven with chromedp
// against a real node. Any JavaScript exception, console error, CSP
// violation or failed request fails the test; a failure saves a
// screenshot (to $EDDY_E2E_ARTIFACTS, else the test's temp dir).

// browser is one Chromium tab on the console of a node.
type browser struct {
	t    testing.TB
	ctx  context.Context
	base string // http://host:port/console/

	mu       sync.Mutex
	problems []string
}

func chromiumPath(t testing.TB) string {
	if p := os.Getenv("EDDY_CHROMIUM"); p != "" {
		return p
	}
	return toolPath(t, "chromium", "apt-get install --no-install-recommends chromium")
}

func newBrowser(t testing.TB, p *proc) *browser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromiumPath(t)), chromedp.NoSandbox,
		chromedp.WindowSize(1280, 800), chromedp.Flag("disable-gpu", true))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	b := &browser{t: t, base: p.url("/console/")}
	ctx, cancelTab := chromedp.NewContext(actx, chromedp.WithListener(b.listen))
	ctx, cancelTimeout := context.WithTimeout(ctx, 3*time.Minute)
	b.ctx = ctx
	t.Cleanup(func() {
		if t.Failed() {
			b.screenshot("failure")
		}
		cancelTimeout()
		cancelTab()
		cancelAlloc()
	})
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return b
}

// listen records what must not happen on a page.
func (b *browser) listen(ev any) {
	var problem string
	switch ev := ev.(type) {
	case *runtime.EventExceptionThrown:
		problem = "exception: " + ev.ExceptionDetails.Text
		if ev.ExceptionDetails.Exception != nil {
			problem += " " + ev.ExceptionDetails.Exception.Description
		}
	case *runtime.EventConsoleAPICalled:
		if ev.Type == runtime.ConsoleAPICalledTypeError {
			var parts []string
			for _, a := range ev.Args {
				parts = append(parts, string(a.Value)+a.Description)
			}
			problem = "console.error: " + strings.Join(parts, " ")
		}
	case *log.EventEntryAdded:
		if ev.Entry.Level == log.EntryLevelError {
			problem = "log: " + ev.Entry.Text + " " + ev.Entry.URL
		}
	case *network.EventResponseReceived:
		if ev.Response.Status >= 400 {
			problem = fmt.Sprintf("request failed: %d %s", ev.Response.Status, ev.Response.URL)
		}
	case *network.EventLoadingFailed:
		if !ev.Canceled { // a live tail closed by leaving its page is canceled
			problem = "loading failed: " + ev.ErrorText
		}
	}
	if problem != "" {
		b.mu.Lock()
		b.problems = append(b.problems, problem)
		b.mu.Unlock()
	}
}

// check fails the test on anything the page reported so far.
func (b *browser) check() {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.problems) > 0 {
		b.t.Fatalf("the page reported:\n%s", strings.Join(b.problems, "\n"))
	}
}

func (b *browser) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, actions...); err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
	b.check()
}

// open goes to a console route (#/...), as a link would.
func (b *browser) open(route string) {
	b.t.Helper()
	b.eval(fmt.Sprintf("location.hash = %q", "#/"+route))
}

func (b *browser) eval(js string) {
	b.t.Helper()
	if _, err := chromedp.Run(b.ctx, chromedp.Evaluate[chromedp.Void](js)); err != nil {
		b.t.Fatalf("eval %s: %v", js, err)
	}
}

func (b *browser) present(sel string) bool {
	b.t.Helper()
	ok, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool](fmt.Sprintf("!!document.querySelector(%q)", sel)))
	if err != nil {
		b.t.Fatalf("query %s: %v", sel, err)
	}
	return ok
}

// waitPresent waits until an element matches sel (charts reload every 10 s).
func (b *browser) waitPresent(sel string) {
	b.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !b.present(sel) {
		if time.Now().After(deadline) {
			b.t.Fatalf("%s never appeared", sel)
		}
		time.Sleep(200 * time.Millisecond)
	}
	b.check()
}

// waitText waits until the element's text contains want and returns it.
func (b *browser) waitText(sel, want string) string {
	b.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](fmt.Sprintf("(document.querySelector(%q) || {}).innerText || ''", sel)))
		if err == nil && strings.Contains(got, want) {
			b.check()
			return got
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("%s: want %q, have %q (%v)", sel, want, got, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// click clicks an element once its box has stopped moving (two reads
// 100 ms apart agree), as Playwright's actionability check does: a click
// lands where the element was when its box was read, and a chart that
// finishes loading above it moves it.
func (b *browser) click(sel string) {
	b.t.Helper()
	box := fmt.Sprintf(`(() => { const r = document.querySelector(%q)?.getBoundingClientRect(); return r ? [r.x, r.y, r.width, r.height].join() : '' })()`, sel)
	last := ""
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		now, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](box))
		if err == nil && now != "" && now == last {
			break
		}
		last = now
	}
	b.do("click "+sel, chromedp.Click(chromedp.CSS(sel)))
}
func (b *browser) typeIn(sel, text string) {
	b.t.Helper()
	b.do("type in "+sel, chromedp.Click(chromedp.CSS(sel)), chromedp.SendKeys(chromedp.CSS(sel), text))
}

// choose picks an option of a select, as a user's change does.
func (b *browser) choose(sel, value string) {
	b.t.Helper()
	b.eval(fmt.Sprintf(`(() => { const s = document.querySelector(%q); s.value = %q; s.dispatchEvent(new Event('change', {bubbles: true})) })()`, sel, value))
}

// setValue replaces an input's value, as a user's paste does.
func (b *browser) setValue(sel, value string) {
	b.t.Helper()
	b.eval(fmt.Sprintf(`(() => { const t = document.querySelector(%q); t.value = %q; t.dispatchEvent(new Event('input', {bubbles: true})) })()`, sel, value))
}

// text is an element's text.
func (b *browser) text(sel string) string {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](fmt.Sprintf("(document.querySelector(%q) || {}).textContent || ''", sel)))
	if err != nil {
		b.t.Fatalf("text of %s: %v", sel, err)
	}
	return v
}

// value is an input's current value.
func (b *browser) value(sel string) string {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](fmt.Sprintf("(document.querySelector(%q) || {}).value || ''", sel)))
	if err != nil {
		b.t.Fatalf("value of %s: %v", sel, err)
	}
	return v
}

// login logs in with a token through the login form.
func (b *browser) login(token, want string) {
	b.t.Helper()
	b.eval(`try { sessionStorage.clear() } catch (e) {}`) // a new session: no token kept
	b.do("open the console", chromedp.Navigate(b.base))
	b.do("the login form", chromedp.WaitVisible(chromedp.CSS(`[data-testid="token"]`)))
	b.setValue(`[data-testid="token"]`, token)
	b.click(`[data-testid="login"]`)
	b.waitText(`[data-testid="who"]`, want)
}

// screenshot saves the viewport (1280x800) as a PNG named name, in
// $EDDY_SCREENSHOTS (make screenshots) or, on failure, the artifacts dir.
func (b *browser) screenshot(name string) {
	dir := os.Getenv("EDDY_SCREENSHOTS")
	if name == "failure" {
		if dir = os.Getenv("EDDY_E2E_ARTIFACTS"); dir == "" {
			dir = b.t.TempDir()
		}
		name = b.t.Name()
	}
	if dir == "" {
		return
	}
	if name != b.t.Name() { // a page's picture from its top; a failure's as it was
		chromedp.Run(b.ctx, chromedp.Evaluate[chromedp.Void]("window.scrollTo(0, 0)"))
	}
	shot, err := chromedp.Run(b.ctx, chromedp.CaptureScreenshot())
	if err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return
	}
	path := filepath.Join(dir, name+".png")
	if err := os.WriteFile(path, shot, 0o644); err == nil {
		b.t.Logf("screenshot: %s", path)
	}
}

// TestConsole: an operator logs in, creates a topic and produces from the
// forms, sees the record in the browser and in the live tail, opens a
// group and sees its lag in records and in time, uploads two versions of a
// transform, dry-runs one and pins the older, sees charts drawn from the
// node's sampler, sees a real MQTT device and disconnects it; a tenant's token sees only
// its tenant and no operator page; a token without the admin scope sees
// no destructive button and is refused if it calls those routes anyway.
func TestConsole(t *testing.T) {
	p := newProc(t)
	p.env = append(p.env, "EDDY_CONSOLE_SERIES_STEP=1s") // charts with history within the test
	p.start()
	b := newBrowser(t, p)

	// eddy console: a short-lived token in the fragment, taken and
	// removed from the address bar at once.
	link, stderr, err := p.cli("", "console", "--open=false", "--ttl", "10m")
	if err != nil || !strings.Contains(link, "/console/#t=") {
		t.Fatalf("eddy console: %v %s %s", err, link, stderr)
	}
	b.do("open the console's link", chromedp.Navigate(strings.TrimSpace(link)))
	b.waitText(`[data-testid="who"]`, "operator")
	if loc, err := chromedp.Run(b.ctx, chromedp.Location()); err != nil || strings.Contains(loc, "t=") {
		t.Fatalf("the token stayed in the address bar: %s %v", loc, err)
	}
	b.waitText(`[data-testid="card-ready"]`, "ready")

	// A topic from the form, a record from the produce form.
	b.open("topics")
	b.typeIn(`[data-testid="new-topic-name"]`, "sensors")
	b.setValue(`[data-testid="new-topic-partitions"]`, "3")
	b.click(`[data-testid="create-topic-submit"]`)
	b.waitText(`[data-testid="topic-sensors"]`, "sensors")
	// A compacted topic's retention is its newest record per key.
	if code, err := p.do("POST", "/v1/topics", "application/json", []byte(`{"name":"device-config","config":{"cleanup.policy":"compact"}}`), nil); err != nil || code != 201 {
		t.Fatalf("create device-config: %d %v", code, err)
	}
	b.open("topics/sensors")
	b.open("topics")
	b.waitText(`[data-testid="topic-device-config"]`, "newest per key")
	if got := b.text(`[data-testid="topic-sensors"]`); strings.Contains(got, "newest per key") || !strings.Contains(got, "7 d") {
		t.Fatalf("sensors' row: %q", got)
	}
	b.open("topics/sensors")
	b.waitText(`[data-testid="partitions"]`, "high watermark")
	b.typeIn(`[data-testid="produce-key"]`, "dev-17")
	b.typeIn(`[data-testid="produce-value"]`, `{"t":21.5}`)
	b.click(`[data-testid="produce-submit"]`)
	b.waitText(`[data-testid="produced"]`, "offset 0")
	b.screenshot("topic")

	// The record browser, newest first, decoded.
	b.click(`[data-testid="browse"]`)
	b.waitText(`[data-testid="records"]`, `"t":21.5`)
	b.waitText(`[data-testid="records"]`, "dev-17")
	b.choose(`[data-testid="decode"]`, "hex")
	b.click(`[data-testid="browse-load"]`)
	b.waitText(`[data-testid="records"]`, "7b 22 74 22") // {"t"
	// A search by key reads the key's partition, in bounded steps.
	b.typeIn(`[data-testid="search-key"]`, "dev-17")
	b.click(`[data-testid="search-run"]`)
	b.waitText(`[data-testid="search-progress"]`, "(done)")
	b.waitText(`[data-testid="search-results"]`, "dev-17")
	b.screenshot("records")

	// The live tail sees a record produced over HTTP.
	b.open("tail/sensors")
	b.waitText(`[data-testid="tail-state"]`, "live")
	time.Sleep(300 * time.Millisecond) // the stream is open before the record
	if code, err := p.do("POST", "/v1/topics/sensors/records", "application/json", []byte(`{"records":[{"key":"dev-9","value":"tail-1"}]}`), nil); err != nil || code != 200 {
		t.Fatalf("produce: %d %v", code, err)
	}
	b.waitText(`[data-testid="tail-rows"]`, "tail-1")
	b.screenshot("tail")

	// A group behind by both records: its lag in records and in time.
	if code, err := p.do("POST", "/v1/groups/dashboards/offsets", "application/json", []byte(`{"topic":"sensors","to":"earliest"}`), nil); err != nil || code != 200 {
		t.Fatalf("reset: %d %v", code, err)
	}
	b.open("groups")
	b.waitText(`[data-testid="group-dashboards"]`, "dashboards")
	b.open("groups/dashboards")
	b.waitText(`[data-testid="group-lag"]`, "2")
	if got := b.waitText(`[data-testid="group-lag-ms"]`, " "); strings.HasPrefix(got, "0 ms") || got == "–" {
		t.Fatalf("lag in time: %q", got)
	}
	p.waitSeries("group=dashboards") // the sampler saw the lag (the chart below)
	// One more record: the Overview alerts that the lag grows.
	if code, err := p.do("POST", "/v1/topics/sensors/records", "application/json", []byte(`{"records":[{"value":"lag-1"}]}`), nil); err != nil || code != 200 {
		t.Fatalf("produce: %d %v", code, err)
	}
	b.open("overview")
	b.waitText(`[data-testid="alerts"]`, "lag growing")
	b.open("groups/dashboards")
	b.waitText(`[data-testid="group-lag"]`, "3")
	b.choose(`[data-testid="reset-to"]`, "latest")
	b.click(`[data-testid="reset-preview"]`)
	b.waitText(`[data-testid="reset-table"]`, "would be")
	b.screenshot("group")
	b.click(`[data-testid="reset-apply"]`)
	b.waitText(`[data-testid="group-lag"]`, "0")

	// Transforms: two versions, a dry run, a binding, then a pin of v1.
	keep := filepath.Join(t.TempDir(), "keep.wasm")
	enrich := filepath.Join(t.TempDir(), "enrich.wasm")
	os.WriteFile(keep, buildWasm(t, "wasm/testdata/guests/keep"), 0o644)
	os.WriteFile(enrich, buildWasm(t, "wasm/testdata/guests/enrich"), 0o644)
	b.open("transforms")
	for i, f := range []string{keep, enrich} {
		b.setValue(`[data-testid="upload-name"]`, "shape")
		b.do("choose the module", chromedp.SetUploadFiles(chromedp.CSS(`[data-testid="upload-file"]`), []string{f}))
		b.click(`[data-testid="upload-submit"]`)
		b.waitText(`[data-testid="uploaded"]`, fmt.Sprintf("version %d", i+1))
	}
	b.waitText(`[data-testid="module-shape"]`, "latest version 2")
	// Browsed records go to the dry run's input.
	b.open("records/sensors")
	b.waitText(`[data-testid="records"]`, `"t":21.5`)
	b.click(`[data-testid="to-dryrun"]`)
	b.waitText(`[data-testid="dryrun"]`, "Run")
	if v := b.value(`[data-testid="dryrun-input"]`); !strings.Contains(v, `{"t":21.5}`) || !strings.Contains(v, "tail-1") {
		t.Fatalf("the dry run's input from the browser: %q", v)
	}
	b.setValue(`[data-testid="dryrun-input"]`, `{"t":1}`)
	b.typeIn(`[data-testid="dryrun-config"]`, `{"site":"plant-4"}`)
	b.click(`[data-testid="dryrun-submit"]`)
	b.waitText(`[data-testid="dryrun-out"]`, `plant-4`)
	b.choose(`[data-testid="bind-topic"]`, "sensors")
	b.click(`[data-testid="bind-submit"]`)
	b.waitText(`[data-testid="binding-sensors"]`, "v2")
	b.screenshot("transforms")
	b.click(`[data-testid="binding-sensors"] [data-testid="pin-1"]`)
	b.waitText(`[data-testid="binding-sensors"] [data-testid="runs-version"]`, "v1 (pinned)")
	var topic struct {
		Transform struct{ Version, RunsVersion int } `json:"transform"`
	}
	if code, err := p.do("GET", "/v1/topics/sensors", "", nil, &topic); err != nil || code != 200 || topic.Transform.Version != 1 {
		t.Fatalf("the pinned version over HTTP: %d %v %+v", code, err, topic)
	}

	// Charts from the node's sampler: the group's lag before its reset,
	// the records that came in.
	b.open("groups/dashboards")
	b.waitPresent(`[data-testid="chart-lag"] canvas`)
	p.waitSeries("name=produce_records")
	b.open("overview")
	b.waitPresent(`[data-testid="chart-produce"] canvas`)
	b.screenshot("overview")

	// A topic the group no longer reads: its offsets go from the group's
	// page, and the group, left with none, with them.
	b.open("groups/dashboards")
	b.waitText(`[data-testid="group-topics"]`, "sensors")
	b.eval(`window.confirm = () => true`)
	b.click(`[data-testid="forget-sensors"]`)
	b.waitPresent(`[data-testid="groups"]`)
	if code, err := p.do("GET", "/v1/groups/dashboards", "", nil, nil); err != nil || code != 404 {
		t.Fatalf("the group after its topic's offsets went: %d %v", code, err)
	}

	// MQTT: a real device connected (mosquitto_pub reading lines), its
	// row and counters, the mapping tester, then a kick.
	host, port, _ := strings.Cut(p.mqttAddr, ":")
	dev := exec.Command("stdbuf", "-oL", "mosquitto_pub", "-h", host, "-p", port, "-u", "default", "-P", p.token, "-i", "dev-console",
		"-t", "sensors/dev-17", "-q", "1", "-V", "mqttv5", "-l", "-d")
	stdin, _ := dev.StdinPipe()
	var devOut testutil.SyncBuffer
	dev.Stdout, dev.Stderr = &devOut, &devOut
	if err := dev.Start(); err != nil {
		t.Fatalf("mosquitto_pub: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- dev.Wait() }()
	t.Cleanup(func() { dev.Process.Kill(); <-exited })
	fmt.Fprintln(stdin, `{"t":22}`)
	b.open("mqtt")
	b.waitText(`[data-testid="conn-dev-console"]`, "dev-console")
	b.waitText(`[data-testid="conn-dev-console"]`, "5") // MQTT 5, and a message counted
	b.typeIn(`[data-testid="mqtt-test-topic"]`, "")
	b.click(`[data-testid="mqtt-test-run"]`)
	b.waitText(`[data-testid="mqtt-test-out"]`, "lands in topic sensors")
	b.screenshot("mqtt")
	b.click(`[data-testid="kick-dev-console"]`)
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(devOut.String(), "DISCONNECT (152)") { // mosquitto -d: the broker's v5 DISCONNECT, administrative action
		if time.Now().After(deadline) {
			t.Fatalf("the device was not told it was disconnected:\n%s", devOut.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	b.waitText("main", "No device is connected")

	// Links: one to this node's own Kafka listener (topics copied under a
	// prefix), its partitions forwarded, then paused from the page.
	p.createLink(map[string]any{"name": "mirror", "to": []string{p.kafkaAddr}, "topics": []string{"sensors"},
		"target_prefix": "copy.", "sasl": "plain", "username": "default", "password": p.token})
	b.open("links")
	b.waitText(`[data-testid="link-mirror"] [data-testid="link-state"]`, "connected")
	b.waitText(`[data-testid="link-part-sensors-0"]`, "connected")
	b.waitText(`[data-testid="link-mirror"] [data-testid="link-totals"]`, "backlog 0 records")
	b.screenshot("links")
	b.click(`[data-testid="link-pause"]`)
	b.waitText(`[data-testid="link-mirror"] [data-testid="link-state"]`, "paused")
	b.waitPresent(`[data-testid="link-resume"]`)

	// The cluster and tenants pages, for the operator.
	b.open("cluster")
	b.waitText(`[data-testid="nodes"]`, "active")
	b.waitText(`[data-testid="cluster-partitions"]`, "default/sensors")
	b.click(`[data-testid="verify-default-sensors-2"]`) // dev-17's partition
	b.waitText(`[data-testid="verified"]`, "yes, up to")
	b.screenshot("cluster")
	b.open("tenants")
	b.waitText(`[data-testid="quotas"]`, "topics")
	b.typeIn(`[data-testid="mint-scopes"]`, " consume:sensors")
	b.click(`[data-testid="mint-submit"]`)
	b.waitText(`[data-testid="minted"]`, "mosquitto_pub")
	b.screenshot("tenants")
	// A device token of MQTT scopes: its own topic, and no HTTP or Kafka
	// line (its scopes grant neither).
	b.setValue(`[data-testid="mint-scopes"]`, "mqtt-pub:sensors/{sub}/#, mqtt-sub:cmd/{sub}/#")
	b.click(`[data-testid="mint-submit"]`)
	b.waitText(`[data-testid="minted"]`, "-t sensors/device-1/temp")
	if got := b.text(`[data-testid="minted"]`); strings.Contains(got, "curl") || strings.Contains(got, "kcat") {
		t.Fatalf("a token of MQTT scopes is shown HTTP or Kafka lines: %s", got)
	}
	b.typeIn(`[data-testid="create-tenant"] input`, "acme")
	b.click(`[data-testid="create-tenant"] button`)
	b.waitText(`[data-testid="tenants"]`, "acme")

	// A tenant's admin sees its tenant only, and no operator page.
	acme := p.tenantToken("acme", "admin")
	b.login(acme, "tenant acme")
	if b.present(`[data-testid="nav-cluster"]`) || b.present(`[data-testid="operator-view"]`) || b.present(`[data-testid="tenant-switch"]`) {
		t.Fatal("a tenant's token shows operator controls")
	}
	b.open("topics")
	b.waitText(`[data-testid="topics"]`, "topic")
	if b.present(`[data-testid="topic-sensors"]`) {
		t.Fatal("tenant acme sees default's topic")
	}
	b.open("cluster")
	b.waitText("main", "No such page")

	// A token that may only read sensors: no create, delete or reset.
	reader := p.tenantToken("default", "consume:sensors")
	b.login(reader, "tenant default")
	b.open("topics")
	b.waitText(`[data-testid="topic-sensors"]`, "sensors")
	if b.present(`[data-testid="create-topic"]`) {
		t.Fatal("a reader sees the create form")
	}
	b.open("topics/sensors")
	b.waitText(`[data-testid="partitions"]`, "high watermark")
	if b.present(`[data-testid="delete-topic"]`) || b.present(`[data-testid="produce"]`) || b.present(`[data-testid="config-edit"]`) {
		t.Fatal("a reader sees admin or produce controls on the topic page")
	}
	b.check()
	for _, call := range [][3]string{{"DELETE", "/v1/topics/sensors", ""}, {"PATCH", "/v1/topics/sensors", `{"config":{"retention.ms":"1000"}}`},
		{"POST", "/v1/topics", `{"name":"x"}`}, {"GET", "/v1/cluster", ""}} {
		req := p.request(call[0], call[1], reader, call[2])
		if req.code != 403 && req.code != 404 {
			t.Fatalf("%s %s with a reader's token: %d %s", call[0], call[1], req.code, req.body)
		}
	}
}

// waitSeries waits until the node's sampler has a series the query names.
func (p *proc) waitSeries(query string) {
	p.tb.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var out struct{ Series []json.RawMessage }
		if code, err := p.do("GET", "/v1/series?"+query, "", nil, &out); err == nil && code == 200 && len(out.Series) > 0 {
			return
		}
		if time.Now().After(deadline) {
			p.tb.Fatalf("no series for %s", query)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

type answer struct {
	code int
	body string
}

// request calls the API with another token than the operator's.
func (p *proc) request(method, path, token, body string) answer {
	p.tb.Helper()
	q := *p
	q.token = token
	var raw json.RawMessage
	code, err := q.do(method, path, "application/json", []byte(body), &raw)
	if err != nil {
		p.tb.Fatalf("%s %s: %v", method, path, err)
	}
	return answer{code, string(raw)}
}
