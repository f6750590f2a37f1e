package e2e

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/eddy-broker/eddy"
	"github.com/eddy-broker/eddy/batch"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestKafkaHostileRequests: every API and version the node advertises,
// asked with random field values (counts, partitions and offsets at
// their extremes, names of other tenants' topics, of nothing, or
// megabytes long, record batches whole, torn or random, versions past
// the newest), some frames then torn at random. Each is answered or
// its connection closed; the node stays up throughout and serves a
// well-formed client at the end. EDDY_FUZZ_SEED replays a run.
func TestKafkaHostileRequests(t *testing.T) {
	p := newProc(t)
	p.start()
	p.mustCreateTopic("mine", 2)
	acme := p.otherTenant()
	f := &kfuzz{rng: fuzzRand(t), names: []string{"mine", "theirs", "nothing-here", "", "__consumer_offsets", "a/../b", "ü",
		string(make([]byte, 300)), string(make([]byte, 1<<20))}}
	f.batches = [][]byte{
		batch.Append(nil, []eddy.Record{{Value: []byte("x")}}, batch.Options{ProducerID: -1}),
		batch.Append(nil, []eddy.Record{{Key: []byte("k"), Value: []byte("v")}}, batch.Options{ProducerID: 5, BaseSequence: 3}),
	}
	versions := kafkaVersions(t, p)
	if len(versions) < 10 {
		t.Fatalf("the node advertises %d APIs", len(versions))
	}
	keys := make([]int16, 0, len(versions))
	for k := range versions {
		keys = append(keys, k)
	}
	slices.Sort(keys) // a seed replays the same requests
	deadline := time.Now().Add(40 * time.Second)
	var c *kconn
	sent, answered, closed := 0, 0, 0
	for i := 0; i < 4000 && time.Now().Before(deadline); i++ {
		if c == nil {
			tenant, token := "default", p.token
			if i%3 == 1 {
				tenant, token = "acme", acme
			}
			var err error
			if c, err = kafkaLogin(p.kafkaAddr, tenant, token); err != nil {
				t.Fatalf("login after %d requests: %v\n%s", sent, err, p.diag())
			}
		}
		key := keys[f.rng.IntN(len(keys))]
		req := kmsg.RequestForKey(key)
		vr := versions[key]
		v := vr[0] + int16(f.rng.IntN(int(vr[1]-vr[0])+1))
		if f.rng.IntN(20) == 0 {
			v = vr[1] + 1 + int16(f.rng.IntN(3))
		}
		req.SetVersion(v)
		f.budget, f.flexible = 2<<20, req.IsFlexible()
		f.fill(reflect.ValueOf(req).Elem(), 0)
		if pr, ok := req.(*kmsg.ProduceRequest); ok && pr.Acks == 0 {
			pr.Acks = 1 // acks 0 has no answer to wait for
		}
		frame := kmsg.NewRequestFormatter(kmsg.FormatterClientID("fuzz")).AppendRequest(nil, req, int32(i))
		if f.rng.IntN(8) == 0 && len(frame) > 12 { // torn: a byte changed past the header's length
			frame[8+f.rng.IntN(len(frame)-8)] ^= byte(1 + f.rng.IntN(255))
		}
		sent++
		if c.roundTrip(frame) {
			answered++
		} else {
			closed++
			c.nc.Close()
			c = nil
		}
		if !p.alive() {
			t.Fatalf("the node died at request %d (key %d v%d)\n%s", i, key, v, p.diag())
		}
	}
	if c != nil {
		c.nc.Close()
	}
	// What the requests held of the node's request memory is given back.
	for held := p.metric("eddy_request_memory_bytes"); held != 0; held = p.metric("eddy_request_memory_bytes") {
		if time.Now().After(deadline.Add(20 * time.Second)) {
			t.Fatalf("%.0f bytes of request memory still held after the fuzz", held)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("%d requests: %d answered, %d closed their connection", sent, answered, closed)
	if answered < sent/4 {
		t.Fatalf("only %d of %d requests answered: the fuzzer asks mostly what a parser refuses", answered, sent)
	}
	// A well-formed client is served as before (in a topic of its own:
	// the fuzz may have deleted the others).
	p.mustCreateTopic("after", 1)
	if out, err := p.kcat("default", p.token, "after\n", "-P", "-t", "after", "-X", "acks=all"); err != nil {
		t.Fatalf("produce after the fuzz: %v %s\n%s", err, out, p.diag())
	}
	if out, err := p.kcat("default", p.token, "", "-C", "-t", "after", "-o", "beginning", "-e", "-q"); err != nil || !strings.Contains(out, "after") {
		t.Fatalf("consume after the fuzz: %v %q", err, out)
	}
}

// kfuzz fills kmsg requests with hostile values.
type kfuzz struct {
	rng      *rand.Rand
	names    []string
	batches  [][]byte
	budget   int  // bytes a request may still take in long names and arrays
	flexible bool // compact strings: a name longer than 32767 bytes can be sent
}

func (f *kfuzz) fill(v reflect.Value, depth int) {
	for i := 0; i < v.NumField(); i++ {
		name := v.Type().Field(i).Name
		if name == "Version" || name == "UnknownTags" || !v.Field(i).CanSet() {
			continue
		}
		f.value(v.Field(i), name, depth)
	}
}

func (f *kfuzz) value(v reflect.Value, name string, depth int) {
	switch v.Kind() {
	case reflect.Bool:
		v.SetBool(f.rng.IntN(2) == 0)
	case reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(f.int(v.Type().Bits()))
	case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(uint64(f.int(v.Type().Bits())))
	case reflect.Float64:
		v.SetFloat([]float64{0, -1, math.NaN(), math.Inf(1), 1e300}[f.rng.IntN(5)])
	case reflect.String:
		v.SetString(f.name())
	case reflect.Pointer:
		if f.rng.IntN(3) == 0 {
			return // nil: a nullable field left out
		}
		p := reflect.New(v.Type().Elem())
		f.value(p.Elem(), name, depth)
		v.Set(p)
	case reflect.Array: // a topic ID
		for i := 0; i < v.Len(); i++ {
			v.Index(i).SetUint(uint64(f.rng.IntN(256)))
		}
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			v.SetBytes(f.bytes(name))
			return
		}
		n := f.rng.IntN(4)
		if depth > 3 {
			n = 0
		} else if f.rng.IntN(40) == 0 && f.budget > 0 {
			n = 2000 // a long array
			f.budget -= 64 << 10
		}
		s := reflect.MakeSlice(v.Type(), n, n)
		for i := 0; i < n; i++ {
			f.value(s.Index(i), name, depth+1)
		}
		v.Set(s)
	case reflect.Struct:
		f.fill(v, depth+1)
	}
}

// int is an integer of bits bits, mostly at an edge.
func (f *kfuzz) int(bits int) int64 {
	lim := int64(1)<<(bits-1) - 1
	switch f.rng.IntN(8) {
	case 0:
		return lim
	case 1:
		return -lim - 1
	case 2:
		return -1
	case 3:
		return 0
	case 4:
		return 1
	default:
		return f.rng.Int64N(min(lim, 1<<20))
	}
}

func (f *kfuzz) name() string {
	if f.rng.IntN(40) == 0 && f.budget >= 1<<20 {
		f.budget -= 1 << 20
		if !f.flexible {
			return f.names[len(f.names)-1][:32767] // the longest an int16 length says
		}
		return f.names[len(f.names)-1] // a megabyte
	}
	return f.names[f.rng.IntN(len(f.names)-1)]
}

// bytes is a record batch (whole, torn or trailed by more), random bytes
// or nothing.
func (f *kfuzz) bytes(name string) []byte {
	b := append([]byte(nil), f.batches[f.rng.IntN(len(f.batches))]...)
	switch f.rng.IntN(6) {
	case 0:
		return nil
	case 1:
		return b[:f.rng.IntN(len(b))]
	case 2:
		b[f.rng.IntN(len(b))] ^= 0xff
		return b
	case 3:
		r := make([]byte, f.rng.IntN(200))
		for i := range r {
			r[i] = byte(f.rng.IntN(256))
		}
		return r
	case 4:
		return append(b, b...)
	}
	return b
}

// kconn is a raw Kafka connection.
type kconn struct{ nc net.Conn }

// kafkaLogin connects and authenticates with SASL/PLAIN.
func kafkaLogin(addr, tenant, token string) (*kconn, error) {
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	c := &kconn{nc: nc}
	hs := kmsg.NewPtrSASLHandshakeRequest()
	hs.Version, hs.Mechanism = 1, "PLAIN"
	au := kmsg.NewPtrSASLAuthenticateRequest()
	au.Version, au.SASLAuthBytes = 2, []byte("\x00"+tenant+"\x00"+token)
	for i, req := range []kmsg.Request{hs, au} {
		resp, err := c.do(req, int32(i))
		if err != nil {
			nc.Close()
			return nil, err
		}
		code := int16(0)
		switch r := resp.(type) {
		case *kmsg.SASLHandshakeResponse:
			code = r.ErrorCode
		case *kmsg.SASLAuthenticateResponse:
			code = r.ErrorCode
		}
		if code != 0 {
			nc.Close()
			return nil, fmt.Errorf("%T: error %d", resp, code)
		}
	}
	return c, nil
}

// do sends req and decodes its answer.
func (c *kconn) do(req kmsg.Request, id int32) (kmsg.Response, error) {
	if _, err := c.nc.Write(kmsg.NewRequestFormatter().AppendRequest(nil, req, id)); err != nil {
		return nil, err
	}
	body, err := c.read()
	if err != nil {
		return nil, err
	}
	resp := req.ResponseKind()
	body = body[4:] // the correlation id
	if resp.IsFlexible() && resp.Key() != 18 {
		body = body[1:] // the response header's tags (none; ApiVersions has none at all)
	}
	return resp, resp.ReadFrom(body)
}

// roundTrip sends a frame and reports whether an answer came (false: the
// connection was closed, or nothing came within 5 s: a torn frame may have
// become acks=0).
func (c *kconn) roundTrip(frame []byte) bool {
	if _, err := c.nc.Write(frame); err != nil {
		return false
	}
	_, err := c.read()
	return err == nil
}

func (c *kconn) read() ([]byte, error) {
	c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	var n [4]byte
	if _, err := io.ReadFull(c.nc, n[:]); err != nil {
		return nil, err
	}
	size := binary.BigEndian.Uint32(n[:])
	if size < 4 || size > 64<<20 {
		return nil, fmt.Errorf("answer of %d bytes", size)
	}
	body := make([]byte, size)
	_, err := io.ReadFull(c.nc, body)
	return body, err
}

// kafkaVersions asks the node which APIs and versions it serves.
func kafkaVersions(t *testing.T, p *proc) map[int16][2]int16 {
	t.Helper()
	nc, err := net.DialTimeout("tcp", p.kafkaAddr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	req := kmsg.NewPtrApiVersionsRequest()
	req.Version = 3
	req.ClientSoftwareName, req.ClientSoftwareVersion = "fuzz", "1"
	resp, err := (&kconn{nc: nc}).do(req, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int16][2]int16{}
	for _, k := range resp.(*kmsg.ApiVersionsResponse).ApiKeys {
		if k.ApiKey == 17 || k.ApiKey == 36 { // SASL: asked once, at login
			continue
		}
		out[k.ApiKey] = [2]int16{k.MinVersion, k.MaxVersion}
	}
	return out
}

// fuzzRand is a fuzz test's randomness, from a seed it logs
// (EDDY_FUZZ_SEED replays a run).
func fuzzRand(t *testing.T) *rand.Rand {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("EDDY_FUZZ_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	t.Logf("seed %d (EDDY_FUZZ_SEED=%d replays it)", seed, seed)
	return rand.New(rand.NewPCG(seed, 0))
}

// otherTenant makes tenant acme, with a topic theirs and a token to
// produce and consume, and returns the token.
func (p *proc) otherTenant() string {
	p.tb.Helper()
	token := p.tenantToken("acme", "produce:*", "consume:*")
	if code, err := p.do("POST", "/v1/tenants/acme/topics", "application/json", []byte(`{"name":"theirs"}`), nil); err != nil || code != 201 {
		p.tb.Fatalf("acme's topic: %d %v", code, err)
	}
	return token
}

// TestKafkaConnectionsPerTenant: a tenant's authenticated Kafka
// connections on a node are bounded by its max_connections quota, so a
// tenant connecting from many addresses cannot take the node's Kafka
// connections from the others: with 2 allowed the third login is refused
// with the reason, another tenant still logs in, and one closed makes
// room.
func TestKafkaConnectionsPerTenant(t *testing.T) {
	p := newProc(t)
	p.start()
	acme := p.otherTenant()
	if code, err := p.do("PATCH", "/v1/tenants/acme", "application/json", []byte(`{"quotas":{"max_connections":2}}`), nil); err != nil || code != 200 {
		t.Fatalf("quotas: %d %v", code, err)
	}
	var conns []*kconn
	for i := range 2 {
		c, err := kafkaLogin(p.kafkaAddr, "acme", acme)
		if err != nil {
			t.Fatalf("login %d: %v", i, err)
		}
		conns = append(conns, c)
	}
	if _, err := kafkaLogin(p.kafkaAddr, "acme", acme); err == nil || !strings.Contains(err.Error(), "error 58") {
		t.Fatalf("a third login over max_connections 2: %v, want SASL_AUTHENTICATION_FAILED (58)", err)
	}
	other, err := kafkaLogin(p.kafkaAddr, "default", p.token)
	if err != nil {
		t.Fatalf("another tenant's login: %v", err)
	}
	other.nc.Close()
	conns[0].nc.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := kafkaLogin(p.kafkaAddr, "acme", acme)
		if err == nil {
			c.nc.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a login after one of the two closed: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	conns[1].nc.Close()
}
