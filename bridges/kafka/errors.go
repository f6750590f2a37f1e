package kafka

import (
	"errors"

	"github.com/eddy-broker/eddy"
)

// Kafka error codes Eddy answers with (the protocol's numbering).
const (
	errNone                     int16 = 0
	errUnknownServer            int16 = -1
	errOffsetOutOfRange         int16 = 1
	errCorruptMessage           int16 = 2
	errUnknownTopicOrPartition  int16 = 3
	errLeaderNotAvailable       int16 = 5
	errNotLeaderOrFollower      int16 = 6
	errRequestTimedOut          int16 = 7
	errMessageTooLarge          int16 = 10
	errOffsetMetadataTooLarge   int16 = 12
	errNotCoordinator           int16 = 16
	errInvalidTopic             int16 = 17
	errRecordListTooLarge       int16 = 18
	errNotEnoughReplicas        int16 = 19
	errInvalidRequiredAcks      int16 = 21
	errIllegalGeneration        int16 = 22
	errUnknownMemberID          int16 = 25
	errTopicAuthorization       int16 = 29
	errGroupAuthorization       int16 = 30
	errClusterAuthorization     int16 = 31
	errUnsupportedSASLMechanism int16 = 33
	errIllegalSASLState         int16 = 34
	errUnsupportedVersion       int16 = 35
	errTopicAlreadyExists       int16 = 36
	errInvalidPartitions        int16 = 37
	errInvalidReplicationFactor int16 = 38
	errInvalidConfig            int16 = 40
	errInvalidRequest           int16 = 42
	errPolicyViolation          int16 = 44
	errKafkaStorage             int16 = 56
	errSASLAuthenticationFailed int16 = 58
	errOutOfOrderSequence       int16 = 45
	errInvalidProducerEpoch     int16 = 47
	errUnknownProducerID        int16 = 59
	errInvalidRecord            int16 = 87
	errCoordinatorNotAvailable  int16 = 15
	errInvalidProducerIDMapping int16 = 49
	// errTransactionalIDAuthorization refuses transactions, which are not
	// offered: a transactional produce, InitProducerId with a
	// transactional id, FindCoordinator for a transaction.
	errTransactionalIDAuthorization int16 = 53
)

var errNoTransactions = eddy.Errorf(eddy.CodeInvalid, "transactions are not supported")

// codes is the one table from an Eddy error code to a Kafka error code.
// Codes a client retries (Kafka's retriable errors) stand for the Eddy
// codes a client should retry.
var codes = map[eddy.Code]int16{
	eddy.CodeInvalid:          errInvalidRequest,
	eddy.CodeUnauthenticated:  errSASLAuthenticationFailed,
	eddy.CodeAuthThrottled:    errSASLAuthenticationFailed,
	eddy.CodeForbidden:        errTopicAuthorization,
	eddy.CodeNotFound:         errUnknownTopicOrPartition,
	eddy.CodeTopicExists:      errTopicAlreadyExists,
	eddy.CodeConflict:         errInvalidRequest,
	eddy.CodeRecordTooLarge:   errMessageTooLarge,
	eddy.CodeRequestTooLarge:  errRecordListTooLarge,
	eddy.CodeOffsetOutOfRange: errOffsetOutOfRange,
	eddy.CodeBackpressure:     errRequestTimedOut,
	eddy.CodeUnavailable:      errLeaderNotAvailable,
	eddy.CodeTimeout:          errRequestTimedOut,
	eddy.CodeStorageFull:      errKafkaStorage,
	eddy.CodeCorrupt:          errCorruptMessage,
	eddy.CodeInternal:         errUnknownServer,
	eddy.CodeNoQuorum:         errNotEnoughReplicas,
	eddy.CodeQuotaExceeded:    errRequestTimedOut,
	eddy.CodeStorageQuota:     errPolicyViolation,
	eddy.CodeLimitExceeded:    errPolicyViolation,

	eddy.CodeTransformTimeout:     errInvalidRecord,
	eddy.CodeTransformTrap:        errInvalidRecord,
	eddy.CodeTransformMemory:      errInvalidRecord,
	eddy.CodeTransformBadOutput:   errInvalidRecord,
	eddy.CodeTransformError:       errInvalidRecord,
	eddy.CodeTransformCircuitOpen: errRequestTimedOut,

	eddy.CodeOutOfOrderSequence: errOutOfOrderSequence,
	eddy.CodeProducerFenced:     errInvalidProducerEpoch,

	eddy.CodeUnknownMember:   errUnknownMemberID,
	eddy.CodeStaleGeneration: errIllegalGeneration,
}

// kafkaCode is err's Kafka error code (0 for nil); a refused token is
// SASL_AUTHENTICATION_FAILED, an unknown code UNKNOWN_SERVER_ERROR.
func kafkaCode(err error) int16 {
	if err == nil {
		return errNone
	}
	var e *eddy.Error
	if !errors.As(err, &e) {
		return errUnknownServer
	}
	if e.Code.Unauthenticated() {
		return errSASLAuthenticationFailed
	}
	if k, ok := codes[e.Code]; ok {
		return k
	}
	return errUnknownServer
}

// errMessage is err's message for the responses that carry one.
func errMessage(err error) *string {
	if err == nil {
		return nil
	}
	m := eddy.AsError(err).Message
	return &m
}

var errNoHandshake = eddy.Errorf(eddy.CodeUnauthenticated, "SaslAuthenticate before SaslHandshake")
