package repo

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/zeebo/blake3"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"

	"memento/chunk"
	"memento/engram"
	"memento/index"
	"memento/walreplay"
)

// PITROptions ask for one space as it was at a point in time.
type PITROptions struct {
	Space string
	// Target is where to stop: AtTime (entries with timestamp_ns <= T) or
	// ToSeq (entries with sequence <= N); exactly one must be set.
	Target walreplay.Target
	// DataDir is the Engram data dir to restore into; only spaces/<Space>
	// is replaced (with a safety copy of what was there).
	DataDir  string
	Progress *Progress
	Workers  int
	// NoSync skips putting the restored space on disk before it is
	// swapped into place: for a scratch copy (the mount's views), never
	// for a restore.
	NoSync bool
}

// PITRResult says where a point-in-time recovery stopped.
type PITRResult struct {
	Space       string `json:"space"`
	Snapshot    string `json:"snapshot"`
	Seq         uint64 `json:"seq"`
	TimestampNS int64  `json:"timestamp_ns"`
	Time        string `json:"time"`
	// StateDigest is the walreplay state digest at Seq, computed by
	// replaying the restored WAL; empty when that WAL does not start at
	// sequence 1 (the state before it lives only in the tiers).
	StateDigest      string  `json:"state_digest"`
	Records          int     `json:"records"`
	Segments         int     `json:"segments"`          // WAL segments in the restored space
	ArchivedSegments int     `json:"archived_segments"` // of which fetched from the WAL archive
	Target           string  `json:"target"`            // the restored space directory
	SafetyCopy       string  `json:"safety_copy,omitempty"`
	Seconds          float64 `json:"seconds"`
	// Replayed entries and the time the replay (with validation) took.
	Replayed      int64   `json:"replayed"`
	ReplaySeconds float64 `json:"replay_seconds"`
}

// RestorePointInTime recovers a space to a point in time: it restores the
// snapshot planPITR picks into a temporary directory beside the target, lays
// down the archived segments that follow the snapshot's WAL, replays the
// whole WAL to the target (validating every CRC, the sequence chain and the
// payloads, and computing the state digest), truncates the WAL right after
// the last entry at or before the target, and only then swaps the directory
// into place. Any failure removes the temporary directory: nothing partial
// ever reaches the target.
func (r *Repository) RestorePointInTime(ctx context.Context, opts PITROptions) (*PITRResult, error) {
	start := time.Now()
	t := opts.Target
	if (t.AtTime == nil) == (t.ToSeq == nil) {
		return nil, errors.New("point-in-time recovery needs exactly one of a time and a sequence")
	}
	if err := engram.ValidSpaceID(opts.Space); err != nil {
		return nil, err
	}
	if opts.Workers <= 0 {
		opts.Workers = 2
	}
	if opts.Progress == nil {
		opts.Progress = &Progress{}
	}
	arch, err := r.LoadWALArchive(ctx, opts.Space)
	if err != nil {
		return nil, err
	}
	srcs, err := r.pitrSources(ctx, opts.Space, arch)
	if err != nil {
		return nil, err
	}
	src, ok := planPITR(srcs, t)
	if !ok {
		return nil, unrecoverable(opts.Space, t, mergeRanges(srcs), r.hasEngramSnapshot(ctx, opts.Space))
	}
	sn, err := r.LoadSnapshotFile(ctx, src.sn.ID) // verified, not the catalog's copy
	if err != nil {
		return nil, err
	}
	if sn.Engram == nil {
		return nil, Corruptf("snapshot "+sn.ShortID(), "the catalog says it records WAL positions, the manifest does not")
	}
	lock, err := r.Lock(ctx, false, "restore --at")
	if err != nil {
		return nil, err
	}
	defer lock.Unlock()
	ctx = lock.Context() // cancelled if the lock is lost

	dataDir, err := filepath.Abs(opts.DataDir)
	if err != nil {
		return nil, err
	}
	dest := filepath.Join(dataDir, "spaces", opts.Space)
	// The snapshot's tree is checked before anything is written.
	tree, spaceNode, meta, err := r.spaceTree(ctx, sn)
	if err != nil {
		return nil, err
	}
	if err := r.checkSpaceTree(ctx, sn, tree); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
		return nil, fmt.Errorf("restore target %s: %w", dest, err)
	}
	stage, err := newStaging(filepath.Dir(dest), "."+opts.Space+".pitr-", r.Logger())
	if err != nil {
		return nil, fmt.Errorf("restore target %s: %w", dest, err)
	}
	tmp := stage.dir
	_ = os.Chmod(tmp, 0o755)
	var metaTmp string
	ok = false
	defer func() {
		if !ok {
			stage.abort()
			if metaTmp != "" {
				os.Remove(metaTmp)
			}
		}
	}()
	rs := &restorer{r: r, sn: sn, opts: RestoreOptions{Progress: opts.Progress, Workers: opts.Workers}}
	if err := rs.restoreDir(ctx, tree, tmp, ""); err != nil {
		return nil, err
	}
	walDir := filepath.Join(tmp, "wal")
	if err := mkdirBeneath(tmp, "wal", 0o755); err != nil { // never through a symlink
		return nil, fmt.Errorf("restore %s: %w", walDir, err)
	}
	res := &PITRResult{Space: opts.Space, Snapshot: sn.ID.String(), Target: dest}
	if res.ArchivedSegments, err = r.uncompactHead(ctx, rs, src, t, walDir); err != nil {
		return nil, err
	}
	n, err := r.layDownWAL(ctx, rs, arch, sn.Engram.WALEnd, t, walDir)
	if err != nil {
		return nil, err
	}
	res.ArchivedSegments += n
	replayStart := time.Now()
	pos, st, nsegs, fromOne, err := replayAndCut(ctx, opts.Space, walDir, t)
	res.ReplaySeconds = time.Since(replayStart).Seconds()
	if err != nil {
		return nil, err
	}
	if t.ToSeq != nil && pos.Seq != *t.ToSeq || pos.Seq < src.start.Seq {
		return nil, fmt.Errorf("space %s: %w: the WAL restored from snapshot %s and the archive stops at seq %d, short of %s",
			opts.Space, ErrUnrecoverable, sn.ShortID(), pos.Seq, t)
	}
	res.Seq, res.TimestampNS, res.Time = pos.Seq, pos.TimestampNS, walreplay.FormatTime(pos.TimestampNS)
	res.Records, res.Segments, res.Replayed = st.Len(), nsegs, st.Applied()
	if fromOne {
		d := st.Digest()
		res.StateDigest = hex.EncodeToString(d[:])
	}
	st.Close()
	// The space directory keeps its snapshot's mode, owner and mtime, as
	// with a plain restore.
	if err := setDirMeta(tmp, spaceNode); err != nil {
		return nil, err
	}
	if meta != nil {
		mp := filepath.Join(dataDir, "metadata.json")
		if _, err := os.Lstat(mp); errors.Is(err, fs.ErrNotExist) {
			metaTmp = filepath.Join(dataDir, ".metadata.json.pitr-"+opts.Space)
			os.Remove(metaTmp)
			if err := rs.restoreFile(ctx, meta, metaTmp, "metadata.json"); err != nil {
				return nil, err
			}
		}
	}
	if !opts.NoSync {
		if err := makeDurable(stage, metaTmp); err != nil {
			return nil, err
		}
	}
	if res.SafetyCopy, err = swapIntoPlace(stage, dest); err != nil {
		return nil, err
	}
	ok = true
	if metaTmp != "" {
		if err := placeNew(metaTmp, filepath.Join(dataDir, "metadata.json")); err != nil {
			return nil, err
		}
	}
	res.Seconds = time.Since(start).Seconds()
	return res, nil
}

func (r *Repository) hasEngramSnapshot(ctx context.Context, space string) bool {
	all, err := r.Snapshots(ctx)
	if err != nil {
		return false
	}
	for _, sn := range all {
		if sn.Space == space && sn.Engram != nil {
			return true
		}
	}
	return false
}

// spaceTree finds the tree of spaces/<space> in a space snapshot, the space
// directory's node and its metadata.json node.
func (r *Repository) spaceTree(ctx context.Context, sn *Snapshot) (chunk.ID, *Node, *Node, error) {
	root, err := r.LoadTree(ctx, sn.Space, sn.Root)
	if err != nil {
		return chunk.ID{}, nil, nil, fmt.Errorf("snapshot %s: %w", sn.ShortID(), err)
	}
	sp := root.Find("spaces")
	if err := needSpaceDir(sn, "spaces", sp); err != nil {
		return chunk.ID{}, nil, nil, err
	}
	st, err := r.LoadTree(ctx, sn.Space, *sp.Subtree)
	if err != nil {
		return chunk.ID{}, nil, nil, err
	}
	sd := st.Find(sn.Space)
	if err := needSpaceDir(sn, "spaces/"+sn.Space, sd); err != nil {
		return chunk.ID{}, nil, nil, err
	}
	return *sd.Subtree, sd, root.Find("metadata.json"), nil
}

// uncompactHead replaces the compacted segment the snapshot's WAL starts
// with by the archived originals it was made from, when the target lies
// before the segment's closing marker: the states there exist only in the
// originals (walreplay refuses a target inside a compacted run). It returns
// how many segments it fetched.
func (r *Repository) uncompactHead(ctx context.Context, rs *restorer, src *pitrSource, t walreplay.Target, walDir string) (int, error) {
	h := src.head
	if h == nil || src.originals == nil {
		return 0, nil
	}
	if t.ToSeq != nil && *t.ToSeq >= h.Last || t.AtTime != nil && *t.AtTime >= h.LastTS {
		return 0, nil
	}
	if err := os.Remove(filepath.Join(walDir, h.Name)); err != nil {
		return 0, fmt.Errorf("space %s: compacted segment %s of snapshot %s: %w", rs.sn.Space, h.Name, rs.sn.ShortID(), err)
	}
	return r.fetchSegments(ctx, rs, src.originals, walDir)
}

// layDownWAL writes into walDir the archived segments that continue the
// snapshot's WAL (which ends at end) up to the target: every ordinary record
// holding sequences after end, up to the first one that starts beyond the
// target. A segment the snapshot already holds is replaced when the archive
// has more of it. It returns how many segments it fetched.
func (r *Repository) layDownWAL(ctx context.Context, rs *restorer, arch *WALArchive, end WALPosition, t walreplay.Target, walDir string) (int, error) {
	var need []*WALSegmentRecord
	for _, rec := range arch.Chain() {
		if rec.LastSeq <= end.Seq {
			continue
		}
		if t.ToSeq != nil && rec.FirstSeq > *t.ToSeq || t.AtTime != nil && rec.FirstTS > *t.AtTime {
			break
		}
		if fi, err := os.Lstat(filepath.Join(walDir, rec.Name)); err == nil && fi.Size() >= rec.Size {
			continue
		}
		need = append(need, rec)
	}
	return r.fetchSegments(ctx, rs, need, walDir)
}

// fetchSegments writes the archived segments need into walDir, four at a
// time, and returns how many it wrote.
func (r *Repository) fetchSegments(ctx context.Context, rs *restorer, need []*WALSegmentRecord, walDir string) (int, error) {
	if len(need) == 0 {
		return 0, nil
	}
	var ids []chunk.ID
	for _, rec := range need {
		for _, c := range rec.Chunks {
			ids = append(ids, c.ID)
		}
	}
	locs, err := r.Locate(rs.sn.Space, ids)
	if err != nil {
		return 0, fmt.Errorf("space %s: archived WAL: %w", rs.sn.Space, err)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	for _, rec := range need {
		g.Go(func() error { return r.fetchSegment(gctx, rs, rec, locs, walDir) })
	}
	if err := g.Wait(); err != nil {
		return 0, err
	}
	return len(need), nil
}

// fetchSegment writes one archived segment, verifying every chunk (by
// readBlobAt) and the BLAKE3 of the whole, then renames it into walDir.
// Files are not fsynced one by one: the staging directory is put on disk
// as a whole (staging.sync) before it is swapped into place.
func (r *Repository) fetchSegment(ctx context.Context, rs *restorer, rec *WALSegmentRecord, locs map[chunk.ID]index.Location, walDir string) error {
	what := fmt.Sprintf("archived WAL segment %s (seq %d..%d)", rec.Name, rec.FirstSeq, rec.LastSeq)
	ids := make([]chunk.ID, len(rec.Chunks))
	for i, c := range rec.Chunks {
		ids[i] = c.ID
	}
	tmp := filepath.Join(walDir, "."+rec.Name+".fetch")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|unix.O_NOFOLLOW, 0o644)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	defer os.Remove(tmp)
	defer f.Close()
	h := blake3.New()
	var off int64
	err = rs.fetchOrdered(ctx, ids, locs, func(b []byte) error {
		h.Write(b)
		if _, err := f.Write(b); err != nil {
			return err
		}
		off += int64(len(b))
		rs.opts.Progress.Bytes.Add(int64(len(b)))
		return nil
	})
	if err != nil {
		return fmt.Errorf("space %s: %s: %w", rs.sn.Space, what, err)
	}
	var sum Hash
	h.Sum(sum[:0])
	if off != rec.Size || sum != rec.BLAKE3 {
		return Corruptf("space "+rs.sn.Space+" "+what, "%d bytes with BLAKE3 %s, the archive says %d bytes with %s", off, sum.String()[:16], rec.Size, rec.BLAKE3.String()[:16])
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return os.Rename(tmp, filepath.Join(walDir, rec.Name))
}
