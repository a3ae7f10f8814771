package restore

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/zeebo/blake3"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/semaphore"
	"golang.org/x/sys/unix"

	"memento/chunk"
	"memento/engram"
	"memento/index"
	"memento/repo"
	"memento/repo/pitr"
	"memento/repo/walarchive"
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
	Progress *repo.Progress
	Workers  int
	// NoSync skips putting the restored space on disk before it is
	// swapped into place: for a scratch copy (the mount's views), never
	// for a restore.
	NoSync bool
	// Planner picks the snapshot and the WAL to recover from; nil: a new
	// one, whose cache of what snapshots' WAL starts with is then lost.
	// Whoever recovers again and again (a mount) keeps one.
	Planner *pitr.Planner
	// Identity, Host and Timeline choose the database and the timeline
	// read (pitr.Select: "" and 0 resolve the only database and its newest
	// timeline).
	Identity, Host string
	Timeline       uint32
	// Mode says whether the target is a data dir archiving continues from
	// (Continue: identity kept, a new timeline recorded when history is cut
	// short) or a scratch copy (Scratch, the default).
	Mode IdentityMode
	// ForceTarget: as RestoreOptions.ForceTarget.
	ForceTarget bool
	// Replays, if set, is shared by recoveries running at the same time so
	// that their WAL replays take turns (weight 1 each; nil: no bound). A
	// zero-copy replay keeps up to a segment's pages mapped besides the
	// state, and the digest pass 64 MiB more: two at once, beside a third
	// space's restore, took a 10 GiB `restore --all --at` to 338 MiB peak
	// RSS (issue 18). The other spaces' snapshots are still laid down in
	// the meantime, so the replay's CPU work still overlaps their writes.
	Replays *semaphore.Weighted
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
	StateDigest string `json:"state_digest"`
	// StateDigestKind is the kind of StateDigest: the one the snapshot
	// restored from records (repo.EngramInfo.StateDigestKind), empty for
	// version 1.
	StateDigestKind  string  `json:"state_digest_kind,omitempty"`
	Records          int     `json:"records"`
	Segments         int     `json:"segments"`          // WAL segments in the restored space
	ArchivedSegments int     `json:"archived_segments"` // of which fetched from the WAL archive
	Target           string  `json:"target"`            // the restored space directory
	SafetyCopy       string  `json:"safety_copy,omitempty"`
	Seconds          float64 `json:"seconds"`
	// Replayed entries and the time the replay (with validation) took.
	Replayed      int64   `json:"replayed"`
	ReplaySeconds float64 `json:"replay_seconds"`
	// Identity and Timeline are the database and the timeline the
	// restored space was recovered from; NewTimeline says the point lies
	// before the end of that timeline's history (its archive or its
	// snapshots: pitr.View.HistoryEnd), so the next archive or
	// backup of the data dir records a new timeline forked from it at Seq
	// (Parent = Timeline).
	Identity    string `json:"identity"`
	Timeline    uint32 `json:"timeline"`
	Parent      uint32 `json:"parent,omitempty"`
	NewTimeline bool   `json:"new_timeline"`
}

// RestorePointInTime recovers a space to a point in time: it restores the
// snapshot the pitr.Planner picks (opts.Planner) into a temporary directory
// beside the target, lays down the archived segments that follow the
// snapshot's WAL, replays the whole WAL to the target (validating every CRC, the sequence chain and the
// payloads, and computing the state digest), truncates the WAL right after
// the last entry at or before the target, and only then swaps the directory
// into place. Any failure removes the temporary directory: nothing partial
// ever reaches the target.
func RestorePointInTime(ctx context.Context, r PITRRepository, opts PITROptions) (*PITRResult, error) {
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
		opts.Progress = &repo.Progress{}
	}
	planner := opts.Planner
	if planner == nil {
		planner = pitr.NewPlanner(Fetcher(r))
	}
	src, view, err := planner.PlanTimeline(ctx, r, pitr.Select{Space: opts.Space, Identity: opts.Identity, Host: opts.Host, Timeline: opts.Timeline}, t)
	if err != nil {
		return nil, err
	}
	arch := view.Arch
	sn, err := r.LoadSnapshotFile(ctx, src.Snapshot.ID) // verified, not the catalog's copy
	if err != nil {
		return nil, err
	}
	if sn.Engram == nil {
		return nil, repo.Corruptf("snapshot "+sn.ShortID(), "the catalog says it records WAL positions, the manifest does not")
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
	if err := checkTargetIdentity(dataDir, view.Line.Identity, opts.Mode); err != nil {
		return nil, err
	}
	end, err := view.HistoryEnd(ctx, r)
	if err != nil {
		return nil, err
	}
	// The snapshot's tree is checked before anything is written.
	tree, spaceNode, meta, err := pitr.SpaceTree(ctx, r, sn)
	if err != nil {
		return nil, err
	}
	if err := checkSpaceTree(ctx, r, sn, tree); err != nil {
		return nil, err
	}
	rs := &restorer{r: r, sn: sn, opts: RestoreOptions{Progress: opts.Progress, Workers: opts.Workers, ForceTarget: opts.ForceTarget}, replays: opts.Replays}
	res := &PITRResult{Space: opts.Space, Snapshot: sn.ID.String(), Target: dest}
	// The state digest of the kind the snapshot records; one that records
	// none (damaged, or its WAL does not start at seq 1) gets the kind its
	// repository's backups record.
	res.StateDigestKind = sn.Engram.StateDigestKind
	if sn.Engram.StateDigest == "" {
		res.StateDigestKind = r.Config().StateDigestKind()
	}
	spec := stageSpec{dest: dest, kind: ".pitr-", dirNode: spaceNode, meta: meta, dataDir: dataDir, noSync: opts.NoSync}
	var step *timelineStep
	spec.beforeSwap = func() error {
		step, err = rs.recordTimeline(view, end, opts.Mode, dataDir, t.String(), res)
		return err
	}
	spec.undo = func() { step.undo() }
	spec.afterSwap = func() { step.release() }
	if res.SafetyCopy, err = rs.stageAndSwap(ctx, spec, func(tmp string) error {
		return rs.recoverInto(ctx, src, arch, t, tree, tmp, res)
	}); err != nil {
		return nil, err
	}
	res.Seconds = time.Since(start).Seconds()
	return res, nil
}

// uncompactHead replaces the compacted segment the snapshot's WAL starts
// with by the archived originals it was made from, when the target lies
// before the segment's closing marker (pitr.Source.Uncompact). It returns
// how many segments it fetched.
func (rs *restorer) uncompactHead(ctx context.Context, src *pitr.Source, t walreplay.Target, walDir string) (int, error) {
	if !src.Uncompact(t) {
		return 0, nil
	}
	h := src.Head
	if err := os.Remove(filepath.Join(walDir, h.Name)); err != nil {
		return 0, fmt.Errorf("space %s: compacted segment %s of snapshot %s: %w", rs.sn.Space, h.Name, rs.sn.ShortID(), err)
	}
	return rs.fetchSegments(ctx, src.Originals, walDir)
}

// layDownWAL writes into walDir the archived segments that continue the
// snapshot's WAL (which ends at end) up to the target (pitr.Continuation).
// A segment the snapshot already holds is replaced when the archive has
// more of it. It returns how many segments it fetched.
func (rs *restorer) layDownWAL(ctx context.Context, arch *walarchive.WALArchive, end repo.WALPosition, t walreplay.Target, walDir string) (int, error) {
	var need []*walarchive.WALSegmentRecord
	for _, rec := range pitr.Continuation(arch, end, t) {
		if fi, err := os.Lstat(filepath.Join(walDir, rec.Name)); err == nil && fi.Size() >= rec.Size {
			continue
		}
		need = append(need, rec)
	}
	return rs.fetchSegments(ctx, need, walDir)
}

// segmentFetches is how many archived WAL segments fetchSegments writes at
// once. Each streams its chunks in order through the core's read path with
// its own read-ahead, and a WAL's chunks are spread over few packs: one
// segment at a time leaves the storage idle between requests (an S3 round
// trip each), while every extra one adds its read-ahead buffers and a file
// being written. Four keep the reads overlapping at a bounded memory cost.
const segmentFetches = 4

// fetchSegments writes the archived segments need into walDir,
// segmentFetches at a time, and returns how many it wrote.
func (rs *restorer) fetchSegments(ctx context.Context, need []*walarchive.WALSegmentRecord, walDir string) (int, error) {
	if len(need) == 0 {
		return 0, nil
	}
	var ids []chunk.ID
	for _, rec := range need {
		for _, c := range rec.Chunks {
			ids = append(ids, c.ID)
		}
	}
	locs, err := rs.r.Locate(rs.sn.Space, ids)
	if err != nil {
		return 0, fmt.Errorf("space %s: archived WAL: %w", rs.sn.Space, err)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(segmentFetches)
	for _, rec := range need {
		g.Go(func() error { return rs.fetchSegment(gctx, rec, locs, walDir) })
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
func (rs *restorer) fetchSegment(ctx context.Context, rec *walarchive.WALSegmentRecord, locs map[chunk.ID]index.Location, walDir string) error {
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
	var sum repo.Hash
	h.Sum(sum[:0])
	if off != rec.Size || sum != rec.BLAKE3 {
		return repo.Corruptf("space "+rs.sn.Space+" "+what, "%d bytes with BLAKE3 %s, the archive says %d bytes with %s", off, sum.String()[:16], rec.Size, rec.BLAKE3.String()[:16])
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return os.Rename(tmp, filepath.Join(walDir, rec.Name))
}

// recoverInto writes the snapshot into the staging directory tmp, lays down
// the WAL that leads from it to t, replays it and cuts it there, and fills
// in what res says of the point reached.
func (rs *restorer) recoverInto(ctx context.Context, src *pitr.Source, arch *walarchive.WALArchive, t walreplay.Target, tree chunk.ID, tmp string, res *PITRResult) error {
	sn := rs.sn
	var err error
	if err := rs.restoreDir(ctx, tree, tmp, ""); err != nil {
		return err
	}
	walDir := filepath.Join(tmp, "wal")
	if err := mkdirBeneath(tmp, "wal", 0o755); err != nil { // never through a symlink
		return fmt.Errorf("restore %s: %w", walDir, err)
	}
	if res.ArchivedSegments, err = rs.uncompactHead(ctx, src, t, walDir); err != nil {
		return err
	}
	n, err := rs.layDownWAL(ctx, arch, sn.Engram.WALEnd, t, walDir)
	if err != nil {
		return err
	}
	res.ArchivedSegments += n
	if rs.replays != nil {
		if err := rs.replays.Acquire(ctx, 1); err != nil {
			return err
		}
		defer rs.replays.Release(1)
	}
	replayStart := time.Now()
	pos, st, nsegs, fromOne, err := pitr.ReplayAndCut(ctx, sn.Space, walDir, t)
	res.ReplaySeconds = time.Since(replayStart).Seconds()
	if err != nil {
		return err
	}
	if t.ToSeq != nil && pos.Seq != *t.ToSeq || pos.Seq < src.Start.Seq {
		return fmt.Errorf("space %s: %w: the WAL restored from snapshot %s and the archive stops at seq %d, short of %s",
			sn.Space, pitr.ErrUnrecoverable, sn.ShortID(), pos.Seq, t)
	}
	res.Seq, res.TimestampNS, res.Time = pos.Seq, pos.TimestampNS, walreplay.FormatTime(pos.TimestampNS)
	res.Records, res.Segments, res.Replayed = st.Len(), nsegs, st.Applied()
	kind := res.StateDigestKind
	res.StateDigestKind = ""
	if fromOne {
		// At the snapshot's own WAL end the digest must be the one
		// recorded at backup.
		d, err := st.DigestOf(kind)
		if err != nil {
			st.Close()
			return fmt.Errorf("space %s: snapshot %s: %w", sn.Space, sn.ShortID(), err)
		}
		res.StateDigest, res.StateDigestKind = hex.EncodeToString(d[:]), kind
		if rec := sn.Engram.StateDigest; rec != "" && pos.Seq == sn.Engram.WALEnd.Seq && res.StateDigest != rec {
			st.Close()
			return repo.Corruptf("snapshot "+sn.ShortID()+" space "+sn.Space, "state digest (%s) at seq %d is %s, the backup recorded %s",
				walreplay.DigestKindName(kind), pos.Seq, res.StateDigest, rec)
		}
	}
	st.Close()
	return nil
}
