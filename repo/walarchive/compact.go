package walarchive

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/dustin/go-humanize/english"

	"memento/engram"
	"memento/repo/directio"
	"memento/walreplay"
)

// CompactOptions tune CompactWAL.
type CompactOptions struct {
	// Force compacts sealed segments the archive does not fully hold yet.
	Force bool
	// Grace is how long kept originals (wal/.archive-<time>/) survive.
	Grace time.Duration
}

// CompactResult says what CompactWAL did.
type CompactResult struct {
	Space       string `json:"space"`
	Name        string `json:"name"`
	Segments    int    `json:"segments"`
	FirstSeq    uint64 `json:"first_seq"`
	LastSeq     uint64 `json:"last_seq"`
	Records     int64  `json:"records"`
	BytesBefore int64  `json:"bytes_before"`
	BytesAfter  int64  `json:"bytes_after"`
	KeptIn      string `json:"kept_in"`
	Removed     int    `json:"removed"` // expired .archive-* directories deleted
}

// archivedDirPrefix names the directories that keep compacted-away originals.
const archivedDirPrefix = ".archive-"

// CompactWAL compacts the leading run of sealed segments of a space's WAL
// (walreplay.Compact does the crash-safe write, fsync, rename, fsync dir).
// Before that, the originals are hard-linked into wal/.archive-<time>/, so
// they survive for the grace period at no cost in space. Without Force it
// stops at the first segment the repository's WAL archive does not hold
// completely, and refuses when that is the first one.
func CompactWAL(ctx context.Context, r Repository, dataDir, space string, opts CompactOptions) (*CompactResult, error) {
	if err := engram.ValidSpaceID(space); err != nil {
		return nil, err
	}
	dir := filepath.Join(dataDir, "spaces", space, "wal")
	if err := walreplay.RecoverCompaction(ctx, dir); err != nil {
		return nil, fmt.Errorf("space %s: %w", space, err)
	}
	segs, err := walreplay.ListSegments(dir)
	if err != nil {
		return nil, fmt.Errorf("space %s: %w", space, err)
	}
	res := &CompactResult{Space: space}
	if res.Removed, err = removeExpired(dir, opts.Grace); err != nil {
		return nil, fmt.Errorf("space %s: %w", space, err)
	}
	if len(segs) < 3 {
		return nil, fmt.Errorf("space %s: nothing to compact: %s (the newest is open; compacting needs at least two sealed ones)", space, english.Plural(len(segs), "segment", ""))
	}
	arch, err := loadDataDirTimeline(ctx, r, dataDir, space)
	if err != nil {
		return nil, err
	}
	var run []walreplay.SegmentInfo
	for _, s := range segs[:len(segs)-1] {
		if !opts.Force && !archived(arch, s) {
			if len(run) == 0 {
				return nil, fmt.Errorf("space %s: refusing to compact: segment %s is not fully archived in the repository yet (run 'memento wal archive' first, or use --force to lose the entries it holds from point-in-time recovery)", space, s.Name)
			}
			break
		}
		run = append(run, s)
	}
	if len(run) < 2 {
		return nil, fmt.Errorf("space %s: nothing to compact: only %d archived sealed segment(s) at the start of the WAL", space, len(run))
	}
	stamp := time.Now().UTC().Format("20060102T150405.000000000Z")
	keep := filepath.Join(dir, archivedDirPrefix+stamp)
	if err := os.Mkdir(keep, 0o755); err != nil {
		return nil, fmt.Errorf("space %s: %w", space, err)
	}
	names := make([]string, len(run))
	for i, s := range run {
		names[i] = s.Name
		res.BytesBefore += s.Size
		if err := os.Link(s.Path, filepath.Join(keep, s.Name)); err != nil {
			return nil, fmt.Errorf("space %s: keep original %s: %w", space, s.Name, err)
		}
	}
	for _, d := range []string{keep, dir} { // the originals are kept before Compact replaces them
		if err := directio.SyncPath(d); err != nil {
			return nil, fmt.Errorf("space %s: %w", space, err)
		}
	}
	cr, err := walreplay.Compact(ctx, dir, names...)
	if err != nil {
		return nil, fmt.Errorf("space %s: %w", space, err)
	}
	res.Name, res.Segments, res.FirstSeq, res.LastSeq, res.Records, res.BytesAfter = cr.Name, len(run), cr.FirstSeq, cr.LastSeq, cr.Records, cr.Bytes
	res.KeptIn = keep
	return res, nil
}

// archived reports whether the archive holds all of segment s: an ordinary
// record at least as long, or (for a compacted segment) the same compacted
// record or ordinary records of every sequence it covers.
func archived(arch *WALArchive, s walreplay.SegmentInfo) bool {
	if rec := arch.Record(s.Name, false); rec != nil && rec.Size >= s.Size {
		return true
	}
	if rec := arch.Record(s.Name, true); rec != nil && rec.Size == s.Size {
		return true
	}
	return false
}

// removeExpired deletes kept-original directories older than grace.
func removeExpired(dir string, grace time.Duration) (int, error) {
	if grace <= 0 {
		return 0, nil
	}
	des, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, de := range des {
		stamp, ok := strings.CutPrefix(de.Name(), archivedDirPrefix)
		if !ok || !de.IsDir() {
			continue
		}
		t, err := time.Parse("20060102T150405.000000000Z", stamp)
		if err != nil || time.Since(t) < grace {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, de.Name())); err != nil && !errors.Is(err, os.ErrNotExist) {
			return n, err
		}
		n++
	}
	return n, nil
}
