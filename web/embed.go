// Package web is the console: its files, embedded in the binary and served
// by the HTTP listener under /console/ (bridges/http mounts Handler; the
// pages speak only the public /v1 API, with the token the user gives).
// No build step: the app is plain ES modules beside vendored Preact, htm
// and uPlot (vendor/VERSIONS pins them; vendor/update.sh re-vendors).
package web

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"path"
	"strings"
	"sync"

	"github.com/valyala/fasthttp"
)

//go:embed static vendor/*.mjs vendor/*.js vendor/*.css
var embedded embed.FS

// Headers every console response carries: scripts and styles only from
// the binary (no inline script, no CDN), no framing, no referrer, no
// sniffing. Styles set through the DOM (Preact's, uPlot's) are allowed by
// style-src 'self'; attribute styles in markup are not used.
var headers = [][2]string{
	{"Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
		"frame-ancestors 'none'; base-uri 'none'; form-action 'none'; object-src 'none'"},
	{"X-Content-Type-Options", "nosniff"},
	{"Referrer-Policy", "no-referrer"},
	{"X-Frame-Options", "DENY"},
	{"Cache-Control", "no-cache"}, // revalidated by ETag: a new binary serves new files at once
}

// File is one console file, with its gzipped form when that is smaller.
type File struct {
	Body, Gzip []byte
	Type, ETag string
}

// Files are the console's files by their path under /console/
// ("index.html", "app/main.js", "vendor/preact.mjs", ...). They are read
// and compressed on the first call (the first console request), not when
// the binary starts: compressing them costs about 30 ms and 19 MB of
// short-lived heap, which every CLI command and every node that never
// serves the console would pay, and a start's heap peak stays in its RSS.
var Files = sync.OnceValue(load)

func load() map[string]*File {
	out := map[string]*File{}
	var gz bytes.Buffer
	w, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression) // one compressor for all
	err := fs.WalkDir(embedded, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := embedded.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		f := &File{Body: body, ETag: `"` + hex.EncodeToString(sum[:8]) + `"`, Type: mime.TypeByExtension(path.Ext(p))}
		switch path.Ext(p) {
		case ".mjs", ".js":
			f.Type = "text/javascript; charset=utf-8"
		case ".css":
			f.Type = "text/css; charset=utf-8"
		case ".html":
			f.Type = "text/html; charset=utf-8"
		}
		gz.Reset()
		w.Reset(&gz)
		w.Write(body)
		w.Close()
		if gz.Len() < len(body) {
			f.Gzip = bytes.Clone(gz.Bytes())
		}
		out[strings.TrimPrefix(p, "static/")] = f
		return nil
	})
	if err != nil {
		panic("web: embedded files: " + err.Error())
	}
	return out
}

// Handler serves the files; the request path's part after prefix names
// the file ("" is index.html). Unknown paths are 404, other methods 405.
func Handler(prefix string) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		defer func() { // after ctx.Error, which resets the headers
			for _, h := range headers {
				ctx.Response.Header.Set(h[0], h[1])
			}
		}()
		if !ctx.IsGet() && !ctx.IsHead() {
			ctx.Error("method not allowed", fasthttp.StatusMethodNotAllowed)
			return
		}
		name := strings.TrimPrefix(string(ctx.Path()), prefix)
		if name == "" {
			name = "index.html"
		}
		f := Files()[name]
		if f == nil {
			ctx.Error("not found", fasthttp.StatusNotFound)
			return
		}
		ctx.Response.Header.Set("ETag", f.ETag)
		ctx.SetContentType(f.Type)
		ctx.Response.Header.Set("Vary", "Accept-Encoding")
		if string(ctx.Request.Header.Peek("If-None-Match")) == f.ETag {
			ctx.SetStatusCode(fasthttp.StatusNotModified)
			return
		}
		if f.Gzip != nil && ctx.Request.Header.HasAcceptEncoding("gzip") {
			ctx.Response.Header.Set("Content-Encoding", "gzip")
			ctx.SetBody(f.Gzip)
			return
		}
		ctx.SetBody(f.Body)
	}
}
