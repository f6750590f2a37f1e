package multiraft

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/eddy-broker/eddy/internal/fsutil"
)

// moduleStore keeps transform binaries on disk, one file per content hash
// (data_dir/modules/<sha256>.wasm), so that memory holds only the modules a
// node compiled for the topics it serves. (Changed from binaries inside the
// controller state: every node held every kept version in memory, about
// three times its size, and 100 uploads of 8 MiB added 2.5 GB to each.)
//
// The controller decides what exists: a deploy's Raft entry carries the
// binary, and applying it writes the file; a snapshot carries the files as
// external snapshot files, so a node that joins later, or falls behind the
// log, receives them too; files no kept version names are removed after
// each change. A node whose file is missing or damaged (a full disk when
// the entry applied) refuses to run that module and says so; the others
// are unaffected.
type moduleStore struct {
	dir string
}

func (s *moduleStore) path(sha string) string { return filepath.Join(s.dir, sha+".wasm") }

func validSHA(sha string) bool {
	if len(sha) != 64 {
		return false
	}
	_, err := hex.DecodeString(sha)
	return err == nil && strings.ToLower(sha) == sha
}

// put stores bin under sha (its SHA-256), durably: a temporary file,
// fsync, rename, fsync of the directory. An existing good file is kept.
func (s *moduleStore) put(sha string, bin []byte) error {
	if sum := sha256.Sum256(bin); !validSHA(sha) || hex.EncodeToString(sum[:]) != sha {
		return fmt.Errorf("module %.16s: the binary does not match its hash", sha)
	}
	if _, err := s.get(sha); err == nil {
		return nil
	}
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		return err
	}
	tmp := s.path(sha) + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	_, err = f.Write(bin)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, s.path(sha))
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("store module %.16s: %w", sha, err)
	}
	return fsutil.SyncDir(s.dir)
}

// putFrom stores the file at path (a received snapshot file) under sha.
func (s *moduleStore) putFrom(sha, path string) error {
	bin, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return s.put(sha, bin)
}

// get reads a module and checks it against its hash.
func (s *moduleStore) get(sha string) ([]byte, error) {
	if !validSHA(sha) {
		return nil, fmt.Errorf("module hash %q is not a SHA-256", sha)
	}
	bin, err := os.ReadFile(s.path(sha))
	if err != nil {
		return nil, fmt.Errorf("module %.16s is not on this node: %w", sha, err)
	}
	if sum := sha256.Sum256(bin); hex.EncodeToString(sum[:]) != sha {
		return nil, fmt.Errorf("module %.16s on this node is damaged (its hash does not match)", sha)
	}
	return bin, nil
}

// gc removes the files of modules not in keep.
func (s *moduleStore) gc(keep map[string]bool) {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		sha, ok := strings.CutSuffix(e.Name(), ".wasm")
		if !ok || !keep[sha] {
			os.Remove(filepath.Join(s.dir, e.Name()))
		}
	}
}
