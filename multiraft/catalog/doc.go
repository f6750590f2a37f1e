// Package catalog is the cluster's metadata and the one function that
// changes it: State and Apply. Nodes, tenants and their keys, topics and
// their placement, consumer groups and their rebalancing, transforms and
// their bindings, replica moves, partitions' sizes: every change is a Cmd,
// applied in the controller shard's log order on every node, so Apply is
// deterministic (no clock, no randomness, no I/O; the command carries the
// time). multiraft's controller state machine wraps it; nothing here
// knows Raft.
//
// The scripts in testdata/ are its specification, run by TestCatalogSpec:
// read them first.
package catalog
