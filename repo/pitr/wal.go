package pitr

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"

	"memento/chunk"
	"memento/index"
	"memento/repo"
	"memento/repo/walarchive"
	"memento/walreplay"
)

// ReplayAndCut replays the WAL directory of a space being restored to t,
// validating everything it applies, then cuts the log right after the last
// entry applied: the segment holding it is truncated after that entry and
// later segments are removed. It returns the position reached, the state
// there, the number of segments left, and whether the WAL starts at sequence
// 1 (only then is the state, and so its digest, the space's whole state).
// The caller puts the cut on disk with the rest of the staged space.
func ReplayAndCut(ctx context.Context, space, walDir string, t walreplay.Target) (walreplay.Position, *walreplay.State, int, bool, error) {
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
		return pos, nil, 0, false, &repo.CorruptError{What: "space " + space, Detail: "restored WAL does not verify", Err: err}
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
	f, err := os.OpenFile(path, os.O_WRONLY|syscall.O_NOFOLLOW, 0)
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

// CompactedHead is the compacted segment a snapshot's WAL starts with (wal
// compact rewrites the leading run of segments, so only the first segment
// can be compacted): it covers sequences First..Last, Last being its closing
// marker. From it alone only the states at or after Last can be derived.
type CompactedHead struct {
	Name        string
	First, Last uint64
	LastTS      int64
}

// FetchFunc reads and verifies the chunks ids of the snapshot sn's space
// (their locations locs) and calls fn with each in order; the data is only
// valid during the call. It takes no repository: the caller binds it to the
// one it plans on (restore.Fetcher(r) is the one memento uses), so a planner
// reads a snapshot's first WAL segment through it and is tested without a
// repository.
type FetchFunc func(ctx context.Context, sn *repo.Snapshot, ids []chunk.ID, locs map[chunk.ID]index.Location, fn func([]byte) error) error

// HeadCacheSize bounds the snapshots a Planner remembers the WAL head of:
// when it is reached the cache is emptied and fills again.
const HeadCacheSize = 1 << 14

// A Planner answers which instants of a space are recoverable (PITRRanges)
// and how to reach one (Plan). It remembers, per snapshot ID, what the
// snapshot's WAL starts with (at most HeadCacheSize snapshots): a snapshot
// never changes, and finding out costs four tree reads (and a partial
// segment read when the archive does not know the segment), which a mount
// listing ranges again and again should not repeat. Whoever lists ranges
// repeatedly (a mount) creates one planner and keeps it; a Planner is safe
// for concurrent use.
type Planner struct {
	fetch FetchFunc

	mu    sync.Mutex
	heads map[chunk.ID]*CompactedHead
}

// NewPlanner returns a planner with an empty cache that reads segments
// with fetch, which must read from the repository the planner's methods are
// given.
func NewPlanner(fetch FetchFunc) *Planner {
	return &Planner{fetch: fetch, heads: map[chunk.ID]*CompactedHead{}}
}

// snapshotCompactedHead returns the compacted segment the snapshot's WAL
// starts with, or nil. The segment is recognised by the archive's compacted
// record of the same name, size and BLAKE3; failing that (the snapshot was
// taken before 'wal archive' shipped the compacted segment, or the archive
// does not know the segment at all) its first entry is read, and the whole
// segment only when that entry is compacted.
func (p *Planner) snapshotCompactedHead(ctx context.Context, r Repository, sn *repo.Snapshot, arch *walarchive.WALArchive) (*CompactedHead, error) {
	p.mu.Lock()
	h, ok := p.heads[sn.ID]
	p.mu.Unlock()
	if ok {
		return h, nil
	}
	h, err := p.findCompactedHead(ctx, r, sn, arch)
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: WAL: %w", sn.ShortID(), err)
	}
	p.mu.Lock()
	if len(p.heads) >= HeadCacheSize {
		clear(p.heads)
	}
	p.heads[sn.ID] = h
	p.mu.Unlock()
	return h, nil
}

func (p *Planner) findCompactedHead(ctx context.Context, r Repository, sn *repo.Snapshot, arch *walarchive.WALArchive) (*CompactedHead, error) {
	n, first, err := firstWALNode(ctx, r, sn)
	if err != nil || n == nil {
		return nil, err
	}
	same := func(rec *walarchive.WALSegmentRecord) bool {
		return rec != nil && n.BLAKE3 != nil && rec.Size == int64(n.Size) && rec.BLAKE3 == *n.BLAKE3
	}
	if rec := arch.Record(n.Name, true); same(rec) {
		return &CompactedHead{Name: n.Name, First: rec.FirstSeq, Last: rec.LastSeq, LastTS: rec.LastTS}, nil
	}
	if same(arch.Record(n.Name, false)) {
		return nil, nil
	}
	return p.readCompactedHead(ctx, r, sn, n, first)
}

// firstWALNode returns the node of the first segment (lowest sequence) in
// the snapshot's spaces/<space>/wal/ and the sequence in its name.
func firstWALNode(ctx context.Context, r Trees, sn *repo.Snapshot) (*repo.Node, uint64, error) {
	sd, _, _, err := SpaceTree(ctx, r, sn)
	if err != nil {
		return nil, 0, err
	}
	st, err := r.LoadTree(ctx, sn.Space, sd)
	if err != nil {
		return nil, 0, err
	}
	wn := st.Find("wal")
	if wn == nil || wn.Subtree == nil {
		return nil, 0, nil
	}
	wt, err := r.LoadTree(ctx, sn.Space, *wn.Subtree)
	if err != nil {
		return nil, 0, err
	}
	var best *repo.Node
	var bestSeq uint64
	for _, n := range wt.Nodes {
		if n.Type != repo.NodeFile || n.Size == 0 {
			continue
		}
		seq, err := walreplay.ParseSegmentName(n.Name)
		if err != nil {
			continue
		}
		if best == nil || seq < bestSeq {
			best, bestSeq = n, seq
		}
	}
	return best, bestSeq, nil
}

// errHeadDone stops the segment stream once the answer is known.
var errHeadDone = errors.New("first entry read")

// readCompactedHead streams the segment n from the repository: it stops
// after the first entry when that is not compacted, and otherwise reads to
// the closing marker. The replay of a restore validates the segment fully;
// this only needs its bounds.
func (p *Planner) readCompactedHead(ctx context.Context, r Repository, sn *repo.Snapshot, n *repo.Node, first uint64) (*CompactedHead, error) {
	locs, err := r.Locate(sn.Space, n.Content)
	if err != nil {
		return nil, err
	}
	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		pw.CloseWithError(p.fetch(ctx, sn, n.Content, locs, func(b []byte) error {
			_, err := pw.Write(b)
			return err
		}))
	}()
	defer pr.CloseWithError(errHeadDone)
	sr := walreplay.NewSegmentReader(pr, n.Name)
	var h *CompactedHead
	for i := 0; ; i++ {
		e, err := sr.Next()
		if err == io.EOF && h != nil && h.Last != 0 {
			return h, nil
		}
		if err == io.EOF {
			return nil, fmt.Errorf("segment %s offset %d: %w", n.Name, sr.End(), err)
		}
		if err != nil {
			return nil, err // the reader's errors name the segment and offset
		}
		if i == 0 {
			if !e.Compacted() {
				return nil, nil
			}
			h = &CompactedHead{Name: n.Name, First: first}
		}
		if e.Type == walreplay.Marker {
			h.Last, h.LastTS = e.Seq, e.TimestampNS
		}
	}
}

// originals returns the archived ordinary segments that hold the run
// first..last entry by entry (the segments wal compact replaced), or nil when
// the archive lacks any of them (pruned, or compacted with --force before
// they were archived).
func originals(arch *walarchive.WALArchive, first, last uint64) []*walarchive.WALSegmentRecord {
	var out []*walarchive.WALSegmentRecord
	next := first
	for _, rec := range arch.Chain() {
		if rec.LastSeq < next || rec.FirstSeq > last {
			continue
		}
		if rec.FirstSeq != next {
			return nil
		}
		out = append(out, rec)
		next = rec.LastSeq + 1
		if rec.LastSeq >= last {
			break
		}
	}
	if next <= last {
		return nil
	}
	return out
}
