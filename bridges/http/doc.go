// Package httpapi is Eddy's data-plane HTTP API on fasthttp: produce
// (through ingest), fetch, consumer groups, tails, and the admin
// resources (tenants, tokens, topics, transforms, cluster). It is named
// httpapi so it does not shadow net/http; the directory is bridges/http.
package httpapi
