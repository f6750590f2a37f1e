package kafka

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/eddy-broker/eddy"
	"github.com/eddy-broker/eddy/batch"
	"github.com/eddy-broker/eddy/ingest"
	"github.com/eddy-broker/eddy/tenants"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Produce, v3-9 (v2 record batches only: v3 is the first that carries
// them). Each partition's batches are checked as Kafka's log validator
// does (CRC-32C, magic 2, the record count; no control or transactional
// batches; a known codec; an unset max timestamp is set), decoded, and go
// through the node's one produce path (ingest: quotas, the topic's
// transform, the append), so a Kafka client is held to the same rules as
// HTTP and MQTT. The partitions of one request are appended concurrently.
//
// A partition's single batch is stored as it came: compressed as the
// producer compressed it, with its producer id, epoch and sequence, so an
// idempotent producer's retry is answered with the offset it got the first
// time (never OUT_OF_ORDER_SEQUENCE_NUMBER), a gap is
// OUT_OF_ORDER_SEQUENCE_NUMBER and an older epoch INVALID_PRODUCER_EPOCH.
// A batch naming a producer id that InitProducerId did not hand out (a
// node's own, say) is UNKNOWN_PRODUCER_ID: no client can write into the
// deduplication state of the node's HTTP and MQTT appends. Topics with a
// transform, or stamped at LogAppendTime, store the records as the node
// encodes them.
//
// acks=1 and acks=-1 both answer once the records are committed by Raft
// (a majority of the partition's replicas); acks=0 gets no answer. A rate
// quota throttles (the answer waits, ThrottleMillis says how long) rather
// than fails; the storage quota is POLICY_VIOLATION, a full disk
// KAFKA_STORAGE_ERROR, a transform's refusal INVALID_RECORD.

func init() { registerPipelined(0, 3, 9, serveProduce) }

// maxConcurrentAppends bounds the partitions of one produce request
// appended at once.
const maxConcurrentAppends = 16

// serveProduce serves a produce request, calling queued once every
// partition's batches are queued for their append, in order behind the
// connection's earlier requests (pipeline.go), or refused. The records
// point into the request's frame; once the request's context has ended,
// an append given up on may still hold them in its partition's queue, so
// the frame is reported held (left to the collector, not reused).
func serveProduce(c *conn, req kmsg.Request, queued func()) (kmsg.Response, bool, error) {
	r := req.(*kmsg.ProduceRequest)
	resp := r.ResponseKind().(*kmsg.ProduceResponse)
	timeout := min(time.Duration(r.TimeoutMillis)*time.Millisecond, c.l.cfg.RequestTimeout)
	if timeout <= 0 {
		timeout = c.l.cfg.RequestTimeout
	}
	ctx, cancel := c.ctx(timeout)
	defer cancel()
	var wg, queuing sync.WaitGroup
	var mu sync.Mutex
	var throttle time.Duration
	// Partitions are appended concurrently, a bounded number at a time: a
	// request may name thousands (or the same one thousands of times).
	slots := make(chan struct{}, maxConcurrentAppends)
	// What refuses the whole request, each partition answered with it.
	var refuse int16
	var refusal error
	switch {
	case r.Version >= 13: // topics by id: not kept
		refuse = errUnsupportedVersion
	case r.TransactionID != nil:
		refuse, refusal = errTransactionalIDAuthorization, errNoTransactions
	case r.Acks != 0 && r.Acks != 1 && r.Acks != -1:
		refuse = errInvalidRequiredAcks
	}
	for _, rt := range r.Topics {
		t := kmsg.NewProduceResponseTopic()
		t.Topic = rt.Topic
		t.Partitions = make([]kmsg.ProduceResponseTopicPartition, len(rt.Partitions))
		topicCode, topicErr := refuse, refusal
		if refuse == errNone {
			if _, err := c.topic(rt.Topic, tenants.Produce); err != nil {
				topicCode, topicErr = kafkaCode(err), err
			}
		}
		for i, rp := range rt.Partitions {
			out := &t.Partitions[i]
			*out = kmsg.NewProduceResponseTopicPartition()
			out.Partition, out.BaseOffset, out.LogAppendTime, out.LogStartOffset = rp.Partition, -1, -1, -1
			fail := func(code int16, err error) { out.ErrorCode, out.ErrorMessage = code, errMessage(err) }
			if topicCode != errNone {
				fail(topicCode, topicErr)
				continue
			}
			recs, one, err := decodeProduce(rp.Records)
			if err == nil && one != nil {
				if pid := producerID(one); pid >= 0 && !c.l.b.KafkaProducer(pid) {
					err = eddy.Errorf(eddy.CodeInvalid, "producer id %d was not handed out by InitProducerId", pid)
					fail(errUnknownProducerID, err)
					continue
				}
			}
			if err != nil {
				fail(produceCode(err), err)
				continue
			}
			wg.Add(1)
			queuing.Add(1)
			slots <- struct{}{}
			go func() {
				pctx := eddy.WithQueued(ctx, queuing.Done)
				defer func() { eddy.Queued(pctx); <-slots; wg.Done() }()
				ref := eddy.TopicRef{Tenant: c.tenant, Name: eddy.TopicName(rt.Topic)}
				res, waited, err := c.produce(pctx, ref, eddy.Partition(rp.Partition), recs, one)
				mu.Lock()
				throttle = max(throttle, waited)
				mu.Unlock()
				if err != nil {
					fail(produceCode(err), err)
					if strings.HasPrefix(string(eddy.ErrorCode(err)), "transform_") {
						// The transform refused the batch: every record
						// of it (KIP-467), so a client fails them all.
						for i := range recs {
							er := kmsg.NewProduceResponseTopicPartitionErrorRecord()
							er.RelativeOffset, er.ErrorMessage = int32(i), out.ErrorMessage
							out.ErrorRecords = append(out.ErrorRecords, er)
						}
					}
					return
				}
				if len(res.Offsets) > 0 {
					out.BaseOffset = int64(res.Offsets[0].BaseOffset)
				}
			}()
		}
		resp.Topics = append(resp.Topics, t)
	}
	queuing.Wait()
	queued()
	wg.Wait()
	held := ctx.Err() != nil
	resp.ThrottleMillis = int32(throttle.Milliseconds())
	if r.Acks == 0 {
		return nil, held, nil
	}
	return resp, held, nil
}

// produce appends records through ingest. A rate quota's refusal waits
// the time it names and tries again, within the request's timeout: the
// client is throttled, not failed. It returns how long it waited so.
func (c *conn) produce(ctx context.Context, ref eddy.TopicRef, p eddy.Partition, recs []eddy.Record, one []byte) (ingest.Result, time.Duration, error) {
	parts := make([]eddy.Partition, len(recs))
	for i := range parts {
		parts[i] = p
	}
	var waited time.Duration
	for {
		res, err := c.l.prod.Produce(ctx, ingest.Request{Ref: ref, Records: recs, Parts: parts, Batch: one})
		if err == nil {
			return res, waited, nil
		}
		e := eddy.AsError(err)
		if e.Code != eddy.CodeQuotaExceeded || e.RetryAfterMs <= 0 {
			return res, waited, err
		}
		d := time.Duration(e.RetryAfterMs) * time.Millisecond
		select {
		case <-time.After(d):
			waited += d
		case <-ctx.Done():
			return res, waited, err
		}
	}
}

// decodeProduce checks and decodes a partition's record batches. When
// they are one batch, it returns it too (its max timestamp set if the
// producer left it below its records').
func decodeProduce(b []byte) ([]eddy.Record, []byte, error) {
	if len(b) == 0 {
		return nil, nil, eddy.Errorf(eddy.CodeInvalid, "no records")
	}
	var frs []eddy.FetchedRecord
	batches := 0
	err := batch.Split(b, func(h batch.Header, one []byte) error {
		if h.Attributes&attrControl != 0 || h.Attributes&attrTransactional != 0 {
			return eddy.Errorf(eddy.CodeInvalid, "transactional and control batches are not supported")
		}
		before := len(frs)
		var err error
		if frs, err = batch.DecodeVerified(frs, one); err != nil {
			return err
		}
		if n := len(frs) - before; n != int(h.NumRecords) || h.LastOffsetDelta != h.NumRecords-1 {
			return eddy.Errorf(eddy.CodeInvalid, "a batch says %d records (last offset delta %d) and holds %d", h.NumRecords, h.LastOffsetDelta, n)
		}
		maxTs := h.MaxTimestamp
		for _, fr := range frs[before:] {
			maxTs = max(maxTs, fr.Timestamp)
		}
		if maxTs != h.MaxTimestamp && h.Attributes&attrLogAppendTime == 0 {
			batch.SetMaxTimestamp(one, maxTs)
		}
		batches++
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	now := time.Now().UnixMilli()
	recs := make([]eddy.Record, len(frs))
	for i := range frs {
		recs[i] = frs[i].Record
		if recs[i].Timestamp < 0 {
			recs[i].Timestamp = now
		}
	}
	if batches != 1 {
		b = nil
	}
	return recs, b, nil
}

// producerID is a batch's producer id (-1: not idempotent).
func producerID(b []byte) int64 {
	h, _ := batch.ParseHeader(b)
	return h.ProducerID
}

// Batch attribute bits the validator refuses.
const (
	attrLogAppendTime = 0x08
	attrTransactional = 0x10
	attrControl       = 0x20
)

// produceCode is a produce refusal's Kafka code: a batch that is not
// valid is CORRUPT_MESSAGE (a bad CRC) or INVALID_RECORD.
func produceCode(err error) int16 {
	switch eddy.ErrorCode(err) {
	case eddy.CodeCorrupt:
		return errCorruptMessage
	case eddy.CodeInvalid:
		return errInvalidRecord
	}
	return kafkaCode(err)
}
