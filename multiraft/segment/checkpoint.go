package segment

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io"
	"path/filepath"

	"github.com/eddy-broker/eddy"
)

// castagnoli is CRC-32C, the checksum of checkpoints and snapshots.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// The checkpoint records what Sync made durable: the last applied Raft
// index, the offsets, the segment list and the producer state. It is written
// as tmp + fsync + rename + fsync(dir), so it is always whole; it names only
// segment data that was fsynced before it.
const (
	checkpointName  = "checkpoint"
	checkpointMagic = "EDCK"
)

type segMeta struct {
	Base  int64 `json:"base"`
	MaxTs int64 `json:"max_ts"`
	Size  int64 `json:"size"`
}

type checkpoint struct {
	Version    int             `json:"version"`
	Applied    uint64          `json:"applied"`
	NextOffset int64           `json:"next_offset"`
	LogStart   int64           `json:"log_start"`
	Segments   []segMeta       `json:"segments"`
	Producers  []producerState `json:"producers,omitempty"`
}

func encodeCheckpoint(cp *checkpoint) []byte {
	body, _ := json.Marshal(cp)
	out := make([]byte, 12, 12+len(body))
	copy(out, checkpointMagic)
	binary.BigEndian.PutUint32(out[4:], crc32.Checksum(body, castagnoli))
	binary.BigEndian.PutUint32(out[8:], uint32(len(body)))
	return append(out, body...)
}

func decodeCheckpoint(b []byte) (*checkpoint, error) {
	if len(b) < 12 || string(b[:4]) != checkpointMagic {
		return nil, eddy.Errorf(eddy.CodeCorrupt, "checkpoint: bad magic")
	}
	n := binary.BigEndian.Uint32(b[8:])
	if int(n) != len(b)-12 {
		return nil, eddy.Errorf(eddy.CodeCorrupt, "checkpoint: length %d, have %d bytes", n, len(b)-12)
	}
	if crc32.Checksum(b[12:], castagnoli) != binary.BigEndian.Uint32(b[4:]) {
		return nil, eddy.Errorf(eddy.CodeCorrupt, "checkpoint: CRC mismatch")
	}
	var cp checkpoint
	if err := json.Unmarshal(b[12:], &cp); err != nil {
		return nil, eddy.Errorf(eddy.CodeCorrupt, "checkpoint: %v", err)
	}
	if cp.Version != 1 || len(cp.Segments) == 0 {
		return nil, eddy.Errorf(eddy.CodeCorrupt, "checkpoint: version %d with %d segments", cp.Version, len(cp.Segments))
	}
	return &cp, nil
}

func readAll(fsys FS, name string) ([]byte, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return nil, err
	}
	b := make([]byte, size)
	if _, err := f.ReadAt(b, 0); err != nil && err != io.EOF {
		return nil, err
	}
	return b, nil
}

// writeFileAtomic writes name via a synced temporary file and a rename, and
// syncs the directory.
func writeFileAtomic(fsys FS, name string, data []byte) error {
	tmp := name + ".tmp"
	f, err := fsys.Create(tmp)
	if err != nil {
		return fmt.Errorf("create %s: %w", tmp, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := fsys.Rename(tmp, name); err != nil {
		return fmt.Errorf("rename %s: %w", tmp, err)
	}
	if err := fsys.SyncDir(filepath.Dir(name)); err != nil {
		return fmt.Errorf("sync dir of %s: %w", name, err)
	}
	return nil
}
