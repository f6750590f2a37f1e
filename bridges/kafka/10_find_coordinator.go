package kafka

import (
	"net"
	"strconv"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// FindCoordinator, v0-4: every group's coordinator is the node leading
// the controller, at its advertised Kafka address. A transaction
// coordinator is refused with TRANSACTIONAL_ID_AUTHORIZATION_FAILED and a
// message, as InitProducerId refuses a transactional id: clients take it
// as fatal and fail init_transactions at once, where
// COORDINATOR_NOT_AVAILABLE (retriable) left librdkafka, franz-go and the
// Java client retrying until their own timeouts.

func init() { register(10, 0, 4, false, handleFindCoordinator) }

func handleFindCoordinator(c *conn, req kmsg.Request) (kmsg.Response, error) {
	r := req.(*kmsg.FindCoordinatorRequest)
	resp := r.ResponseKind().(*kmsg.FindCoordinatorResponse)
	keys := r.CoordinatorKeys
	if r.Version < 4 {
		keys = []string{r.CoordinatorKey}
	}
	for _, key := range keys {
		co := kmsg.NewFindCoordinatorResponseCoordinator()
		co.Key, co.NodeID = key, -1
		switch {
		case r.CoordinatorType != 0:
			co.ErrorCode, co.ErrorMessage = errTransactionalIDAuthorization, errMessage(errNoTransactions)
		case !c.p.Consumes():
			co.ErrorCode = errGroupAuthorization
		default:
			node := c.l.coordinatorNode()
			host, port, ok := c.l.kafkaAddrOf(node)
			if !ok {
				co.ErrorCode = errCoordinatorNotAvailable
				break
			}
			co.NodeID, co.Host, co.Port = int32(node), host, port
		}
		resp.Coordinators = append(resp.Coordinators, co)
	}
	if r.Version < 4 {
		co := resp.Coordinators[0]
		resp.ErrorCode, resp.ErrorMessage, resp.NodeID, resp.Host, resp.Port = co.ErrorCode, co.ErrorMessage, co.NodeID, co.Host, co.Port
		resp.Coordinators = nil
	}
	return resp, nil
}

// kafkaAddrOf is a node's advertised Kafka address.
func (l *Listener) kafkaAddrOf(node uint64) (string, int32, bool) {
	if node == l.b.NodeID() {
		h, p := l.advertised()
		return h, p, true
	}
	for _, n := range l.b.Nodes() {
		if n.ID == node && n.KafkaAddr != "" {
			h, p, err := net.SplitHostPort(n.KafkaAddr)
			if err != nil {
				return "", 0, false
			}
			pn, _ := strconv.Atoi(p)
			return h, int32(pn), true
		}
	}
	return "", 0, false
}
