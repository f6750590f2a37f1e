package multiraft

import (
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/eddy-broker/eddy/internal/logkey"

	"github.com/eddy-broker/eddy/multiraft/catalog"

	"github.com/eddy-broker/eddy"
	sm "github.com/lni/dragonboat/v4/statemachine"
)

// ControllerShardID is the Raft shard of the cluster's metadata.
const ControllerShardID uint64 = 1

// controllerSM is the controller shard's state machine: small, in memory,
// snapshotted whole. Readers on this node use view() directly.
type controllerSM struct {
	mu       sync.RWMutex
	st       *catalog.State
	onChange func()
	// modules holds the transform binaries on disk; nil in unit tests of
	// the state alone.
	modules *moduleStore
	log     *slog.Logger
	// moduleBytes counts binaries applied since the last snapshot (see
	// Host.compactModules).
	moduleBytes atomic.Int64
	// version counts the state's changes (every applied command, every
	// snapshot restored): a reader that cached metadata at one version
	// knows it is current while the version has not moved.
	version atomic.Uint64
}

var _ sm.IStateMachine = (*controllerSM)(nil)

func (c *controllerSM) Update(e sm.Entry) (sm.Result, error) {
	var cmd catalog.Cmd
	var res catalog.Result
	if err := json.Unmarshal(e.Cmd, &cmd); err != nil {
		res.Err = &catalog.ResultErr{Code: eddy.CodeInvalid, Message: "controller: undecodable command"}
	} else {
		c.storeModule(&cmd)
		c.mu.Lock()
		res = c.st.Apply(&cmd)
		c.version.Add(1)
		var keep map[string]bool
		switch cmd.Op {
		case catalog.OpDeployTransform, catalog.OpDeleteTransform, catalog.OpDeleteTenant:
			keep = c.st.Modules()
		}
		c.mu.Unlock()
		if keep != nil && c.modules != nil {
			c.modules.gc(keep)
		}
	}
	data, _ := json.Marshal(&res)
	// A link's progress (many entries a second while it catches up) and
	// sessions' positions change no replica: the reconciler need not look.
	if c.onChange != nil && cmd.Op != catalog.OpLinkProgress && cmd.Op != catalog.OpSessionCommits {
		c.onChange()
	}
	return sm.Result{Value: 1, Data: data}, nil
}

// view runs fn with the state read-locked. fn must not keep references.
func (c *controllerSM) view(fn func(st *catalog.State)) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	fn(c.st)
}

// allHave reports whether every node of the cluster has registered
// feature f (catalog.Features): a controller command or field a build
// adds is used only then.
func (h *Host) allHave(f string) bool {
	var all bool
	h.ctrl.view(func(st *catalog.State) { all = st.AllHave(f) })
	return all
}

// Lookup serves SyncRead, which the host uses only as a barrier (the local
// state is read through view once it returns).
func (c *controllerSM) Lookup(q any) (any, error) { return nil, nil }

// storeModule writes a deploy's binary to the module store and leaves
// only its hash in the command. A write that fails (a full disk) is
// logged: the version exists, and this node refuses to run it until the
// file is back (every other node has it).
func (c *controllerSM) storeModule(cmd *catalog.Cmd) {
	if cmd.Op != catalog.OpDeployTransform || cmd.Module == nil || len(cmd.Module.Binary) == 0 {
		return
	}
	c.moduleBytes.Add(int64(len(cmd.Module.Binary)))
	if c.modules != nil {
		if err := c.modules.put(cmd.Module.SHA256, cmd.Module.Binary); err != nil && c.log != nil {
			c.log.Error("transform module not stored on this node", "sha256", cmd.Module.SHA256, logkey.Err, err)
		}
	}
	cmd.Module.Binary = nil
}

// SaveSnapshot writes the state as JSON; the module files go along as the
// snapshot's external files (dragonboat links them into the snapshot and
// streams them to a node that needs the snapshot).
func (c *controllerSM) SaveSnapshot(w io.Writer, fc sm.ISnapshotFileCollection, _ <-chan struct{}) error {
	c.mu.RLock()
	b, err := json.Marshal(c.st)
	keep := c.st.Modules()
	c.moduleBytes.Store(0)
	c.mu.RUnlock()
	if err != nil {
		return err
	}
	if c.modules != nil && fc != nil {
		shas := make([]string, 0, len(keep))
		for sha := range keep {
			shas = append(shas, sha)
		}
		sort.Strings(shas)
		for i, sha := range shas {
			if _, err := os.Stat(c.modules.path(sha)); err == nil {
				fc.AddFile(uint64(i+1), c.modules.path(sha), []byte(sha))
			}
		}
	}
	_, err = w.Write(b)
	return err
}

func (c *controllerSM) RecoverFromSnapshot(r io.Reader, files []sm.SnapshotFile, _ <-chan struct{}) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	st, err := catalog.Decode(b)
	if err != nil {
		return err
	}
	// Snapshots from before the module store hold binaries inline.
	for _, t := range st.Transforms {
		for _, v := range t.Versions {
			c.storeModule(&catalog.Cmd{Op: catalog.OpDeployTransform, Module: v})
		}
	}
	if c.modules != nil {
		for _, f := range files {
			if err := c.modules.putFrom(string(f.Metadata), f.Filepath); err != nil && c.log != nil {
				c.log.Error("transform module from the snapshot not stored", "sha256", string(f.Metadata), logkey.Err, err)
			}
		}
		c.modules.gc(st.Modules())
	}
	c.mu.Lock()
	c.st = st
	c.version.Add(1)
	c.mu.Unlock()
	if c.onChange != nil {
		c.onChange()
	}
	return nil
}

func (c *controllerSM) Close() error { return nil }
