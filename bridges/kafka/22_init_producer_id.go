package kafka

import (
	"math"

	"github.com/eddy-broker/eddy"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// InitProducerId, v0-4: an idempotent producer's id, from the controller
// (ids from 2^40 up, apart from the nodes' own), at epoch 0. A producer
// that names its current id and epoch (v3+, KIP-360: after an error that
// left its sequences unknown) gets the next epoch of the same id, which
// fences its older batches; at the last epoch, a new id. Transactions are
// not offered: a transactional id is TRANSACTIONAL_ID_AUTHORIZATION_FAILED.

func init() { register(22, 0, 4, false, handleInitProducerID) }

func handleInitProducerID(c *conn, req kmsg.Request) (kmsg.Response, error) {
	r := req.(*kmsg.InitProducerIDRequest)
	resp := r.ResponseKind().(*kmsg.InitProducerIDResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	if r.TransactionalID != nil {
		resp.ErrorCode = errTransactionalIDAuthorization
		return resp, nil
	}
	if r.ProducerID >= 0 && r.ProducerEpoch >= 0 && r.ProducerEpoch < math.MaxInt16 {
		if !c.l.b.KafkaProducer(r.ProducerID) {
			resp.ErrorCode = errInvalidProducerIDMapping
			return resp, nil
		}
		resp.ProducerID, resp.ProducerEpoch = r.ProducerID, r.ProducerEpoch+1
		return resp, nil
	}
	ctx, cancel := c.ctx(c.l.cfg.RequestTimeout)
	defer cancel()
	pid, err := c.l.b.AllocKafkaProducer(ctx, c.tenant)
	if err != nil {
		resp.ErrorCode = kafkaCode(err)
		if eddy.ErrorCode(err) == eddy.CodeUnavailable || eddy.ErrorCode(err) == eddy.CodeNoQuorum {
			resp.ErrorCode = errCoordinatorNotAvailable
		}
		return resp, nil
	}
	resp.ProducerID, resp.ProducerEpoch = pid, 0
	return resp, nil
}
