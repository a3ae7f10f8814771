package walreplay

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Compaction replaces a run of sealed segments covering sequences a..b with
// one segment named by a that holds, in sequence order, one COMPACTED
// EpisodeStore entry per id live at b (its last write in the run, keeping
// that write's sequence and timestamp), then a COMPACTED Marker with
// sequence b and the timestamp of entry b. Replaying it gives the same state
// at b as the segments it replaced; states strictly inside a..b are lost.

// compactingSuffix marks a compacted segment being written or installed.
// Its presence after a crash is how RecoverCompaction knows what to finish.
const compactingSuffix = ".compacting"

// CompactResult describes a compacted segment.
type CompactResult struct {
	Name     string // wal-<a>.log
	FirstSeq uint64 // a, the first sequence covered
	LastSeq  uint64 // b, the marker's sequence
	LastTS   int64  // the marker's timestamp
	Records  int64  // COMPACTED EpisodeStore entries written
	Bytes    int64  // size of the compacted segment
}

// CompactTo writes to w the compacted segment for segs, a consecutive run of
// sealed segments (ordered, as returned by Log.Segments). prior is the state
// just before the run (nil means empty: the run starts the log). prior is
// needed because a delete inside the run of an id written before it cannot
// be expressed in a compacted run; CompactTo refuses such a run rather than
// resurrect the id. A torn tail in any of segs is an error: only sealed
// segments are compacted.
func CompactTo(ctx context.Context, w io.Writer, segs []SegmentInfo, prior *State) (CompactResult, error) {
	if len(segs) == 0 {
		return CompactResult{}, errors.New("walreplay: compact: no segments")
	}
	run := NewState()
	deleted := map[string]struct{}{} // ids deleted in the run and not rewritten since
	var last Position
	l := &Log{segs: segs}
	v := &validator{}
	torn, err := l.walk(ctx, 0, 0, v, nil, nil, func(seg int, off int64, e *Entry, _ int) error {
		if err := v.check(off, e); err != nil {
			return err
		}
		if err := run.apply(e); err != nil {
			return &CorruptError{Segment: segs[seg].Name, Offset: off, Seq: e.Seq, Reason: err.Error(), Err: ErrCorrupt}
		}
		switch e.Type {
		case MemoryDelete:
			id, _ := checkDelete(e.Payload)
			deleted[string(id)] = struct{}{}
		case EpisodeStore, MemoryUpdate:
			if len(deleted) > 0 {
				id, _ := checkRecord(e.Payload)
				delete(deleted, string(id))
			}
		}
		last = Position{Seq: e.Seq, TimestampNS: e.TimestampNS}
		return nil
	})
	if err != nil {
		return CompactResult{}, fmt.Errorf("walreplay: compact: %w", err)
	}
	if torn != nil {
		return CompactResult{}, fmt.Errorf("walreplay: compact: %w (only sealed segments can be compacted)", torn)
	}
	if last.Seq == 0 {
		return CompactResult{}, errors.New("walreplay: compact: the run holds no entries")
	}
	for id := range deleted {
		if _, ok := prior.payloadOf(id); ok {
			return CompactResult{}, fmt.Errorf("walreplay: compact: the run deletes %q, which was written before it; a compacted run cannot express that (compact from an earlier segment)", id)
		}
	}

	type live struct {
		id  string
		seq uint64
		ts  int64
	}
	recs := make([]live, 0, run.Len())
	for id, i := range run.ids {
		recs = append(recs, live{id, run.slots[i].seq, run.slots[i].ts})
	}
	slices.SortFunc(recs, func(a, b live) int {
		switch {
		case a.seq < b.seq:
			return -1
		case a.seq > b.seq:
			return 1
		}
		return 0
	})
	res := CompactResult{Name: segs[0].Name, FirstSeq: segs[0].FirstSeq, LastSeq: last.Seq, LastTS: last.TimestampNS}
	bw := bufio.NewWriterSize(w, 1<<20)
	var buf []byte
	for n, r := range recs {
		if n&4095 == 4095 {
			if err := ctx.Err(); err != nil {
				return CompactResult{}, err
			}
		}
		p, _ := run.Payload(r.id)
		e := Entry{Seq: r.seq, TimestampNS: r.ts, Type: EpisodeStore, Flags: FlagCompacted, Payload: p}
		buf = AppendEntry(buf[:0], &e)
		if _, err := bw.Write(buf); err != nil {
			return CompactResult{}, fmt.Errorf("walreplay: compact: %w", err)
		}
		res.Records++
		res.Bytes += int64(len(buf))
	}
	m := Entry{Seq: last.Seq, TimestampNS: last.TimestampNS, Type: Marker, Flags: FlagCompacted}
	buf = AppendEntry(buf[:0], &m)
	if _, err := bw.Write(buf); err != nil {
		return CompactResult{}, fmt.Errorf("walreplay: compact: %w", err)
	}
	res.Bytes += int64(len(buf))
	if err := bw.Flush(); err != nil {
		return CompactResult{}, fmt.Errorf("walreplay: compact: %w", err)
	}
	return res, nil
}

// payloadOf is Payload that tolerates a nil state.
func (s *State) payloadOf(id string) ([]byte, bool) {
	if s == nil {
		return nil, false
	}
	return s.Payload(id)
}

// Compact replaces the named segments of the WAL directory dir, which must
// be a consecutive run of sealed segments (not the newest), by their
// compacted segment, in a crash-safe order:
//
//  1. write wal-<a>.log.compacting and fsync it (a crash leaves the
//     originals intact; RecoverCompaction deletes the partial file);
//  2. delete the run's other segments, newest first;
//  3. rename the .compacting file over wal-<a>.log and fsync the directory.
//
// A crash during 2 or 3 leaves a complete .compacting file that
// RecoverCompaction (which Compact runs first) installs. Segments before the
// run are replayed to learn the state the run starts from.
func Compact(ctx context.Context, dir string, names ...string) (CompactResult, error) {
	if err := RecoverCompaction(ctx, dir); err != nil {
		return CompactResult{}, err
	}
	l, err := OpenLog(dir)
	if err != nil {
		return CompactResult{}, err
	}
	if len(names) == 0 {
		return CompactResult{}, errors.New("walreplay: compact: no segments named")
	}
	first := slices.IndexFunc(l.segs, func(s SegmentInfo) bool { return s.Name == names[0] })
	if first < 0 {
		return CompactResult{}, fmt.Errorf("walreplay: compact: no segment %s in %s", names[0], dir)
	}
	for k, name := range names {
		i := first + k
		if i >= len(l.segs) || l.segs[i].Name != name {
			return CompactResult{}, fmt.Errorf("walreplay: compact: %s is not the segment after %s (segments must be consecutive)", name, names[max(k-1, 0)])
		}
		if i == len(l.segs)-1 {
			return CompactResult{}, fmt.Errorf("walreplay: compact: %s is the newest segment, which is not sealed", name)
		}
	}
	run := l.segs[first : first+len(names)]
	var prior *State
	if first > 0 {
		prior = NewState()
		pl := &Log{dir: dir, segs: l.segs[:first]}
		if _, err := pl.Replay(ctx, Target{}, prior); err != nil {
			return CompactResult{}, fmt.Errorf("walreplay: compact: replay before the run: %w", err)
		}
	}

	tmp := filepath.Join(dir, run[0].Name+compactingSuffix)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return CompactResult{}, fmt.Errorf("walreplay: compact: %w", err)
	}
	res, err := CompactTo(ctx, f, run, prior)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = syncDir(dir)
	}
	if err != nil {
		os.Remove(tmp)
		return CompactResult{}, err
	}
	if err := install(dir, tmp, run[0].Name, res.FirstSeq, res.LastSeq); err != nil {
		return CompactResult{}, err
	}
	return res, nil
}

// install performs steps 2 and 3 of Compact: delete the segments named in
// (a, b], newest first, then rename tmp to name.
func install(dir, tmp, name string, a, b uint64) error {
	segs, err := ListSegments(dir)
	if err != nil {
		return err
	}
	for i := len(segs) - 1; i >= 0; i-- {
		if s := segs[i]; s.FirstSeq > a && s.FirstSeq <= b {
			if err := os.Remove(s.Path); err != nil {
				return fmt.Errorf("walreplay: compact: %w", err)
			}
		}
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		return fmt.Errorf("walreplay: compact: %w", err)
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("walreplay: compact: %w", err)
	}
	return nil
}

// RecoverCompaction finishes or discards a compaction interrupted by a
// crash: a complete wal-<a>.log.compacting file (it verifies and ends with
// its marker) is installed; an incomplete one is deleted, the original
// segments being still intact in that case.
func RecoverCompaction(ctx context.Context, dir string) error {
	des, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("walreplay: recover compaction: %w", err)
	}
	for _, de := range des {
		tmpName := de.Name()
		name, ok := strings.CutSuffix(tmpName, compactingSuffix)
		if !ok {
			continue
		}
		a, err := ParseSegmentName(name)
		if err != nil {
			continue
		}
		tmp := filepath.Join(dir, tmpName)
		f, err := os.Open(tmp)
		if err != nil {
			return fmt.Errorf("walreplay: recover compaction: %w", err)
		}
		sum, verr := VerifySegment(ctx, f, name)
		f.Close()
		if verr != nil || sum.TornTail || sum.Compacted != 1 {
			if err := os.Remove(tmp); err != nil {
				return fmt.Errorf("walreplay: recover compaction: %w", err)
			}
			continue
		}
		if err := install(dir, tmp, name, a, sum.LastSeq); err != nil {
			return err
		}
	}
	return nil
}
