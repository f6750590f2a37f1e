// Package logkey names the attributes Eddy's logs share across packages,
// so that one grep (or one query in a log store) finds every line about a
// topic, a shard or a node, whichever package wrote it. Attributes that
// only one message carries (a duration, a byte count) are written where
// they are logged.
package logkey

const (
	Err       = "err"
	Tenant    = "tenant"
	Topic     = "topic"
	Partition = "partition"
	Shard     = "shard_id"   // a Raft shard: the controller (1) or a partition
	Replica   = "replica_id" // a replica of a shard
	Node      = "node_id"
	Peer      = "peer" // another node's Raft address
	Remote    = "remote"
	Client    = "client_id" // an MQTT client
	Group     = "group"
	Member    = "member"
	Listener  = "listener"
	Code      = "code" // an Eddy error code
)
