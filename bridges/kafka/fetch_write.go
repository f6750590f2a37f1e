package kafka

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"net"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// A fetch's answer is mostly the record batches read from the segments.
// Encoding it whole copied every batch into the answer's buffer (a new
// one for each large answer, zeroed first): a fifth of the node's CPU
// under a consumer reading from the start. Instead each partition's
// batches are swapped for a marker while the rest is encoded, and the
// answer is written as the encoding with the batches in the markers'
// places (one writev), as they were read.

// batchesMarker stands in for a partition's record batches while an
// answer is encoded. It is random, so nothing else in an answer (a topic's
// name, a message) can be it but by a chance of 2^-128, and the length
// before it is checked as well.
var batchesMarker = func() []byte {
	b := make([]byte, 16)
	rand.Read(b)
	return b
}()

// respondFetch writes a fetch's answer, its batches spliced in (above).
func (c *conn) respondFetch(h header, resp *kmsg.FetchResponse) error {
	var parts []*kmsg.FetchResponseTopicPartition
	var batches [][]byte
	for ti := range resp.Topics {
		for pi := range resp.Topics[ti].Partitions {
			if p := &resp.Topics[ti].Partitions[pi]; len(p.RecordBatches) > 0 {
				parts, batches = append(parts, p), append(batches, p.RecordBatches)
				p.RecordBatches = batchesMarker
			}
		}
	}
	b := c.encode(h, resp)
	for i, p := range parts {
		p.RecordBatches = batches[i]
	}
	out, ok := splice(b, batches, resp.IsFlexible())
	if !ok { // not seen: encoded whole, as any answer
		b = c.encode(h, resp)
		err := c.write(b)
		c.keep(b)
		return err
	}
	c.nc.SetWriteDeadline(time.Now().Add(c.l.cfg.IdleTimeout))
	_, err := out.WriteTo(c.nc)
	c.keep(b)
	return err
}

// splice returns the framed answer b with batches in place of the
// markers, in order, each with its length, and b's size made the whole
// answer's; false if b does not hold the markers as encoded (a length
// before each: an int32 of 16, or, flexible, the uvarint 17).
func splice(b []byte, batches [][]byte, flexible bool) (net.Buffers, bool) {
	out := append(make(net.Buffers, 0, 3*len(batches)+2), b[:4])
	lens := make([]byte, 0, 5*len(batches)) // never grown: the slices of it stay put
	size := len(b) - 4
	rest := b[4:]
	was := binary.BigEndian.AppendUint32(nil, uint32(len(batchesMarker))) // the marker's length as encoded
	if flexible {
		was = []byte{byte(len(batchesMarker) + 1)}
	}
	for _, bs := range batches {
		i := bytes.Index(rest, batchesMarker)
		start := len(lens)
		if flexible {
			lens = binary.AppendUvarint(lens, uint64(len(bs)+1))
		} else {
			lens = binary.BigEndian.AppendUint32(lens, uint32(len(bs)))
		}
		if i < len(was) || !bytes.Equal(rest[i-len(was):i], was) {
			return nil, false
		}
		out = append(out, rest[:i-len(was)], lens[start:], bs)
		size += len(lens) - start + len(bs) - len(was) - len(batchesMarker)
		rest = rest[i+len(batchesMarker):]
	}
	binary.BigEndian.PutUint32(b, uint32(size))
	return append(out, rest), true
}
