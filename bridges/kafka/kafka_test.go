package kafka

import (
	"bufio"
	"context"
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/eddy-broker/eddy"
	"github.com/eddy-broker/eddy/batch"
	"github.com/eddy-broker/eddy/ingest"
	"github.com/eddy-broker/eddy/internal/testhost"
	"github.com/eddy-broker/eddy/multiraft"
	"github.com/eddy-broker/eddy/multiraft/catalog"
	"github.com/eddy-broker/eddy/tenants"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// env is a real one-node host, its produce path and the listener on
// loopback, with an operator token minted for the default tenant.
type env struct {
	t      *testing.T
	h      *multiraft.Host
	l      *Listener
	signer *tenants.Signer
	token  string
}

func newEnv(t *testing.T) *env { return newEnvWith(t, nil) }

// newEnvWith is newEnv with the listener's configuration changed by set.
func newEnvWith(t *testing.T, set func(*Config)) *env {
	t.Helper()
	h := testhost.Start(t)
	signer := testhost.Signer(t, h, "test")
	v := &tenants.Verifier{Audience: "test", Keys: h.Key, Incarnation: h.Incarnation}
	cfg := Config{Addr: "127.0.0.1:0", Verifier: v, GroupInitialRebalanceDelay: 200 * time.Millisecond,
		AuthTimeout: 2 * time.Second, MaxRequestBytes: 1 << 20}
	if set != nil {
		set(&cfg)
	}
	l := New(cfg, ingest.New(h, h, nil, tenants.NewLimiter(nil), metrics.NewSet()), h)
	if err := l.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		l.Close(ctx)
	})
	e := &env{t: t, h: h, l: l, signer: signer}
	e.token = e.mint("default", "operator")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := h.CreateTopic(ctx, eddy.DefaultTenant, catalog.TopicSpec{Name: "t", Partitions: 2, ReplicationFactor: 1}); err != nil {
		t.Fatal(err)
	}
	testhost.Ready(t, h)
	return e
}

func (e *env) mint(tenant eddy.TenantID, scopes ...string) string {
	tok, _, err := e.signer.Issue(tenant, "test", scopes, time.Hour)
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

// client is a bare Kafka client: requests framed by kmsg, one at a time.
type client struct {
	t    *testing.T
	nc   net.Conn
	br   *bufio.Reader
	corr int32
}

func (e *env) dial() *client {
	nc, err := net.Dial("tcp", e.l.Addr())
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(20 * time.Second))
	return &client{t: e.t, nc: nc, br: bufio.NewReader(nc)}
}

// login authenticates with SASL/PLAIN (handshake v1, authenticate v2).
func (e *env) login(tenant, token string) *client {
	c := e.dial()
	hs := kmsg.NewPtrSASLHandshakeRequest()
	hs.Version, hs.Mechanism = 1, "PLAIN"
	if r := c.do(hs).(*kmsg.SASLHandshakeResponse); r.ErrorCode != 0 {
		e.t.Fatalf("handshake: %d", r.ErrorCode)
	}
	au := kmsg.NewPtrSASLAuthenticateRequest()
	au.Version, au.SASLAuthBytes = 2, []byte("\x00"+tenant+"\x00"+token)
	if r := c.do(au).(*kmsg.SASLAuthenticateResponse); r.ErrorCode != 0 {
		e.t.Fatalf("authenticate: %d %v", r.ErrorCode, r.ErrorMessage)
	}
	return c
}

// send writes a request; recv reads the answer to it.
func (c *client) send(req kmsg.Request) int32 {
	c.corr++
	b := kmsg.NewRequestFormatter(kmsg.FormatterClientID("test")).AppendRequest(nil, req, c.corr)
	if _, err := c.nc.Write(b); err != nil {
		c.t.Fatal(err)
	}
	return c.corr
}

func (c *client) recv(req kmsg.Request, corr int32) (kmsg.Response, error) {
	var hdr [8]byte
	if _, err := io.ReadFull(c.br, hdr[:]); err != nil {
		return nil, err
	}
	body := make([]byte, binary.BigEndian.Uint32(hdr[:])-4)
	if _, err := io.ReadFull(c.br, body); err != nil {
		return nil, err
	}
	if got := int32(binary.BigEndian.Uint32(hdr[4:])); got != corr {
		c.t.Fatalf("correlation %d, want %d", got, corr)
	}
	resp := req.ResponseKind()
	resp.SetVersion(req.GetVersion())
	if resp.IsFlexible() && req.Key() != apiVersionsKey {
		var err error
		if body, err = skipTags(body); err != nil {
			return nil, err
		}
	}
	return resp, resp.ReadFrom(body)
}

func (c *client) do(req kmsg.Request) kmsg.Response {
	c.t.Helper()
	resp, err := c.recv(req, c.send(req))
	if err != nil {
		c.t.Fatalf("%s v%d: %v", kmsg.NameForKey(req.Key()), req.GetVersion(), err)
	}
	return resp
}

// closed reports whether the server closed the connection.
func (c *client) closed() bool {
	c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := c.br.ReadByte()
	return err != nil
}

// TestApiVersions: every version from 0 to 3 answers with the table; a
// version above is answered with a v0 body and UNSUPPORTED_VERSION, and
// the keys, so the client can retry lower (KIP-511). The ranges hold the
// minimums old clients gate features on.
func TestApiVersions(t *testing.T) {
	e := newEnv(t)
	c := e.dial()
	for v := int16(0); v <= 3; v++ {
		req := kmsg.NewPtrApiVersionsRequest()
		req.Version = v
		if v >= 3 {
			req.ClientSoftwareName, req.ClientSoftwareVersion = "test", "1"
		}
		resp := c.do(req).(*kmsg.ApiVersionsResponse)
		if resp.ErrorCode != 0 || len(resp.ApiKeys) != len(apis) {
			t.Fatalf("v%d: error %d, %d keys", v, resp.ErrorCode, len(resp.ApiKeys))
		}
	}
	req := kmsg.NewPtrApiVersionsRequest()
	req.Version = 4
	corr := c.send(req)
	v0 := kmsg.NewPtrApiVersionsRequest() // the answer is a v0 body
	resp, err := c.recv(v0, corr)
	if err != nil || resp.(*kmsg.ApiVersionsResponse).ErrorCode != errUnsupportedVersion || len(resp.(*kmsg.ApiVersionsResponse).ApiKeys) == 0 {
		t.Fatalf("v4: %+v %v", resp, err)
	}
	// A version to come may change its header: one of v99 with a v1
	// header (no tag section) and no body is answered the same way.
	raw := []byte{0, 0, 0, 10, 0, apiVersionsKey, 0, 99, 0, 0, 0, 77, 0xff, 0xff}
	if _, err := c.nc.Write(raw); err != nil {
		t.Fatal(err)
	}
	if resp, err := c.recv(v0, 77); err != nil || resp.(*kmsg.ApiVersionsResponse).ErrorCode != errUnsupportedVersion {
		t.Fatalf("v99 without tags: %+v %v", resp, err)
	}
	for key, min := range map[int16]int16{0: 3, 1: 4, 2: 1, 3: 0, 17: 0, 18: 0, 19: 0, 20: 0, 36: 0} {
		if a, ok := apis[key]; !ok || a.min > min {
			t.Errorf("%s: served from v%d, old clients need v%d", kmsg.NameForKey(key), a.min, min)
		}
	}
}

// TestAuthentication: nothing but ApiVersions and SASL before a login (the
// connection closes); a bad token is SASL_AUTHENTICATION_FAILED with the
// reason; a good one gives the session's lifetime; a v0 handshake takes
// the token as a bare frame.
func TestAuthentication(t *testing.T) {
	e := newEnv(t)
	c := e.dial()
	c.send(kmsg.NewPtrMetadataRequest())
	if !c.closed() {
		t.Fatal("metadata before authentication was served")
	}

	c = e.dial()
	hs := kmsg.NewPtrSASLHandshakeRequest()
	hs.Version, hs.Mechanism = 1, "SCRAM-SHA-256"
	if r := c.do(hs).(*kmsg.SASLHandshakeResponse); r.ErrorCode != errUnsupportedSASLMechanism || len(r.SupportedMechanisms) != 2 {
		t.Fatalf("unknown mechanism: %+v", r)
	}
	hs.Mechanism = "PLAIN"
	if r := c.do(hs).(*kmsg.SASLHandshakeResponse); r.ErrorCode != 0 || len(r.SupportedMechanisms) != 2 {
		t.Fatalf("PLAIN: %+v", r)
	}
	au := kmsg.NewPtrSASLAuthenticateRequest()
	au.Version, au.SASLAuthBytes = 1, []byte("\x00default\x00nope")
	if r := c.do(au).(*kmsg.SASLAuthenticateResponse); r.ErrorCode != errSASLAuthenticationFailed || r.ErrorMessage == nil {
		t.Fatalf("bad token: %+v", r)
	}
	if !c.closed() {
		t.Fatal("the connection stayed open after a failed authentication")
	}
	handshake := func() *client {
		c := e.dial()
		if r := c.do(hs).(*kmsg.SASLHandshakeResponse); r.ErrorCode != 0 {
			t.Fatalf("PLAIN: %+v", r)
		}
		return c
	}
	c = handshake()
	au.SASLAuthBytes = []byte("\x00acme\x00" + e.mint("default", "admin"))
	if r := c.do(au).(*kmsg.SASLAuthenticateResponse); r.ErrorCode != errSASLAuthenticationFailed {
		t.Fatalf("a default tenant's token for acme: %+v", r)
	}
	c = handshake()
	au.SASLAuthBytes = []byte("\x00default\x00" + e.token)
	r := c.do(au).(*kmsg.SASLAuthenticateResponse)
	if r.ErrorCode != 0 || r.SessionLifetimeMillis <= 0 || r.SessionLifetimeMillis > time.Hour.Milliseconds() {
		t.Fatalf("good token: %+v", r)
	}
	if m := c.do(kmsg.NewPtrMetadataRequest()).(*kmsg.MetadataResponse); len(m.Topics) != 1 {
		t.Fatalf("metadata after login: %d topics", len(m.Topics))
	}

	// OAUTHBEARER: the JWT as the bearer token, the tenant as authzid (or
	// the token's own).
	for _, gs2 := range []string{"n,a=default,", "n,,"} {
		c = e.dial()
		ob := kmsg.NewPtrSASLHandshakeRequest()
		ob.Version, ob.Mechanism = 1, "OAUTHBEARER"
		if r := c.do(ob).(*kmsg.SASLHandshakeResponse); r.ErrorCode != 0 {
			t.Fatalf("OAUTHBEARER handshake: %+v", r)
		}
		au.SASLAuthBytes = []byte(gs2 + "\x01auth=Bearer " + e.mint("default", "consume:t") + "\x01\x01")
		if r := c.do(au).(*kmsg.SASLAuthenticateResponse); r.ErrorCode != 0 {
			t.Fatalf("OAUTHBEARER %q: %+v", gs2, r)
		}
		if m := c.do(kmsg.NewPtrMetadataRequest()).(*kmsg.MetadataResponse); len(m.Topics) != 1 {
			t.Fatalf("metadata after OAUTHBEARER: %d topics", len(m.Topics))
		}
	}

	// v0: the bare token follows the handshake; success is an empty frame.
	c = e.dial()
	hs.Version = 0
	c.do(hs)
	tok := []byte("\x00default\x00" + e.token)
	c.nc.Write(binary.BigEndian.AppendUint32(nil, uint32(len(tok))))
	c.nc.Write(tok)
	var empty [4]byte
	if _, err := io.ReadFull(c.br, empty[:]); err != nil || binary.BigEndian.Uint32(empty[:]) != 0 {
		t.Fatalf("v0 token answer: %v %v", empty, err)
	}
	req := kmsg.NewPtrMetadataRequest()
	req.Version = 0
	if m := c.do(req).(*kmsg.MetadataResponse); len(m.Topics) != 1 {
		t.Fatalf("metadata v0: %d topics", len(m.Topics))
	}
}

// TestProduceFetchEveryVersion: a batch produced at each end of Produce's
// range is read back at each end of Fetch's, and found by ListOffsets.
func TestProduceFetchEveryVersion(t *testing.T) {
	e := newEnv(t)
	c := e.login("default", e.token)
	now := time.Now().UnixMilli()
	var sent []eddy.Record
	for _, v := range []int16{3, 9} {
		recs := []eddy.Record{{Key: []byte("k"), Value: []byte("produce v" + string(rune('0'+v))), Timestamp: now + int64(v)}}
		sent = append(sent, recs...)
		req := kmsg.NewPtrProduceRequest()
		req.Version, req.Acks, req.TimeoutMillis = v, -1, 5000
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic = "t"
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Partition, rp.Records = 1, batch.Append(nil, recs, batch.Options{ProducerID: -1})
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp := c.do(req).(*kmsg.ProduceResponse)
		if p := resp.Topics[0].Partitions[0]; p.ErrorCode != 0 || p.BaseOffset != int64(len(sent)-1) {
			t.Fatalf("produce v%d: error %d, base offset %d", v, p.ErrorCode, p.BaseOffset)
		}
	}
	for _, v := range []int16{4, 12} {
		req := kmsg.NewPtrFetchRequest()
		req.Version, req.MaxWaitMillis, req.MaxBytes, req.SessionEpoch = v, 100, 1<<20, -1
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic = "t"
		for p := int32(0); p < 2; p++ {
			rp := kmsg.NewFetchRequestTopicPartition()
			rp.Partition, rp.PartitionMaxBytes = p, 1<<20
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
		resp := c.do(req).(*kmsg.FetchResponse)
		empty, full := resp.Topics[0].Partitions[0], resp.Topics[0].Partitions[1]
		if empty.ErrorCode != 0 || empty.RecordBatches == nil || len(empty.RecordBatches) != 0 {
			t.Fatalf("fetch v%d: the empty partition: %+v", v, empty)
		}
		got, err := batch.Decode(nil, full.RecordBatches[:mustSize(t, full.RecordBatches)])
		if err != nil || full.HighWatermark != 2 {
			t.Fatalf("fetch v%d: %v, high watermark %d", v, err, full.HighWatermark)
		}
		if string(got[0].Value) != string(sent[0].Value) {
			t.Fatalf("fetch v%d: %q", v, got[0].Value)
		}
	}
	for _, v := range []int16{1, 7} {
		for ts, want := range map[int64]int64{-2: 0, -1: 2, now + 5: 1, now + 100: -1} {
			req := kmsg.NewPtrListOffsetsRequest()
			req.Version, req.ReplicaID = v, -1
			rt := kmsg.NewListOffsetsRequestTopic()
			rt.Topic = "t"
			rp := kmsg.NewListOffsetsRequestTopicPartition()
			rp.Partition, rp.Timestamp = 1, ts
			rt.Partitions = append(rt.Partitions, rp)
			req.Topics = append(req.Topics, rt)
			p := c.do(req).(*kmsg.ListOffsetsResponse).Topics[0].Partitions[0]
			if p.ErrorCode != 0 || p.Offset != want {
				t.Fatalf("list offsets v%d at %d: error %d, offset %d, want %d", v, ts, p.ErrorCode, p.Offset, want)
			}
		}
	}
}

func mustSize(t *testing.T, b []byte) int {
	h, err := batch.ParseHeader(b)
	if err != nil {
		t.Fatal(err)
	}
	return h.Size()
}

// TestTenantsApart: a tenant's connection sees none of another tenant's
// topics: absent from Metadata, and unknown to every call, exactly as a
// name that does not exist; a token without the topic's scope is
// TOPIC_AUTHORIZATION_FAILED.
func TestTenantsApart(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if _, err := e.h.CreateTenant(ctx, "acme", tenants.Quotas{}); err != nil {
		t.Fatal(err)
	}
	acme := e.login("acme", e.mint("acme", "admin"))
	if m := acme.do(kmsg.NewPtrMetadataRequest()).(*kmsg.MetadataResponse); len(m.Topics) != 0 {
		t.Fatalf("acme lists %d topics", len(m.Topics))
	}
	for _, name := range []string{"t", "nothing-here"} {
		md := kmsg.NewPtrMetadataRequest()
		md.Topics = []kmsg.MetadataRequestTopic{{Topic: kmsg.StringPtr(name)}}
		if m := acme.do(md).(*kmsg.MetadataResponse); m.Topics[0].ErrorCode != errUnknownTopicOrPartition {
			t.Fatalf("metadata of %s: %d", name, m.Topics[0].ErrorCode)
		}
		f := kmsg.NewPtrFetchRequest()
		f.Version = 11
		f.Topics = []kmsg.FetchRequestTopic{{Topic: name, Partitions: []kmsg.FetchRequestTopicPartition{{Partition: 0, PartitionMaxBytes: 1000}}}}
		if r := acme.do(f).(*kmsg.FetchResponse); r.Topics[0].Partitions[0].ErrorCode != errUnknownTopicOrPartition {
			t.Fatalf("fetch of %s: %d", name, r.Topics[0].Partitions[0].ErrorCode)
		}
	}
	apisSeen := acme.otherTenantsTopic(t, "t", "nothing-here")
	if apisSeen < 10 {
		t.Fatalf("only %d APIs compared", apisSeen)
	}
	reader := e.login("default", e.mint("default", "consume:t"))
	pr := kmsg.NewPtrProduceRequest()
	pr.Version, pr.Acks, pr.TimeoutMillis = 7, 1, 1000
	pr.Topics = []kmsg.ProduceRequestTopic{{Topic: "t", Partitions: []kmsg.ProduceRequestTopicPartition{{Partition: 0,
		Records: batch.Append(nil, []eddy.Record{{Value: []byte("x")}}, batch.Options{ProducerID: -1})}}}}
	if r := reader.do(pr).(*kmsg.ProduceResponse); r.Topics[0].Partitions[0].ErrorCode != errTopicAuthorization {
		t.Fatalf("produce without the scope: %d", r.Topics[0].Partitions[0].ErrorCode)
	}
}

// FuzzRequest: any frame is answered or closes the connection; none
// panics the decoder.
func FuzzRequest(f *testing.F) {
	md := kmsg.NewPtrMetadataRequest()
	md.Version = 12
	f.Add(kmsg.NewRequestFormatter().AppendRequest(nil, md, 1)[4:])
	pr := kmsg.NewPtrProduceRequest()
	pr.Version = 9
	pr.Topics = []kmsg.ProduceRequestTopic{{Topic: "t", Partitions: []kmsg.ProduceRequestTopicPartition{{Records: batch.Append(nil, []eddy.Record{{Value: []byte("x")}}, batch.Options{ProducerID: -1})}}}}
	f.Add(kmsg.NewRequestFormatter().AppendRequest(nil, pr, 1)[4:])
	f.Fuzz(func(t *testing.T, frame []byte) {
		_, req, body, err := parseHeader(frame)
		if err != nil || req == nil {
			return
		}
		if req.ReadFrom(body) != nil {
			return
		}
		if p, ok := req.(*kmsg.ProduceRequest); ok {
			for _, tp := range p.Topics {
				for _, pp := range tp.Partitions {
					decodeProduce(append([]byte(nil), pp.Records...))
				}
			}
		}
	})
}

// TestHostileFrames: an oversized frame (before and after a login), a
// frame too short for a header, an unknown API key and a connection that
// never authenticates are each closed; the listener goes on serving.
func TestHostileFrames(t *testing.T) {
	e := newEnv(t)
	frame := func(c *client, b []byte) {
		c.nc.Write(binary.BigEndian.AppendUint32(nil, uint32(len(b))))
		c.nc.Write(b)
	}
	c := e.dial()
	c.nc.Write(binary.BigEndian.AppendUint32(nil, 1<<20)) // before a login: over 64 KiB
	if !c.closed() {
		t.Fatal("a 1 MiB frame before authentication was read")
	}
	c = e.login("default", e.token)
	c.nc.Write(binary.BigEndian.AppendUint32(nil, 2<<20)) // over MaxRequestBytes
	if !c.closed() {
		t.Fatal("a frame over max_body_bytes was read")
	}
	c = e.login("default", e.token)
	frame(c, []byte{0, 3, 0})
	if !c.closed() {
		t.Fatal("a frame shorter than a header was served")
	}
	c = e.login("default", e.token)
	frame(c, []byte{0x7f, 0x00, 0, 0, 0, 0, 0, 1, 0xff, 0xff})
	if !c.closed() {
		t.Fatal("an unknown API key was served")
	}
	c = e.dial()
	start := time.Now()
	if !c.closed() || time.Since(start) > 4*time.Second {
		t.Fatalf("a connection that never authenticated stayed %v", time.Since(start))
	}
	if m := e.login("default", e.token).do(kmsg.NewPtrMetadataRequest()).(*kmsg.MetadataResponse); len(m.Topics) != 1 {
		t.Fatal("the listener stopped serving")
	}
}

// otherTenantsTopic asks every API that names a topic about another
// tenant's topic and about a topic that exists nowhere, and fails unless
// both answers are UNKNOWN_TOPIC_OR_PARTITION (or, for groups, the same
// as for a group that does not exist). It returns how many APIs it asked.
func (c *client) otherTenantsTopic(t *testing.T, theirs, none string) int {
	t.Helper()
	ask := map[string]func(topic string) int16{
		"Metadata": func(topic string) int16 {
			r := kmsg.NewPtrMetadataRequest()
			r.Version, r.Topics = 12, []kmsg.MetadataRequestTopic{{Topic: kmsg.StringPtr(topic)}}
			return c.do(r).(*kmsg.MetadataResponse).Topics[0].ErrorCode
		},
		"Produce": func(topic string) int16 {
			r := kmsg.NewPtrProduceRequest()
			r.Version, r.Acks, r.TimeoutMillis = 9, -1, 1000
			r.Topics = []kmsg.ProduceRequestTopic{{Topic: topic, Partitions: []kmsg.ProduceRequestTopicPartition{{Partition: 0,
				Records: batch.Append(nil, []eddy.Record{{Value: []byte("x")}}, batch.Options{ProducerID: -1})}}}}
			return c.do(r).(*kmsg.ProduceResponse).Topics[0].Partitions[0].ErrorCode
		},
		"Fetch": func(topic string) int16 {
			r := kmsg.NewPtrFetchRequest()
			r.Version = 12
			r.Topics = []kmsg.FetchRequestTopic{{Topic: topic, Partitions: []kmsg.FetchRequestTopicPartition{{Partition: 0, PartitionMaxBytes: 1000}}}}
			return c.do(r).(*kmsg.FetchResponse).Topics[0].Partitions[0].ErrorCode
		},
		"ListOffsets": func(topic string) int16 {
			r := kmsg.NewPtrListOffsetsRequest()
			r.Version = 7
			r.Topics = []kmsg.ListOffsetsRequestTopic{{Topic: topic, Partitions: []kmsg.ListOffsetsRequestTopicPartition{{Partition: 0, Timestamp: -1}}}}
			return c.do(r).(*kmsg.ListOffsetsResponse).Topics[0].Partitions[0].ErrorCode
		},
		"OffsetCommit": func(topic string) int16 {
			r := kmsg.NewPtrOffsetCommitRequest()
			r.Version, r.Group, r.Generation = 8, "probe", -1
			r.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: topic, Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: 1}}}}
			return c.do(r).(*kmsg.OffsetCommitResponse).Topics[0].Partitions[0].ErrorCode
		},
		"OffsetFetch": func(topic string) int16 {
			r := kmsg.NewPtrOffsetFetchRequest()
			r.Version, r.Group = 7, "probe"
			r.Topics = []kmsg.OffsetFetchRequestTopic{{Topic: topic, Partitions: []int32{0}}}
			return c.do(r).(*kmsg.OffsetFetchResponse).Topics[0].Partitions[0].ErrorCode
		},
		"DescribeConfigs": func(topic string) int16 {
			r := kmsg.NewPtrDescribeConfigsRequest()
			r.Version, r.Resources = 4, []kmsg.DescribeConfigsRequestResource{{ResourceType: resourceTopic, ResourceName: topic}}
			return c.do(r).(*kmsg.DescribeConfigsResponse).Resources[0].ErrorCode
		},
		"IncrementalAlterConfigs": func(topic string) int16 {
			r := kmsg.NewPtrIncrementalAlterConfigsRequest()
			r.Version = 1
			r.Resources = []kmsg.IncrementalAlterConfigsRequestResource{{ResourceType: resourceTopic, ResourceName: topic,
				Configs: []kmsg.IncrementalAlterConfigsRequestResourceConfig{{Name: "retention.ms", Value: kmsg.StringPtr("1000")}}}}
			return c.do(r).(*kmsg.IncrementalAlterConfigsResponse).Resources[0].ErrorCode
		},
		"CreatePartitions": func(topic string) int16 {
			r := kmsg.NewPtrCreatePartitionsRequest()
			r.Version, r.Topics = 3, []kmsg.CreatePartitionsRequestTopic{{Topic: topic, Count: 9}}
			return c.do(r).(*kmsg.CreatePartitionsResponse).Topics[0].ErrorCode
		},
		"DeleteTopics": func(topic string) int16 {
			r := kmsg.NewPtrDeleteTopicsRequest()
			r.Version, r.TopicNames = 5, []string{topic}
			return c.do(r).(*kmsg.DeleteTopicsResponse).Topics[0].ErrorCode
		},
	}
	for name, fn := range ask {
		a, b := fn(theirs), fn(none)
		if a != errUnknownTopicOrPartition || b != errUnknownTopicOrPartition {
			t.Errorf("%s: another tenant's topic %d, no topic %d; want %d for both", name, a, b, errUnknownTopicOrPartition)
		}
	}
	return len(ask)
}

// TestTopicIDVersions: versions that name topics by id (not kept here),
// above the advertised ranges, are answered UNSUPPORTED_VERSION in the
// body rather than misread or dropped.
func TestTopicIDVersions(t *testing.T) {
	e := newEnv(t)
	c := e.login("default", e.token)
	pr := kmsg.NewPtrProduceRequest()
	pr.Version, pr.Acks, pr.TimeoutMillis = 13, -1, 1000
	pr.Topics = []kmsg.ProduceRequestTopic{{TopicID: [16]byte{1}, Partitions: []kmsg.ProduceRequestTopicPartition{{Partition: 0,
		Records: batch.Append(nil, []eddy.Record{{Value: []byte("x")}}, batch.Options{ProducerID: -1})}}}}
	if r := c.do(pr).(*kmsg.ProduceResponse); r.Topics[0].Partitions[0].ErrorCode != errUnsupportedVersion {
		t.Fatalf("produce v13: %d", r.Topics[0].Partitions[0].ErrorCode)
	}
	fr := kmsg.NewPtrFetchRequest()
	fr.Version = 13
	if r := c.do(fr).(*kmsg.FetchResponse); r.ErrorCode != errUnsupportedVersion {
		t.Fatalf("fetch v13: %d", r.ErrorCode)
	}
	of := kmsg.NewPtrOffsetFetchRequest()
	of.Version, of.Groups = 10, []kmsg.OffsetFetchRequestGroup{{Group: "g"}}
	if r := c.do(of).(*kmsg.OffsetFetchResponse); r.Groups[0].ErrorCode != errUnsupportedVersion {
		t.Fatalf("offset fetch v10: %d", r.Groups[0].ErrorCode)
	}
}
