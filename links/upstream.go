package links

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/VictoriaMetrics/metrics"
	"github.com/eddy-broker/eddy"
	"github.com/eddy-broker/eddy/multiraft/catalog"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/oauth"
	"github.com/twmb/franz-go/pkg/sasl/plain"
)

// upstream is a link's Kafka client on this node: franz-go's kgo for
// connections, SASL, TLS, version negotiation and routing, with the
// producer's identity kept by Eddy (kgo's own idempotent producer keeps
// its id and sequences in memory, and a restart would lose them). Its
// partition runners share it: one connection per target broker.
type upstream struct {
	cl   *kgo.Client
	spec catalog.LinkSpec

	mu       sync.Mutex
	meta     map[string]*topicMeta // by target topic
	connects *metrics.Counter      // connections opened (no reconnect storm)
}

type topicMeta struct {
	partitions []int32 // leader by partition
	at         time.Time
	err        error // the target's answer for the topic, when an error
}

// metaMaxAge bounds how long a partition's leader is trusted without an
// error saying it moved.
const metaMaxAge = 30 * time.Second

// maxTargetAnswer bounds an answer a link reads from its target.
const maxTargetAnswer = 4 << 20

// maxTargetMessage bounds what a link keeps of an error message of its
// target: the text goes into the partition's status, which the
// controller keeps on every node, and a target may send a megabyte.
const maxTargetMessage = 256

// maxStatusMessage bounds a partition's status error as stored.
const maxStatusMessage = 512

// clip cuts s to at most n bytes, on a rune boundary, marking the cut.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for i := len(s) - 1; i >= 0 && i >= len(s)-utf8.UTFMax; i-- {
		if utf8.RuneStart(s[i]) { // the last rune's start: drop it if cut
			if !utf8.FullRuneInString(s[i:]) {
				s = s[:i]
			}
			break
		}
	}
	return s + "..."
}

func newUpstream(l *catalog.LinkMeta, targets Targets, connects *metrics.Counter) (*upstream, error) {
	spec, name := l.LinkSpec, l.Name
	u := &upstream{spec: spec, meta: map[string]*topicMeta{}, connects: connects}
	var tlsCfg *tls.Config
	if spec.TLS {
		tlsCfg = &tls.Config{MinVersion: tls.VersionTLS12, ServerName: spec.ServerName, InsecureSkipVerify: spec.InsecureSkipVerify}
		if spec.CAPEM != "" {
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM([]byte(spec.CAPEM)) {
				return nil, eddy.Errorf(eddy.CodeInvalid, "link %s: the CA holds no PEM certificate", name)
			}
			tlsCfg.RootCAs = pool
		}
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(spec.To...),
		kgo.ClientID("eddy-link-" + name),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		// Every broker it dials, seed or advertised, as targets allow.
		kgo.Dialer(targets.dialer(l.Tenant, 10*time.Second, tlsCfg)),
		kgo.RequestTimeoutOverhead(10 * time.Second),
		// Retries are the runner's, with its backoff and jitter: kgo
		// retrying underneath would hide a down uplink from the status.
		kgo.RequestRetries(0),
		kgo.ConnIdleTimeout(5 * time.Minute),
		kgo.WithHooks(dialCounter{u}),
		// A tenant points its links where it likes, so a target's
		// answers are untrusted: kgo allocates a frame whole at the size
		// the target announces (100 MiB by default), and three links to
		// a target that announced 96 MiB frames, and sent them, grew the
		// edge's peak RSS by 578 MiB in 8 s. A link reads only small
		// answers (one topic's metadata, a produce's offsets).
		kgo.BrokerMaxReadBytes(maxTargetAnswer),
		kgo.FetchMaxBytes(maxTargetAnswer), // kgo wants reads to hold a fetch; links never fetch
	}
	switch spec.SASL {
	case "plain":
		opts = append(opts, kgo.SASL(plain.Auth{User: spec.Username, Pass: spec.Password}.AsMechanism()))
	case "oauthbearer":
		opts = append(opts, kgo.SASL(oauth.Auth{Token: spec.Password}.AsMechanism()))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, eddy.Errorf(eddy.CodeInvalid, "link %s: %v", name, err)
	}
	u.cl = cl
	return u, nil
}

func (u *upstream) close() { u.cl.Close() }

type dialCounter struct{ u *upstream }

func (d dialCounter) OnBrokerConnect(_ kgo.BrokerMetadata, _ time.Duration, _ net.Conn, err error) {
	if err == nil {
		d.u.connects.Inc()
	}
}

// upErr is an answer of the target, classified for the runner.
type upErr struct {
	kind kind
	code int16
	msg  string
	// unreachable: no answer came (the uplink or the target is down).
	unreachable bool
}

type kind int

const (
	retry       kind = iota // transient: back off a little, send the same again
	resetSeq                // the target forgot or refused the sequence: new epoch
	tooLarge                // the batch is over the target's limit: send fewer records
	missing                 // no such topic on the target
	fatal                   // auth, policy: keep failing, slowly, until someone acts
	unsupported             // the target's topic does not fit (fewer partitions)
)

func (e *upErr) Error() string { return e.msg }

func classify(code int16, context string) *upErr {
	ke := kerr.ErrorForCode(code)
	e := &upErr{code: code, msg: fmt.Sprintf("%s: %v", context, ke)}
	switch code {
	case kerr.OutOfOrderSequenceNumber.Code, kerr.UnknownProducerID.Code, kerr.InvalidProducerEpoch.Code,
		kerr.InvalidProducerIDMapping.Code, kerr.ProducerFenced.Code:
		e.kind = resetSeq
	case kerr.MessageTooLarge.Code, kerr.RecordListTooLarge.Code:
		e.kind = tooLarge
	case kerr.UnknownTopicOrPartition.Code:
		e.kind = missing
	case kerr.TopicAuthorizationFailed.Code, kerr.ClusterAuthorizationFailed.Code, kerr.SaslAuthenticationFailed.Code,
		kerr.PolicyViolation.Code, kerr.InvalidTopicException.Code, kerr.InvalidRequest.Code, kerr.CorruptMessage.Code,
		kerr.InvalidRecord.Code, kerr.UnsupportedVersion.Code, kerr.UnsupportedCompressionType.Code:
		e.kind = fatal
	default:
		if kerr.IsRetriable(ke) {
			e.kind = retry
		} else {
			e.kind = fatal
		}
	}
	return e
}

// transport wraps a client error (no answer from the target).
func transport(err error, context string) *upErr {
	if ke, ok := err.(*kerr.Error); ok {
		return classify(ke.Code, context)
	}
	var cert *tls.CertificateVerificationError
	if isAuth(err) || errors.As(err, &cert) {
		return &upErr{kind: fatal, msg: fmt.Sprintf("%s: %v", context, err)}
	}
	return &upErr{kind: retry, unreachable: true, msg: fmt.Sprintf("%s: %v", context, err)}
}

func isAuth(err error) bool {
	var ke *kerr.Error
	return errors.As(err, &ke) && (ke.Code == kerr.SaslAuthenticationFailed.Code || ke.Code == kerr.IllegalSaslState.Code)
}

// initProducer asks the target for a producer id; with a current id and
// epoch (KIP-360), for the next epoch of the same id, which fences its
// older batches.
func (u *upstream) initProducer(ctx context.Context, pid int64, epoch int16) (int64, int16, error) {
	req := kmsg.NewPtrInitProducerIDRequest()
	req.ProducerID, req.ProducerEpoch = pid, epoch
	req.TransactionTimeoutMillis = 60_000
	resp, err := u.cl.Request(ctx, req)
	if err != nil {
		return 0, 0, transport(err, "init producer id")
	}
	r := resp.(*kmsg.InitProducerIDResponse)
	if r.ErrorCode != 0 {
		return 0, 0, classify(r.ErrorCode, "init producer id")
	}
	return r.ProducerID, r.ProducerEpoch, nil
}

// leader is the broker leading the target partition, with the topic
// created (same partition count) if it is missing and the link may.
func (u *upstream) leader(ctx context.Context, topic string, p int32, sourcePartitions int32) (int32, error) {
	u.mu.Lock()
	tm := u.meta[topic]
	u.mu.Unlock()
	if tm == nil || time.Since(tm.at) > metaMaxAge {
		var err error
		if tm, err = u.refresh(ctx, topic); err != nil {
			return 0, err
		}
	}
	if tm.err != nil {
		e := tm.err.(*upErr)
		if e.kind == missing && u.spec.NoCreateTopics {
			return 0, &upErr{kind: fatal, code: e.code, msg: e.msg + " (and the link may not create topics)"}
		}
		if e.kind != missing {
			return 0, e
		}
		if err := u.create(ctx, topic, sourcePartitions); err != nil {
			return 0, err
		}
		var err error
		if tm, err = u.refresh(ctx, topic); err != nil {
			return 0, err
		}
		if tm.err != nil {
			return 0, tm.err
		}
	}
	if int(p) >= len(tm.partitions) {
		return 0, &upErr{kind: unsupported, msg: fmt.Sprintf("target topic %s has %d partitions, fewer than the source's %d (partition %d has nowhere to go)", topic, len(tm.partitions), sourcePartitions, p)}
	}
	if tm.partitions[p] < 0 {
		u.forget(topic)
		return 0, &upErr{kind: retry, msg: fmt.Sprintf("target topic %s partition %d has no leader", topic, p)}
	}
	return tm.partitions[p], nil
}

func (u *upstream) forget(topic string) {
	u.mu.Lock()
	delete(u.meta, topic)
	u.mu.Unlock()
}

func (u *upstream) refresh(ctx context.Context, topic string) (*topicMeta, error) {
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	resp, err := u.cl.Request(ctx, req)
	if err != nil {
		return nil, transport(err, "metadata")
	}
	tm := &topicMeta{at: time.Now()}
	for _, t := range resp.(*kmsg.MetadataResponse).Topics {
		if t.Topic == nil || *t.Topic != topic {
			continue
		}
		if t.ErrorCode != 0 {
			tm.err = classify(t.ErrorCode, "target topic "+topic)
			break
		}
		// The target's word, checked: a topic of n partitions numbers
		// them 0 to n-1 (an index outside was taken as one, and -1
		// ended the node), and a partition it does not name has no
		// leader.
		valid := func(p int32) bool { return p >= 0 && int(p) < len(t.Partitions) }
		n := 0
		for _, p := range t.Partitions {
			if valid(p.Partition) {
				n = max(n, int(p.Partition)+1)
			}
		}
		tm.partitions = make([]int32, n)
		for i := range tm.partitions {
			tm.partitions[i] = -1
		}
		for _, p := range t.Partitions {
			if valid(p.Partition) && (p.ErrorCode == 0 || p.ErrorCode == kerr.ReplicaNotAvailable.Code) {
				tm.partitions[p.Partition] = p.Leader
			}
		}
	}
	if tm.partitions == nil && tm.err == nil {
		tm.err = &upErr{kind: missing, code: kerr.UnknownTopicOrPartition.Code, msg: "target topic " + topic + " does not exist"}
	}
	u.mu.Lock()
	u.meta[topic] = tm
	u.mu.Unlock()
	return tm, nil
}

func (u *upstream) create(ctx context.Context, topic string, partitions int32) error {
	req := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, partitions, -1
	req.Topics = append(req.Topics, rt)
	req.TimeoutMillis = 30_000
	resp, err := u.cl.Request(ctx, req)
	if err != nil {
		return transport(err, "create topic "+topic)
	}
	for _, t := range resp.(*kmsg.CreateTopicsResponse).Topics {
		if t.ErrorCode != 0 && t.ErrorCode != kerr.TopicAlreadyExists.Code {
			e := classify(t.ErrorCode, "create target topic "+topic)
			if t.ErrorMessage != nil {
				e.msg += " (" + clip(*t.ErrorMessage, maxTargetMessage) + ")"
			}
			if e.kind == missing || e.kind == retry && t.ErrorCode != kerr.RequestTimedOut.Code {
				e.kind = fatal
			}
			return e
		}
	}
	return nil
}

// produce sends one batch to the target partition's leader and returns
// the target's first offset for it.
func (u *upstream) produce(ctx context.Context, topic string, p, sourcePartitions int32, b []byte) (int64, error) {
	leader, err := u.leader(ctx, topic, p, sourcePartitions)
	if err != nil {
		return 0, err
	}
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis = -1, 30_000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition, rp.Records = p, b
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := u.cl.Broker(int(leader)).Request(ctx, req)
	if err != nil {
		u.forget(topic)
		return 0, transport(err, "produce")
	}
	for _, t := range resp.(*kmsg.ProduceResponse).Topics {
		for _, rp := range t.Partitions {
			switch rp.ErrorCode {
			case 0, kerr.DuplicateSequenceNumber.Code:
				return rp.BaseOffset, nil
			case kerr.NotLeaderForPartition.Code, kerr.LeaderNotAvailable.Code, kerr.UnknownTopicOrPartition.Code, kerr.FencedLeaderEpoch.Code:
				u.forget(topic)
			}
			e := classify(rp.ErrorCode, "produce to "+topic)
			if rp.ErrorMessage != nil {
				e.msg += " (" + clip(*rp.ErrorMessage, maxTargetMessage) + ")"
			}
			return 0, e
		}
	}
	return 0, &upErr{kind: retry, msg: "produce: the target's answer named no partition"}
}
