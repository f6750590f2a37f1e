// Package multiraft is the only importer of dragonboat. A Host is one
// node's NodeHost with the controller shard (shard 1: nodes, topics and
// their partition -> shard placement) and one on-disk shard per partition
// replica, whose state machine is a segment.Log.
//
//	h, _ := multiraft.New(multiraft.Config{Dir: "eddy-data", RaftAddr: "127.0.0.1:7100"})
//	err := h.Start(ctx)
//	meta, err := h.CreateTopic(ctx, "default", multiraft.TopicSpec{Name: "sensors", Partitions: 3, ReplicationFactor: 1})
//	res, err := h.Produce(ctx, meta.Ref(), records, nil)        // acked after commit
//	fr, err := h.Fetch(ctx, meta.Ref(), 0, 0, 100, 1<<20, time.Second) // long-poll
//	h.Close()
//
// Writes: Produce validates the whole request, reserves room in each target
// partition's bounded queue, and hands the records to that partition's
// group-commit proposer, which packs queued requests into one record batch
// per proposal. The state machine assigns offsets in Update and deduplicates
// retried proposals by producer id and sequence.
//
// Reads: a fetch reads the local replica's log directly (it holds only
// committed entries) and waits on the log's notification channel, which
// Update's Flush closes, for long polls.
//
// A reconciler starts and stops local replicas to match the controller.
package multiraft
