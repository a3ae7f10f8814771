package walarchive

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/zeebo/blake3"

	"memento/engram"
	"memento/repo"
	"memento/walreplay"
)

// ErrNothingRewritten is returned (wrapped) by NewTimeline when the data
// dir's WAL agrees with the archive of its timeline: there is no other
// history to start.
var ErrNothingRewritten = errors.New("the WAL agrees with the archive")

// NewTimeline starts a new timeline for a data dir whose WAL was truncated
// or rewritten in place by something other than a memento restore (`wal
// archive --new-timeline`): it finds the first segment on disk that
// disagrees with the archive of the space's current timeline (shorter than
// its archived prefix, or other bytes there), forks at the last entry
// before that segment (every entry up to there is the same on disk and in
// the archive; the new timeline's own archive holds the rewritten segment
// whole, so a fork at a segment boundary loses nothing), writes the
// history record, then timelines.json. The caller then archives as usual.
func NewTimeline(ctx context.Context, r Repository, dataDir, space, host string) (*HistoryRecord, error) {
	l, err := DataDirTimeline(ctx, r, dataDir, space, host)
	if err != nil {
		return nil, err
	}
	h, err := LoadHistory(ctx, r, l.Identity, space)
	if err != nil {
		return nil, err
	}
	arch, err := LoadTimeline(ctx, r, h, l.Timeline)
	if err != nil {
		return nil, err
	}
	segs, err := walreplay.ListSegments(engram.WALDir(dataDir, space))
	if err != nil {
		return nil, fmt.Errorf("space %s: %w", space, err)
	}
	var bad *walreplay.SegmentInfo
	var why string
	for i := range segs {
		seg := segs[i]
		rec := arch.Record(seg.Name, false)
		if rec == nil {
			continue // not archived yet (or compacted): nothing to disagree with
		}
		if seg.Size < rec.Size {
			bad, why = &segs[i], fmt.Sprintf("%d bytes on disk, %d archived", seg.Size, rec.Size)
			break
		}
		same, err := prefixMatches(seg.Path, rec)
		if err != nil {
			return nil, fmt.Errorf("space %s: %w", space, err)
		}
		if !same {
			bad, why = &segs[i], fmt.Sprintf("bytes 0..%d differ from the archived ones", rec.Size)
			break
		}
	}
	if bad == nil {
		return nil, fmt.Errorf("space %s: %w of timeline %d: no segment was truncated or rewritten; run 'memento wal archive' without --new-timeline", space, ErrNothingRewritten, l.Timeline)
	}
	fork := bad.FirstSeq - 1
	var forkTS int64
	for _, rec := range arch.Chain() {
		if rec.FirstSeq <= fork && fork <= rec.LastSeq {
			if rec.LastSeq == fork {
				forkTS = rec.LastTS
			} else {
				forkTS = rec.FirstTS // not an end: only shown, never a replay bound
			}
		}
	}
	abs, _ := filepath.Abs(dataDir)
	rec := &HistoryRecord{Identity: l.Identity, Space: space, Timeline: h.Newest() + 1, Parent: l.Timeline, ForkSeq: fork, ForkTS: forkTS,
		Target: fmt.Sprintf("new-timeline (segment %s: %s)", bad.Name, why), Time: time.Now().UTC(), Host: host, DataDir: abs}
	if err := SaveHistory(ctx, r, rec); err != nil {
		return nil, err
	}
	unlock, err := engram.LockTimelines(dataDir)
	if err != nil {
		return nil, err
	}
	defer unlock()
	tl, err := engram.ReadTimelines(dataDir)
	if err != nil {
		return nil, err
	}
	tl.Set(space, rec.Timeline)
	if err := engram.WriteTimelines(dataDir, tl); err != nil {
		return nil, err
	}
	return rec, nil
}

// prefixMatches reports whether the first rec.Size bytes of the file have
// the record's BLAKE3.
func prefixMatches(path string, rec *WALSegmentRecord) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	h := blake3.New()
	if _, err := io.Copy(h, io.NewSectionReader(f, 0, rec.Size)); err != nil {
		return false, err
	}
	var sum repo.Hash
	h.Sum(sum[:0])
	return sum == rec.BLAKE3, nil
}
