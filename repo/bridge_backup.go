package repo

import (
	"encoding/hex"
	"fmt"
	"os"
	"path"

	"memento/walreplay"
)

// Bridges for repo/backup and repo/replicate (issue 13): thin exported
// wrappers of private symbols of other features' files, and copies of the
// private helpers that left with backup.go, replicate.go and pitr_backup.go
// but that other features' files still in repo use. The integrator replaces
// them with the real packages after merging.

// SpaceSubdirsBridge exports spaceSubdirs (restore_beneath.go) for
// repo/backup.
func SpaceSubdirsBridge() []string { return spaceSubdirs }

// DirWALBridge exports dirWAL (wal_store.go) for repo/replicate.
const DirWALBridge = dirWAL

// joinRel (a copy of backup.joinRel) is used by restore.go and verify_manifest.go.
func joinRel(rel, name string) string {
	if rel == "" {
		return name
	}
	return rel + "/" + name
}

// hashName (a copy of replicate.hashName) is used by check.go.
// hashName returns the hash a file is named by, if it is named by one.
func hashName(name string) ([32]byte, bool) {
	b, err := hex.DecodeString(path.Base(name))
	if err != nil || len(b) != 32 {
		return [32]byte{}, false
	}
	return [32]byte(b), true
}

// firstEntry (a copy of backup.firstEntry) is used by verify_engram.go.
// firstEntry reads the header of a segment's first entry.
func firstEntry(seg walreplay.SegmentInfo) (WALPosition, bool, error) {
	if seg.Size < walreplay.HeaderSize {
		return WALPosition{}, false, nil
	}
	f, err := os.Open(seg.Path)
	if err != nil {
		return WALPosition{}, false, err
	}
	defer f.Close()
	var b [walreplay.HeaderSize]byte
	if _, err := f.ReadAt(b[:], 0); err != nil {
		return WALPosition{}, false, err
	}
	h, reason := walreplay.DecodeHeader(b[:])
	if reason != "" {
		return WALPosition{}, false, fmt.Errorf("segment %s offset 0: %s", seg.Name, reason)
	}
	return WALPosition{Seq: h.Seq, TimestampNS: h.TimestampNS}, true, nil
}
