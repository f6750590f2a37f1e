package mqtt

import (
	"strings"
	"sync"
	"sync/atomic"

	"github.com/eddy-broker/eddy"
	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// mochi drops a publish to a topic name it finds invalid ($SYS/..., a
// wildcard) without a word, so a QoS 1 client waits for a PUBACK that never
// comes. OnPacketRead marks such publishes (and those over a limit mochi
// does not know) by prefixing the topic with NUL and a letter; OnACLCheck
// lets a marked topic through and OnPublish refuses it with its reason
// code, like any other refused publish. No client topic can carry the
// mark: a topic with a NUL is itself refused ([MQTT-4.7.3-2]).
const (
	markInvalidTopic = "\x00t"
	markProperties   = "\x00p"
	markOverQuota    = "\x00q" // a subscription past the connection's bounds (subscribe.go)
)

// refusal returns the refusal a marked topic carries, nil if unmarked.
func refusal(topic string) error {
	if len(topic) < 2 || topic[0] != 0 {
		return nil
	}
	if topic[:2] == markProperties {
		return eddy.Errorf(eddy.CodeRecordTooLarge, "too many user properties")
	}
	return eddy.Errorf(eddy.CodeInvalid, "topic %q cannot be published to (a $ topic, a wildcard, or a NUL)", topic[2:])
}

// validTopicName reports whether a device may name topic in a publish
// (or a will): no wildcard, no $SYS, no NUL.
func validTopicName(topic string) bool {
	return mochi.IsValidFilter(topic, true) && strings.IndexByte(topic, 0) < 0
}

// OnPacketRead counts the packets mochi reads (replayConn.drained),
// marks publishes to be refused (see above), and gives back
// the send quota of a PUBACK mochi no longer tracks: a delivery it held
// for the client's receive maximum is sent later and dropped from its
// inflight at once, so its PUBACK would not return the quota and the
// subscriber would stall after a burst.
func (h *hook) OnPacketRead(cl *mochi.Client, pk packets.Packet) (packets.Packet, error) {
	if rc, ok := cl.Net.Conn.(*replayConn); ok {
		rc.read++ // before any return: drained counts every packet
	}
	if pk.FixedHeader.Type == packets.Puback {
		if _, tracked := cl.State.Inflight.Get(pk.PacketID); !tracked {
			cl.State.Inflight.IncreaseSendQuota()
		}
		return pk, nil
	}
	if pk.FixedHeader.Type == packets.Disconnect {
		if s := h.l.session(cl); s != nil {
			if pk.Properties.SessionExpiryIntervalFlag {
				s.expiry.Store(pk.Properties.SessionExpiryInterval) // 0 ends a persistent session
			}
			s.saidGoodbye.Store(pk.ReasonCode == 0) // 0x04: "disconnect with will message"
		}
		return pk, nil
	}
	if t := pk.FixedHeader.Type; t == packets.Subscribe || t == packets.Unsubscribe {
		if s := h.l.session(cl); s != nil {
			pk.PacketID = s.swaps.free(cl, pk.PacketID)
		}
		return pk, nil
	}
	if pk.FixedHeader.Type != packets.Publish {
		return pk, nil
	}
	mark := ""
	switch {
	case pk.TopicName != "" && !validTopicName(pk.TopicName):
		mark = markInvalidTopic
	case len(pk.Properties.User) > h.l.cfg.MaxUserProperties:
		mark = markProperties
		pk.Properties.User = nil
	}
	if mark != "" {
		pk.TopicName = mark + pk.TopicName
		pk.Properties.TopicAliasFlag, pk.Properties.TopicAlias = false, 0
	}
	return pk, nil
}

// idSwaps: mochi refuses a SUBSCRIBE or UNSUBSCRIBE whose packet id is
// that of one of its own deliveries in flight to the device (0x91), though
// MQTT keeps the two directions' ids apart. OnPacketRead gives every such
// packet a stand-in id and OnPacketEncode gives its SUBACK or UNSUBACK the
// device's id back. A stand-in free when the packet is read could be
// taken by a delivery before mochi checks it (a persistent session's
// redelivery starts as the device connects, and a device subscribes at
// once: "All subscription requests were denied", once in CI), so it is
// one mochi will not hand out soon: mochi gives deliveries ids counting
// up from the last one it gave (last, OnQosPublish), so a free id just
// below it is reached again only after 65,534 more deliveries.
type idSwaps struct {
	mu   sync.Mutex
	m    map[uint16]uint16 // stand-in -> the device's id
	last atomic.Uint32     // the packet id of the last delivery mochi sent
}

func (w *idSwaps) free(cl *mochi.Client, id uint16) uint16 {
	w.mu.Lock()
	defer w.mu.Unlock()
	alt := uint16(w.last.Load())
	for range 65535 {
		alt-- // from 0 (no delivery yet): 65535
		if alt == 0 {
			continue
		}
		if _, taken := w.m[alt]; taken {
			continue
		}
		if _, inUse := cl.State.Inflight.Get(alt); inUse {
			continue
		}
		if w.m == nil {
			w.m = map[uint16]uint16{}
		}
		w.m[alt] = id
		return alt
	}
	return id
}

// ownID is the device's id for an acknowledgement's.
func (s *session) ownID(id uint16) uint16 {
	s.swaps.mu.Lock()
	defer s.swaps.mu.Unlock()
	if own, ok := s.swaps.m[id]; ok {
		delete(s.swaps.m, id)
		return own
	}
	return id
}
