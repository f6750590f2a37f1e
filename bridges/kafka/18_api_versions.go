package kafka

import (
	"maps"
	"slices"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// ApiVersions, v0-3: the keys and version ranges of versions.go. Served
// before authentication. Its response header is always v0 (conn.respond);
// a version above 3 is answered with a v0 body, UNSUPPORTED_VERSION and
// the key list (KIP-511), so the client retries lower.

const apiVersionsKey = 18

func init() { register(apiVersionsKey, 0, 3, true, handleApiVersions) }

func handleApiVersions(c *conn, req kmsg.Request) (kmsg.Response, error) {
	resp := apiVersionsResponse(errNone)
	resp.Version = req.GetVersion()
	return resp, nil
}

func apiVersionsResponse(code int16) *kmsg.ApiVersionsResponse {
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.ErrorCode = code
	for _, k := range slices.Sorted(maps.Keys(apis)) {
		a := apis[k]
		resp.ApiKeys = append(resp.ApiKeys, kmsg.ApiVersionsResponseApiKey{ApiKey: k, MinVersion: a.min, MaxVersion: a.max})
	}
	return resp
}
