package engram

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Checkpoint is DIR/spaces/<id>/checkpoint.json,
// {"sequence": C, "timestamp_ns": T}: the tiers (hot, warm, cold) hold the
// state through WAL sequence Sequence, whose entry has timestamp TimestampNS.
// Engram replaces the file atomically (temporary file, fsync, rename).
// A space that has checkpointed nothing yet has no file, or {0, 0}.
type Checkpoint struct {
	Sequence    uint64 `json:"sequence"`
	TimestampNS int64  `json:"timestamp_ns"`
}

// ParseCheckpoint decodes checkpoint.json. Both fields must be present (and
// not null); other fields are ignored. The error does not name the file.
func ParseCheckpoint(b []byte) (Checkpoint, error) {
	var c struct {
		Sequence    *uint64 `json:"sequence"`
		TimestampNS *int64  `json:"timestamp_ns"`
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return Checkpoint{}, err
	}
	if c.Sequence == nil || c.TimestampNS == nil {
		return Checkpoint{}, errors.New(`not {"sequence": N, "timestamp_ns": T}`)
	}
	return Checkpoint{Sequence: *c.Sequence, TimestampNS: *c.TimestampNS}, nil
}

// EncodeCheckpoint is the content of checkpoint.json for c: one line of
// compact JSON, {"sequence":C,"timestamp_ns":T}\n.
func EncodeCheckpoint(c Checkpoint) []byte {
	b, _ := json.Marshal(c) // cannot fail: two integers
	return append(b, '\n')
}

// ReadCheckpoint reads and parses spaceDir/checkpoint.json; errors name the
// file. A missing file is reported wrapping fs.ErrNotExist (a space that has
// checkpointed nothing yet).
func ReadCheckpoint(spaceDir string) (Checkpoint, error) {
	p := filepath.Join(spaceDir, CheckpointName)
	b, err := os.ReadFile(p)
	if err != nil {
		return Checkpoint{}, err
	}
	c, err := ParseCheckpoint(b)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("%s: %w", p, err)
	}
	return c, nil
}
