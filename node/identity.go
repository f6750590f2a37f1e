package node

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// identity is who a data directory belongs to. Raft data is bound to a node
// id (the ReplicaID of every replica) and a Raft address; starting the same
// directory as another node would silently bootstrap a second controller
// beside the first's data, so a mismatch refuses to start instead.
type identity struct {
	NodeID   uint64 `json:"node_id"`
	RaftAddr string `json:"raft_addr"`
}

const identityFile = "node.json"

// checkIdentity compares the configuration with the data directory's
// recorded identity, recording it on first use.
func (c *Config) checkIdentity() error {
	if err := os.MkdirAll(c.DataDir, 0o755); err != nil {
		return err
	}
	path := filepath.Join(c.DataDir, identityFile)
	want := identity{NodeID: c.NodeID, RaftAddr: c.RaftAddr}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		out, _ := json.MarshalIndent(want, "", "  ")
		return os.WriteFile(path, append(out, '\n'), 0o644)
	}
	if err != nil {
		return err
	}
	var have identity
	if err := json.Unmarshal(b, &have); err != nil {
		return fmt.Errorf("%s is damaged: %w", path, err)
	}
	if have.NodeID != want.NodeID {
		return fmt.Errorf("refusing to start: the data directory %s belongs to node %d, not node %d; a node's id cannot change (use a new, empty data directory for a new node)", c.DataDir, have.NodeID, want.NodeID)
	}
	if have.RaftAddr != want.RaftAddr {
		return fmt.Errorf("refusing to start: the data directory %s belongs to Raft address %s, not %s; the Raft address cannot change once data exists", c.DataDir, have.RaftAddr, want.RaftAddr)
	}
	return nil
}
