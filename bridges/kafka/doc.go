// Package kafka is the Kafka wire protocol listener: unmodified Kafka
// clients (kcat and librdkafka, franz-go, sarama, kafkajs, the Java
// client) produce to and fetch from a tenant's topics.
//
// One file per API key, as franz-go's kfake does: 00_produce.go,
// 01_fetch.go, ... Each opens with the versions it serves and what it
// does with them. versions.go is the one table of keys and version
// ranges (ApiVersions answers from it); errors.go is the one table from
// Eddy's error codes to Kafka's. Requests and responses are decoded and
// encoded by kmsg; this package only frames them.
//
// A connection authenticates first (SASL/PLAIN or OAUTHBEARER: the tenant
// and a JWT of it, conn.go) unless the listener maps anonymous clients to
// one tenant. It then speaks for that tenant only: names are the tenant's
// own topic names, and another tenant's topic looks exactly like one that
// does not exist. Requests on a connection are served one at a time, in
// order, as Kafka does; a produce goes through the node's one produce
// path (ingest), a fetch serves the record batches as stored.
package kafka
