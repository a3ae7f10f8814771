package walreplay

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// SegmentInfo describes one segment file of a WAL directory.
type SegmentInfo struct {
	Name     string // wal-<16 hex>.log
	Path     string // Name joined to the directory
	FirstSeq uint64 // from the name
	Size     int64  // at the time the directory was listed
}

// ListSegments returns the segments of dir in sequence order. Files that do
// not look like segments (no "wal-" prefix or ".log" suffix) are ignored;
// a "wal-*.log" file whose name is malformed is an error wrapping ErrCorrupt,
// because silently skipping it could hide part of the log.
func ListSegments(dir string) ([]SegmentInfo, error) {
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("walreplay: list segments: %w", err)
	}
	var segs []SegmentInfo
	for _, de := range des {
		name := de.Name()
		if !strings.HasPrefix(name, "wal-") || !strings.HasSuffix(name, ".log") {
			continue
		}
		seq, err := ParseSegmentName(name)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
		}
		if !de.Type().IsRegular() {
			return nil, fmt.Errorf("%w: segment %s is not a regular file", ErrCorrupt, name)
		}
		fi, err := de.Info()
		if err != nil {
			return nil, fmt.Errorf("walreplay: segment %s: %w", name, err)
		}
		segs = append(segs, SegmentInfo{Name: name, Path: filepath.Join(dir, name), FirstSeq: seq, Size: fi.Size()})
	}
	slices.SortFunc(segs, func(a, b SegmentInfo) int {
		switch {
		case a.FirstSeq < b.FirstSeq:
			return -1
		case a.FirstSeq > b.FirstSeq:
			return 1
		}
		return 0
	})
	return segs, nil
}
