package repo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"memento/walreplay"
)

// replayAndCut replays the WAL directory of a space being restored to t,
// validating everything it applies, then cuts the log right after the last
// entry applied: the segment holding it is truncated after that entry and
// later segments are removed. It returns the position reached, the state
// there, the number of segments left, and whether the WAL starts at sequence
// 1 (only then is the state, and so its digest, the space's whole state).
func replayAndCut(ctx context.Context, space, walDir string, t walreplay.Target) (walreplay.Position, *walreplay.State, int, bool, error) {
	var pos walreplay.Position
	l, err := walreplay.OpenLog(walDir)
	if err != nil {
		return pos, nil, 0, false, fmt.Errorf("space %s: restored WAL: %w", space, err)
	}
	segs := l.Segments()
	// Zero-copy replay (the restore path's >= 1M entries/s): the cut below only
	// truncates after the last entry the state refers to and unlinks later
	// segments, both safe for the mappings. The caller closes st.
	st := walreplay.NewZeroCopyState()
	pos, err = l.Replay(ctx, t, st)
	if err != nil {
		st.Close()
		if errors.Is(err, walreplay.ErrNotDerivable) {
			return pos, nil, 0, false, fmt.Errorf("space %s: %w: %v", space, ErrUnrecoverable, err)
		}
		if ctx.Err() != nil {
			return pos, nil, 0, false, err
		}
		return pos, nil, 0, false, &CorruptError{What: "space " + space, Detail: "restored WAL does not verify", Err: err}
	}
	i := len(segs) - 1
	for i >= 0 && segs[i].FirstSeq > pos.Seq {
		i--
	}
	if i >= 0 {
		end, err := entryEnd(segs[i], pos.Seq)
		if err != nil {
			st.Close()
			return pos, nil, 0, false, fmt.Errorf("space %s: %w", space, err)
		}
		if end < segs[i].Size {
			if err := truncateSync(segs[i].Path, end); err != nil {
				st.Close()
				return pos, nil, 0, false, err
			}
		}
	}
	for _, s := range segs[i+1:] {
		if err := os.Remove(s.Path); err != nil {
			st.Close()
			return pos, nil, 0, false, fmt.Errorf("space %s: %w", space, err)
		}
	}
	syncDir(walDir)
	fromOne := len(segs) > 0 && segs[0].FirstSeq == 1
	return pos, st, i + 1, fromOne, nil
}

// entryEnd returns the offset just past the last entry of seg whose sequence
// is at most seq.
func entryEnd(seg walreplay.SegmentInfo, seq uint64) (int64, error) {
	f, err := os.Open(seg.Path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sr := walreplay.NewSegmentReader(io.LimitReader(f, seg.Size), seg.Name)
	var end int64
	for {
		e, err := sr.Next()
		if err != nil || e.Seq > seq {
			return end, nil // replay has validated everything up to seq
		}
		end = sr.End()
	}
}

func truncateSync(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if err := f.Truncate(size); err != nil {
		f.Close()
		return fmt.Errorf("truncate %s at %d: %w", path, size, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
