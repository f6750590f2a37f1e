package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/eddy-broker/eddy/batch"

	"github.com/eddy-broker/eddy"
	httpapi "github.com/eddy-broker/eddy/bridges/http"
	"github.com/eddy-broker/eddy/node"
	"github.com/spf13/cobra"
)

// client talks to a node's HTTP API, through the API's own client.
type client struct {
	*httpapi.Client
	token string
}

// newClient resolves the server and token: a flag wins, then EDDY_SERVER /
// EDDY_TOKEN, then the profile (--profile, EDDY_PROFILE or the current one),
// then the default server.
func newClient(cmd *cobra.Command) *client {
	var prof node.Profile
	var unusable error // why no request can be made (no token, a bad CA file), named with its fix
	if ps, path, err := node.LoadProfiles(); err == nil {
		name, _ := cmd.Flags().GetString("profile")
		if name == "" {
			name = os.Getenv("EDDY_PROFILE")
		}
		if name == "" {
			name = ps.Current
		}
		var ok bool
		if prof, ok = ps.Profiles[name]; !ok && name != "" {
			unusable = fmt.Errorf("no token: profile %q does not exist in %s (eddy profile list; eddy profile use NAME)", name, path)
		}
	}
	s, _ := cmd.Flags().GetString("server")
	if !cmd.Flags().Changed("server") {
		if v := os.Getenv("EDDY_SERVER"); v != "" {
			s = v
		} else if prof.Server != "" {
			s = prof.Server
		}
	}
	s = strings.TrimRight(s, "/")
	if !strings.Contains(s, "://") {
		s = "http://" + s
	}
	tok, _ := cmd.Flags().GetString("token")
	if !cmd.Flags().Changed("token") {
		if v := os.Getenv("EDDY_TOKEN"); v != "" {
			tok = v
		} else if t, err := prof.TokenOf(); err == nil {
			tok = t
		} else if unusable == nil {
			unusable = fmt.Errorf("no token: the profile's token file cannot be read (%v); pass --token, set EDDY_TOKEN, or fix the profile (eddy profile list)", err)
		}
	}
	if tok == "" && unusable == nil {
		unusable = fmt.Errorf("no token: pass --token, set EDDY_TOKEN, or use a profile that has one (eddy profile list; eddy serve writes profile local with its admin token)")
	}
	if tok != "" {
		unusable = nil
	}
	tr := &http.Transport{MaxIdleConnsPerHost: 256, MaxConnsPerHost: 0, IdleConnTimeout: 90 * time.Second}
	caFile, _ := cmd.Flags().GetString("ca-file")
	if !cmd.Flags().Changed("ca-file") {
		if v := os.Getenv("EDDY_CA_FILE"); v != "" {
			caFile = v
		} else {
			caFile = prof.CAFile
		}
	}
	if caFile != "" {
		pool, err := trusted(caFile)
		if err != nil {
			unusable, tok = err, "" // said at the first request
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool}
	}
	return &client{token: tok, Client: &httpapi.Client{Base: s, HC: &http.Client{Transport: tr},
		Token: func() (string, error) { return tok, unusable }}}
}

// trusted is the system's roots and the certificates in a PEM file.
func trusted(file string) (*x509.CertPool, error) {
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("the CA file: %w", err)
	}
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("the CA file %s holds no PEM certificate", file)
	}
	return pool, nil
}

// apiError is an error answer from the API.
type apiError = httpapi.APIError

// do sends a request and decodes a JSON answer into out (if non-nil).
func (c *client) do(ctx context.Context, method, path, contentType string, body []byte, out any) error {
	return c.JSON(ctx, method, path, contentType, body, out)
}

func (c *client) getJSON(ctx context.Context, path string, out any) error {
	return c.do(ctx, http.MethodGet, path, "", nil, out)
}

func topicPath(topic string) string { return "/v1/topics/" + url.PathEscape(topic) }

type partitionInfo struct {
	Partition     int32    `json:"partition"`
	LogStart      int64    `json:"log_start_offset"`
	HighWatermark int64    `json:"high_watermark"`
	Leader        uint64   `json:"leader"`
	Replicas      []uint64 `json:"replicas"`
	Bytes         int64    `json:"size_bytes"`
	Quarantined   string   `json:"quarantined,omitempty"`
}

type topicInfo struct {
	Name              string            `json:"name"`
	Tenant            string            `json:"tenant"`
	Partitions        int32             `json:"partitions"`
	ReplicationFactor int               `json:"replication_factor"`
	Config            map[string]string `json:"config"`
	PartitionInfo     []partitionInfo   `json:"partition_info"`
	Transform         *bindingInfo      `json:"transform,omitempty"`
}

type bindingInfo struct {
	Module          string          `json:"module"`
	Version         int             `json:"version,omitempty"`
	RunsVersion     int             `json:"runs_version,omitempty"`
	Config          json.RawMessage `json:"config,omitempty"`
	OnError         string          `json:"on_error"`
	DeadLetterTopic string          `json:"dead_letter_topic,omitempty"`
	Status          *struct {
		Breaker        string         `json:"breaker"`
		InstancesLive  int            `json:"instances_live"`
		RecordsIn      uint64         `json:"records_in"`
		RecordsOut     uint64         `json:"records_out"`
		RecordsDropped uint64         `json:"records_dropped"`
		Errors         map[string]int `json:"errors"`
		LastError      string         `json:"last_error"`
	} `json:"status,omitempty"`
}

// describeBinding prints a topic's transform binding.
func describeBinding(w io.Writer, b *bindingInfo) {
	v := "latest"
	if b.Version > 0 {
		v = fmt.Sprint(b.Version)
	}
	fmt.Fprintf(w, "TRANSFORM     %s (version %s, runs %d), on error %s", b.Module, v, b.RunsVersion, b.OnError)
	if b.DeadLetterTopic != "" {
		fmt.Fprintf(w, " -> %s", b.DeadLetterTopic)
	}
	fmt.Fprintln(w)
	if len(b.Config) > 0 {
		fmt.Fprintf(w, "  config      %s\n", b.Config)
	}
	if s := b.Status; s != nil {
		fmt.Fprintf(w, "  this node   breaker %s, %d instance(s), records in %d, out %d, dropped %d, errors %s\n",
			s.Breaker, s.InstancesLive, s.RecordsIn, s.RecordsOut, s.RecordsDropped, countsText(s.Errors))
		if s.LastError != "" {
			fmt.Fprintf(w, "  last error  %s\n", s.LastError)
		}
	}
}

type fetchedRecord struct {
	Offset        int64           `json:"offset"`
	Timestamp     int64           `json:"timestamp"`
	Key           json.RawMessage `json:"key"`
	KeyEncoding   string          `json:"key_encoding,omitempty"`
	Value         json.RawMessage `json:"value"`
	ValueEncoding string          `json:"value_encoding,omitempty"`
	Headers       json.RawMessage `json:"headers,omitempty"`
}

type fetchResp struct {
	Records       []fetchedRecord `json:"records"`
	NextOffset    int64           `json:"next_offset"`
	HighWatermark int64           `json:"high_watermark"`
}

func (c *client) fetch(ctx context.Context, topic string, p int32, offset int64, max, waitMs int) (*fetchResp, error) {
	var fr fetchResp
	path := fmt.Sprintf("%s/partitions/%d/records?offset=%d&max=%d&wait_ms=%d", topicPath(topic), p, offset, max, waitMs)
	err := c.getJSON(ctx, path, &fr)
	return &fr, err
}

// fetchBatches reads raw record batches from offset and decodes them (CRC
// check and record decoding, as a Kafka client does). It returns the records
// at or after offset, their value bytes, and the next offset.
func (c *client) fetchBatches(ctx context.Context, topic string, p int32, offset int64) (n, valueBytes, next int64, err error) {
	path := fmt.Sprintf("%s/partitions/%d/records?offset=%d&max_bytes=%d&format=batches", topicPath(topic), p, offset, 8<<20)
	resp, body, err := c.Do(ctx, http.MethodGet, path, "", nil)
	if err != nil {
		return 0, 0, 0, err
	}
	next, _ = strconv.ParseInt(resp.Header.Get("Eddy-Next-Offset"), 10, 64)
	var recs []eddy.FetchedRecord
	err = batch.Split(body, func(_ batch.Header, b []byte) error {
		recs, err = batch.DecodeVerified(recs[:0], b)
		for _, r := range recs {
			if int64(r.Offset) >= offset {
				n++
				valueBytes += int64(len(r.Value))
			}
		}
		return err
	})
	return n, valueBytes, next, err
}

// countsText prints counts by kind, "none" when there are none.
func countsText(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}
