package web

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path"
	"regexp"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

// TestVendoredFiles: every vendored file is the one VERSIONS pins (its
// sha256), so an edit by hand or a partial update shows.
func TestVendoredFiles(t *testing.T) {
	f, err := os.Open("vendor/VERSIONS")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	pinned := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.Fields(sc.Text())
		if len(line) == 0 || strings.HasPrefix(line[0], "#") {
			continue
		}
		name, want := line[0], line[1]
		file := Files()["vendor/"+name]
		if file == nil {
			t.Errorf("%s is pinned but not embedded", name)
			continue
		}
		sum := sha256.Sum256(file.Body)
		if got := hex.EncodeToString(sum[:]); got != want {
			t.Errorf("%s: sha256 %s, VERSIONS pins %s (run vendor/update.sh)", name, got, want)
		}
		pinned++
	}
	for name := range Files() {
		if strings.HasPrefix(name, "vendor/") {
			pinned--
		}
	}
	if pinned != 0 {
		t.Errorf("embedded vendor files and VERSIONS differ in number (%d)", pinned)
	}
}

// TestBudget: the whole console, gzipped as served, stays within about
// 100 KB, so a gateway serves it at once over a slow link.
func TestBudget(t *testing.T) {
	const budget = 100 << 10
	total := 0
	for _, f := range Files() {
		if f.Gzip != nil {
			total += len(f.Gzip)
		} else {
			total += len(f.Body)
		}
	}
	t.Logf("console: %d files, %d bytes gzipped", len(Files()), total)
	if total > budget {
		t.Errorf("the console is %d bytes gzipped, over its budget of %d", total, budget)
	}
}

// TestReferencesResolve: every script, style and module the page and the
// modules name is embedded (a typo would only show in a browser).
func TestReferencesResolve(t *testing.T) {
	ref := regexp.MustCompile(`(?:src|href)="([^"#:]+)"|from\s*['"](\.[^'"]+)['"]|import\s*['"](\.[^'"]+)['"]`)
	for name, f := range Files() {
		if !strings.HasSuffix(name, ".html") && !strings.HasSuffix(name, ".js") && !strings.HasSuffix(name, ".mjs") {
			continue
		}
		for _, m := range ref.FindAllStringSubmatch(string(f.Body), -1) {
			target := m[1] + m[2] + m[3]
			resolved := path.Clean(path.Join(path.Dir(name), target))
			if Files()[resolved] == nil {
				t.Errorf("%s names %s (%s), which is not embedded", name, target, resolved)
			}
		}
	}
}

// TestHandler: the index at the prefix, gzip when asked, ETag
// revalidation, the strict headers on every answer, 404 and 405.
func TestHandler(t *testing.T) {
	h := Handler("/console/")
	get := func(method, p string, hdr ...string) *fasthttp.RequestCtx {
		var ctx fasthttp.RequestCtx
		ctx.Request.Header.SetMethod(method)
		ctx.Request.SetRequestURI(p)
		for i := 0; i+1 < len(hdr); i += 2 {
			ctx.Request.Header.Set(hdr[i], hdr[i+1])
		}
		h(&ctx)
		return &ctx
	}
	idx := get("GET", "/console/", "Accept-Encoding", "gzip")
	if idx.Response.StatusCode() != 200 || string(idx.Response.Header.Peek("Content-Encoding")) != "gzip" ||
		!strings.HasPrefix(string(idx.Response.Header.ContentType()), "text/html") {
		t.Fatalf("index: %d %s", idx.Response.StatusCode(), idx.Response.Header.String())
	}
	csp := string(idx.Response.Header.Peek("Content-Security-Policy"))
	if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Fatalf("CSP: %s", csp)
	}
	if string(idx.Response.Header.Peek("X-Content-Type-Options")) != "nosniff" || string(idx.Response.Header.Peek("Referrer-Policy")) != "no-referrer" {
		t.Fatalf("headers: %s", idx.Response.Header.String())
	}
	etag := string(idx.Response.Header.Peek("ETag"))
	if again := get("GET", "/console/index.html", "If-None-Match", etag); again.Response.StatusCode() != 304 {
		t.Fatalf("revalidation: %d", again.Response.StatusCode())
	}
	if js := get("GET", "/console/vendor/preact.mjs"); !strings.HasPrefix(string(js.Response.Header.ContentType()), "text/javascript") {
		t.Fatalf("module type: %s", js.Response.Header.ContentType())
	}
	if nf := get("GET", "/console/nope.js"); nf.Response.StatusCode() != 404 || len(nf.Response.Header.Peek("Content-Security-Policy")) == 0 {
		t.Fatalf("missing file: %d", nf.Response.StatusCode())
	}
	if post := get("POST", "/console/"); post.Response.StatusCode() != 405 {
		t.Fatalf("POST: %d", post.Response.StatusCode())
	}
	// No inline script anywhere (the CSP would block it).
	inline := regexp.MustCompile(`<script(?:\s+type="module")?>|\son[a-z]+="`)
	if loc := inline.FindString(string(Files()["index.html"].Body)); loc != "" {
		t.Fatalf("index.html has inline script: %s", loc)
	}
}
