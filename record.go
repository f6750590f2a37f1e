package eddy

// Header is one record header. Headers are ordered and keys may repeat, as
// in Kafka.
type Header struct {
	Key   string
	Value []byte
}

// Record is one event. Key and Value may be nil (null), which is distinct
// from empty. Timestamp is milliseconds since the Unix epoch: the producer's
// create time, or the time the receiving node stamped it.
type Record struct {
	Key       []byte
	Value     []byte
	Headers   []Header
	Timestamp int64
}

// Size is the record's payload size in bytes (key, value and headers), the
// figure max.message.bytes and quotas are measured against.
func (r *Record) Size() int {
	n := len(r.Key) + len(r.Value)
	for _, h := range r.Headers {
		n += len(h.Key) + len(h.Value)
	}
	return n
}

// FetchedBatches are whole Kafka record batches read from a partition, as
// stored: the first holds the requested offset (and may start before it).
// A consumer that speaks the format (a Kafka fetch, a forwarded read)
// takes them unchanged.
type FetchedBatches struct {
	Batches       []byte
	LogStart      int64
	HighWatermark int64
	// Pooled: Batches is a buffer of internal/bufpool (a segment's read),
	// which its holder may give back once nothing refers to it.
	Pooled bool
}

// FetchedRecord is a record read back from a partition, with its offset.
type FetchedRecord struct {
	Offset Offset
	Record
}
