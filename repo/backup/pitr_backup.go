package backup

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/zeebo/blake3"

	"memento/engram"
	"memento/repo"
	"memento/walreplay"
)

// EngramRecorder fills the EngramInfo of a space snapshot while its backup
// runs, through BackupOptions.BeforeDir. The archiver reads the space's
// files first and its wal/ directory last (backup.go), so:
//
//   - before anything is read (rel ""), it lists the WAL and marks its end
//     (walStart: the newest non-empty segment and its size then, resolved
//     to WALStart by the replay below) and reads checkpoint.json
//     (Checkpoint), then calls Pause;
//   - before wal/ is read, every tier has been read: it calls Resume, then
//     replays the WAL as it is at that moment (each segment up to the size
//     it has then) and records its first and last entries (WALFirst,
//     WALEnd) and the state digest at WALEnd.
//
// The archiver then reads the WAL segments at sizes at least as large
// (they only grow), so the snapshot holds every entry through WALEnd, and
// WALEnd is after any state the tiers can hold: restoring the snapshot and
// replaying from its checkpoint always works. The replay runs in the
// background while the archiver reads the same segments (one read of the
// WAL from disk for both), taking turns with other spaces' replays through
// Replays, and the manifest waits for it (Wait, the AfterFiles hook; Attach
// wires all of this into a backup).
type EngramRecorder struct {
	Info    repo.EngramInfo
	dataDir string
	space   string
	// Pause and Resume, if set, freeze and unfreeze the database around the
	// tiers (quiesce). Resume is called at most once per Pause.
	Pause, Resume func() error
	paused        bool
	// Paused is how long the database stayed paused.
	Paused time.Duration
	// Parent is the EngramInfo of the previous snapshot of the space, if any:
	// when the WAL is byte for byte what that snapshot replayed (same
	// fingerprint), its end position and digest are reused instead of
	// replaying the whole WAL again, which is what makes a backup of an idle
	// space cheap.
	Parent *repo.EngramInfo
	// Reused reports that the parent's WAL end and digest were reused.
	Reused bool
	// Replays, if set, is shared with the other space backups running at the
	// same time so that their state replays take turns (ConcurrentReplays,
	// for peak memory). Nil leaves this recorder's one replay unbounded by
	// the others: right for a single space backup, and nothing is shared
	// process-wide behind the caller's back.
	Replays *ReplayLimiter
	// CheckpointDir, if set, is a private local directory (the repository's
	// cache directory) where the replay of the space's WAL is checkpointed
	// (walreplay.Checkpoint), so that the next backup after appends replays
	// only what was appended instead of the whole WAL. Empty: none.
	CheckpointDir string
	// Resumed reports that the replay resumed from a checkpoint.
	Resumed bool
	// DigestKind is the kind of state digest to record (the repository's
	// repo.Config.StateDigestKind): "" is version 1, repo.StateDigestLtHash
	// version 2, which the replay maintains as it applies entries (and
	// carries in its checkpoint) instead of reading every live record again.
	DigestKind string
	cp         *walreplay.Checkpoint // as read from CheckpointDir (loadCheckpoint)
	// stageDir holds the copies made during the pause (see stage); empty
	// when nothing was staged.
	stageDir string
	since    time.Time
	ctx      context.Context
	// The background replay (startReplay): replayed is closed when it has
	// finished with replayErr; cancel stops it early (Close).
	replayed  chan struct{}
	replayErr error
	cancel    context.CancelFunc
	// start is the WAL's end as listed before the tiers were read, until
	// Wait resolves it to Info.WALStart (nil: already resolved).
	start *walStartMark
}

// walStartMark is the WAL as listed before the tiers were read, through its
// newest non-empty segment: that segment and the one before it, held open
// (so that they are still the same files when read, even renamed, replaced
// or removed since: the fallback needs the one before when the newest holds
// no complete entry yet), and the newest one's end then, as a
// walreplay.Mark for the replay to resolve.
//
// tail is the newest segment's last bytes at the listing (up to
// walTailWindow, ending at its noted size). The database only appends to
// a segment, except when it starts again after a crash: it then cuts the
// torn tail of its newest segment and appends after the cut, in the same
// file, so bytes below the noted size can be entries written during the
// backup, which neither the mark (same file, not shorter) nor a read of
// the held file can tell from the listed ones. Where the tail no longer
// matches, Wait takes the last entry ending before the first byte that
// differs (the bytes before are the listed ones, and no entry the
// database rewrote after its cut can end there: its bytes would have been
// a complete entry already).
type walStartMark struct {
	segs []walreplay.SegmentInfo
	f    *os.File // segs[len(segs)-1]
	prev *os.File // segs[len(segs)-2], or nil
	mark *walreplay.Mark
	tail []byte
}

// walTailWindow is how much of the newest WAL segment's end walStart keeps
// to notice a torn tail cut and rewritten during the backup: one read at
// the head, larger than the WAL's entries but for the rare ones over 64
// KiB. The cut of a torn entry longer than that is still noticed, but the
// start is then the last entry before the window, which can be one the
// database wrote after the cut (below the window).
const walTailWindow = 64 << 10

// changed returns the offset of the newest segment up to which its bytes
// are still those of the listing, and whether that is short of its noted
// size (the tail no longer matches, or the file is shorter now).
func (s *walStartMark) changed() (int64, bool) {
	size := s.segs[len(s.segs)-1].Size
	n := int64(len(s.tail))
	now := make([]byte, n)
	k, _ := s.f.ReadAt(now, size-n) // a short read is a change where it stops
	for j := range k {
		if now[j] != s.tail[j] {
			return size - n + int64(j), true
		}
	}
	if int64(k) < n {
		return size - n + int64(k), true
	}
	return size, false
}

// close closes the held segments.
func (s *walStartMark) close() {
	s.f.Close()
	if s.prev != nil {
		s.prev.Close()
	}
}

// NewEngramRecorder prepares the recorder of one space backup.
func NewEngramRecorder(ctx context.Context, dataDir, space string) *EngramRecorder {
	return &EngramRecorder{dataDir: dataDir, space: space, ctx: ctx}
}

// Attach makes a backup with opts record the space through e: it sets
// Engram, Redirect and AfterFiles and runs e's BeforeDir after any hook opts
// already has. The caller still defers Done and Close.
func (e *EngramRecorder) Attach(opts *BackupOptions) {
	prev := opts.BeforeDir
	opts.BeforeDir = func(rel string) error {
		if prev != nil {
			if err := prev(rel); err != nil {
				return err
			}
		}
		return e.BeforeDir(rel)
	}
	opts.Redirect = e.Redirect
	opts.Engram = &e.Info
	opts.AfterFiles = e.Wait
}

// ConcurrentReplays is how many state replays a ReplayLimiter from
// NewReplayLimiter(0) lets run at once: one. Replays run in the background
// of the backup (startReplay), so serializing them costs no wall time while
// files are still being read, and it bounds the page-cache pages a
// zero-copy state keeps mapped (it drops them every 64 MiB): two at once
// took a 3-space backup's peak RSS from 267 to 309 MiB. (A walk now reads
// its segments with pread into one 1 MiB buffer and touches no page of
// their maps, issue 18 session 16, so that bound is smaller; running the
// replays of small WALs at once was measured and cost CPU on this VM:
// docs/benchmarks.md, issue 18 session 10.)
const ConcurrentReplays = 1

// resumeAloneRecords is the most live records a replay resumed from a
// checkpoint may hold and still run beside other replays instead of taking
// a turn: ~100 B of state per record plus the checkpoint's ~80 B while it
// is loaded or written, i.e. under ~20 MB each (a 1 GiB default space has
// ~28,000 records; a 10 GiB one ~280,000 takes turns).
const resumeAloneRecords = 100_000

// ReplayLimiter bounds how many state replays run at once among the space
// backups that share it (EngramRecorder.Replays). Whoever runs several space
// backups at once (backup --all) makes one and gives it to every recorder;
// it holds no resources and needs no Close.
type ReplayLimiter struct{ slots chan struct{} }

// NewReplayLimiter returns a limiter letting n replays run at once; n <= 0
// means ConcurrentReplays.
func NewReplayLimiter(n int) *ReplayLimiter {
	if n <= 0 {
		n = ConcurrentReplays
	}
	return &ReplayLimiter{slots: make(chan struct{}, n)}
}

// acquire waits for a slot, or for ctx. A nil limiter never waits.
func (l *ReplayLimiter) acquire(ctx context.Context) error {
	if l == nil {
		return ctx.Err()
	}
	select {
	case l.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// release gives back the slot of an acquire that succeeded.
func (l *ReplayLimiter) release() {
	if l != nil {
		<-l.slots
	}
}

// BeforeDir is the BackupOptions.BeforeDir hook.
func (e *EngramRecorder) BeforeDir(rel string) error {
	spaceDir := filepath.Join(e.dataDir, "spaces", e.space)
	switch rel {
	case "":
		if err := e.walStart(filepath.Join(spaceDir, "wal")); err != nil {
			return err
		}
		var err error
		if e.Info.Checkpoint, err = readCheckpoint(spaceDir); err != nil {
			return err
		}
		if e.Pause != nil {
			if err := e.Pause(); err != nil {
				return fmt.Errorf("quiesce: %w", err)
			}
			e.paused, e.since = true, time.Now()
			// Copy what changes in place while the database is paused, then
			// let it run again: the pause lasts a local copy, not a backup.
			if err := e.stage(spaceDir); err != nil {
				e.log().Warn("could not stage the tiers; keeping the database paused while they are backed up", "space", e.space, "err", err)
				return nil
			}
			if err := e.Done(); err != nil {
				return err
			}
			if e.Info.Checkpoint, err = readCheckpoint(e.stageDir); err != nil {
				return err
			}
		}
	case "spaces/" + e.space + "/wal":
		if err := e.Done(); err != nil {
			return err
		}
		return e.startReplay(filepath.Join(spaceDir, "wal"))
	}
	return nil
}

// Done resumes the database if it is paused. It is safe to call more than
// once, and callers defer it so that an error or Ctrl-C never leaves the
// database paused.
func (e *EngramRecorder) Done() error {
	if !e.paused {
		return nil
	}
	e.paused = false
	e.Paused = time.Since(e.since)
	if err := e.Resume(); err != nil {
		return fmt.Errorf("resume after quiesce: %w", err)
	}
	return nil
}

// startReplay fixes the WAL the snapshot will be proven against (its
// segments and the sizes replay stops at, taken before the archiver lists
// wal/) and replays it in the background, so that the replay's CPU and the
// backup's overlap and both read the WAL through the page cache once. Wait
// collects the result.
func (e *EngramRecorder) startReplay(walDir string) error {
	l, err := walreplay.OpenLog(walDir)
	if err != nil {
		return fmt.Errorf("space %s: %w", e.space, err)
	}
	segs := l.Segments()
	e.Info.WALFingerprint = walFingerprint(segs)
	if e.parentWALUnchanged(segs) {
		p := e.Parent
		e.Info.Segments, e.Info.WALFirst, e.Info.WALEnd, e.Info.StateDigest = p.Segments, p.WALFirst, p.WALEnd, p.StateDigest
		e.Info.StateDigestKind = p.StateDigestKind
		e.Reused = true
		return nil
	}
	ctx, cancel := context.WithCancel(e.ctx)
	e.cancel = cancel
	e.replayed = make(chan struct{})
	go func() {
		defer close(e.replayed)
		e.replayErr = e.replay(ctx, l, segs)
	}()
	return nil
}

// parentWALUnchanged reports whether the WAL, listed as segs, is by its
// fingerprint the one the parent snapshot replayed, so that the parent's
// segment count, first and last entries and state digest are what a replay
// would find again. A parent whose replay met damage has no fingerprint and
// lends nothing. A parent without a state digest (its WAL does not start at
// seq 1: compacted away) still lends its positions, and its empty digest is
// what the replay would give too, whatever kind this backup records. A
// parent whose digest is of another kind than this backup records lends
// nothing.
func (e *EngramRecorder) parentWALUnchanged(segs []walreplay.SegmentInfo) bool {
	p := e.Parent
	return p != nil && p.WALFingerprint != "" && (p.StateDigest == "" || p.StateDigestKind == e.DigestKind) &&
		p.Segments == len(segs) && p.WALFingerprint == walFingerprint(segs)
}

// walStart fixes the WAL's last entry before the tiers are read
// (WALStart). When the WAL did not change since the parent snapshot
// (parentWALUnchanged) it is the parent's WAL end. Otherwise only the
// listing is taken now: the newest non-empty segment is opened and its size
// noted (walStartMark), and the state replay, which walks every entry
// anyway, finds the last entry that ended within that size
// (walreplay.Mark); entries the database appends in between do not count.
// Its last bytes are kept too, to notice a torn tail cut and rewritten in
// place meanwhile (walStartMark.tail). Where the replay cannot tell (no replay, damage before that point, the
// segment replaced or shortened, a checkpoint after it), Wait reads the
// held segment up to that size (lastWALEntry), as was done here before
// for every backup: up to 64 MiB of CRCs a space, serially and from disk
// when the cache is cold, before its tiers were read.
func (e *EngramRecorder) walStart(walDir string) error {
	e.Info.WALStart = repo.WALPosition{}
	segs, err := walreplay.ListSegments(walDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // no WAL, no entries
	}
	if err != nil {
		return err
	}
	if e.Parent != nil && e.parentWALUnchanged(segs) {
		e.Info.WALStart = e.Parent.WALEnd
		return nil
	}
	i := len(segs) - 1
	for i >= 0 && segs[i].Size == 0 {
		i--
	}
	if i < 0 {
		return nil
	}
	f, err := os.Open(segs[i].Path)
	if err != nil {
		return err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	n := min(segs[i].Size, walTailWindow)
	tail := make([]byte, n)
	k, err := f.ReadAt(tail, segs[i].Size-n)
	if err != nil && !errors.Is(err, io.EOF) {
		f.Close()
		return err
	}
	// Shorter already (cut since the listing): the mark is where it ends.
	segs[i].Size -= n - int64(k)
	s := &walStartMark{segs: segs[:i+1], f: f, mark: walreplay.NewMark(segs[i], fi), tail: tail[:k]}
	if i > 0 {
		// Best effort: a segment removed since the listing (compacted
		// away) is not one the fallback could need a name for either.
		s.prev, _ = os.Open(segs[i-1].Path)
	}
	e.start = s
	return nil
}

// resolveWALStart sets Info.WALStart from the mark walStart left, once the
// replay is over (or did not run).
func (e *EngramRecorder) resolveWALStart() error {
	s := e.start
	if s == nil {
		return nil
	}
	e.start = nil
	defer s.close()
	segs := s.segs
	if at, cut := s.changed(); cut {
		segs = append([]walreplay.SegmentInfo(nil), segs...)
		segs[len(segs)-1].Size = at
	} else if p, ok := s.mark.Last(); ok {
		e.Info.WALStart = repo.WALPosition{Seq: p.Seq, TimestampNS: p.TimestampNS}
		return nil
	}
	pos, err := lastWALEntry(segs, s.f, s.prev)
	if err != nil {
		return fmt.Errorf("space %s: WAL start: %w", e.space, err)
	}
	e.Info.WALStart = pos
	return nil
}

// mark is the WAL end walStart noted, for the replay to resolve (nil:
// none to resolve).
func (e *EngramRecorder) mark() *walreplay.Mark {
	if e.start == nil {
		return nil
	}
	return e.start.mark
}

// Wait waits for the replay startReplay began, if any, and returns its
// error. It is the BackupOptions.AfterFiles hook.
//
// Damage does not stop the backup: when the data is damaged is when a
// backup is needed most. A WAL that does not verify (a bad CRC in an old
// segment, zeros after the newest entry) or a checkpoint beyond the WAL's
// end is recorded in Info.Damage; the backup saves every file as it is and
// marks the snapshot, whose WALEnd is the last entry before the damage.
func (e *EngramRecorder) Wait() error {
	if e.replayed != nil {
		<-e.replayed
		if e.replayErr != nil {
			return e.replayErr
		}
	}
	if err := e.resolveWALStart(); err != nil {
		return err
	}
	// (After WAL damage the WAL's end is unknown: that mark says it all.)
	if c, end := e.Info.Checkpoint, e.Info.WALEnd; c.Seq > end.Seq && len(e.Info.Damage) == 0 {
		e.Info.Damage = append(e.Info.Damage, fmt.Sprintf("checkpoint.json is at seq %d, beyond the WAL's last verified entry (seq %d)", c.Seq, end.Seq))
	}
	return nil
}

func (e *EngramRecorder) replay(ctx context.Context, l *walreplay.Log, segs []walreplay.SegmentInfo) error {
	held := false
	turn := func() error {
		if held {
			return nil
		}
		if err := e.Replays.acquire(ctx); err != nil {
			return err
		}
		held = true
		return nil
	}
	defer func() {
		if held {
			e.Replays.release()
		}
	}()
	// A replay from the start reads the whole WAL: those take turns
	// (ConcurrentReplays). A resumed one reads the appended part and then
	// the live records with pread, which keeps nothing mapped, so it runs
	// beside the others, unless the space is large: its state (ids, slots)
	// and the checkpoint it loads and writes grow with the records, and
	// several at once must not outgrow the memory bound. (A checkpoint that
	// fits but whose newest segment then fails its CRC replays from the
	// start without a turn: damage, rare.)
	cp := e.loadCheckpoint(l)
	if cp == nil || cp.Records() > resumeAloneRecords {
		if err := turn(); err != nil {
			return err
		}
	}
	nDamage := len(e.Info.Damage)
	err := e.replayFrom(ctx, l, segs, cp)
	if errors.Is(err, walreplay.ErrCheckpointStale) {
		e.log().Warn("the WAL changed under its replay checkpoint; replaying it from the start", "space", e.space)
		e.Info.Damage, e.Resumed = e.Info.Damage[:nDamage], false
		if err := turn(); err != nil {
			return err
		}
		err = e.replayFrom(ctx, l, segs, nil)
	}
	return err
}

// replayFrom replays the WAL, from cp when it fits, and fills Info.
func (e *EngramRecorder) replayFrom(ctx context.Context, l *walreplay.Log, segs []walreplay.SegmentInfo, cp *walreplay.Checkpoint) error {
	// Zero-copy: the payloads stay in the page cache instead of the heap, which
	// keeps a backup's memory flat however large the space. The live database
	// only appends to, renames and unlinks segments, which mappings survive.
	st := walreplay.NewZeroCopyState()
	defer st.Close()
	st.SetBatchReader(walBatchReader()) // the day's old payloads together (an io_uring on Linux)
	if e.DigestKind == walreplay.DigestKindLtHash && cp != nil && len(segs) > 0 && segs[0].FirstSeq == 1 {
		// Version 2 is maintained as the entries are applied, from the
		// checkpoint's accumulator when the replay resumes. A replay from
		// the start (no checkpoint, or one that does not fit: ReplayResume
		// then stops tracking) computes it after the replay instead, over
		// the live records only (measured: cheaper than maintaining it
		// through every update of the whole WAL), and gives it to the next
		// checkpoint. A WAL that does not start at seq 1 records no digest:
		// nothing to track.
		if err := st.TrackLtHash(); err != nil {
			return err
		}
	}
	pos, next, resumed, err := l.ReplayResumeMarked(ctx, cp, st, e.mark())
	e.Resumed, e.cp = resumed, nil
	var damage *walreplay.CorruptError
	if err != nil && (ctx.Err() != nil || !errors.As(err, &damage)) {
		return fmt.Errorf("space %s: the WAL does not verify, not backing it up as a consistent snapshot: %w", e.space, err)
	}
	e.Info.Segments = len(segs)
	e.Info.WALEnd = repo.WALPosition{Seq: pos.Seq, TimestampNS: pos.TimestampNS}
	if damage != nil {
		// The state holds a prefix of the WAL that may end inside the
		// damaged entry: no digest to prove, and no fingerprint, so the
		// next backup replays again rather than reusing this end.
		e.Info.Damage = append(e.Info.Damage, "WAL "+damage.Error())
		e.Info.WALFingerprint = ""
		next = nil
	}
	for i := range segs {
		p, ok, err := firstEntry(segs[i])
		if err != nil && damage != nil {
			break
		}
		if err != nil {
			return fmt.Errorf("space %s: %w", e.space, err)
		}
		if ok {
			e.Info.WALFirst = p
			break
		}
	}
	if len(segs) > 0 && segs[0].FirstSeq == 1 && damage == nil {
		d, err := st.DigestOf(e.DigestKind)
		if err != nil {
			return err
		}
		e.Info.StateDigest, e.Info.StateDigestKind = hex.EncodeToString(d[:]), e.DigestKind
		next.AdoptLtHash(st)
	}
	e.saveCheckpoint(next)
	return nil
}

// checkpointPath is where the replay checkpoint of the space's WAL lives:
// one file per WAL directory, named by a hash of its absolute path.
func (e *EngramRecorder) checkpointPath(walDir string) string {
	if e.CheckpointDir == "" {
		return ""
	}
	abs, err := filepath.Abs(walDir)
	if err != nil {
		return ""
	}
	sum := blake3.Sum256([]byte(abs))
	return filepath.Join(e.CheckpointDir, "replay", hex.EncodeToString(sum[:16])+".ckpt")
}

// loadCheckpoint returns the checkpoint of the previous replay of l when
// there is one that fits l, else nil. A missing, damaged or stale one only
// means a replay from the start.
func (e *EngramRecorder) loadCheckpoint(l *walreplay.Log) *walreplay.Checkpoint {
	path := e.checkpointPath(l.Dir())
	if path == "" {
		return nil
	}
	if e.cp == nil {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil
		}
		if e.cp, err = walreplay.ParseCheckpoint(b); err != nil {
			e.log().Debug("replay checkpoint unreadable; replaying from the start", "space", e.space, "err", err)
			return nil
		}
	}
	cp := e.cp
	if err := cp.Fits(l); err != nil {
		e.log().Debug("replay checkpoint does not fit the WAL; replaying from the start", "space", e.space, "reason", err)
		return nil
	}
	return cp
}

// saveCheckpoint replaces the space's checkpoint with cp (nil: removes it,
// so that a damaged or uncheckpointable replay is not resumed from). It is a
// cache: written without fsync (a torn file fails its checksum and is
// ignored), and failing to write it fails nothing.
func (e *EngramRecorder) saveCheckpoint(cp *walreplay.Checkpoint) {
	path := e.checkpointPath(filepath.Join(e.dataDir, "spaces", e.space, "wal"))
	if path == "" {
		return
	}
	if cp == nil {
		_ = os.Remove(path)
		return
	}
	b, err := cp.MarshalBinary()
	if err == nil {
		err = os.MkdirAll(filepath.Dir(path), 0o700)
	}
	if err == nil {
		tmp := fmt.Sprintf("%s.%d.tmp", path, os.Getpid())
		if err = os.WriteFile(tmp, b, 0o600); err == nil {
			if err = os.Rename(tmp, path); err != nil {
				_ = os.Remove(tmp)
			}
		}
	}
	if err != nil {
		e.log().Debug("could not save the replay checkpoint", "space", e.space, "err", err)
	}
}

// walFingerprint identifies the WAL as a replay reads it: every segment's
// name and the size replay stops at, plus its inode, mtime and ctime, the
// same evidence backup change detection trusts for "these bytes did not
// change" (doc.go). (Fingerprints made before the ctime was part of them
// differ: the first backup after the upgrade replays once.)
func walFingerprint(segs []walreplay.SegmentInfo) string {
	h := blake3.New()
	for _, s := range segs {
		var ino uint64
		var mtime, ctime int64
		if fi, err := os.Stat(s.Path); err == nil {
			mtime = fi.ModTime().UnixNano()
			if st, ok := fi.Sys().(*syscall.Stat_t); ok {
				ino = st.Ino
				ctime = st.Ctim.Sec*1e9 + st.Ctim.Nsec
			}
		}
		fmt.Fprintf(h, "%s %d %d %d %d\n", s.Name, s.Size, mtime, ino, ctime)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// readCheckpoint reads spaces/<id>/checkpoint.json (engram.ReadCheckpoint:
// both fields required); a missing file means nothing was checkpointed yet.
func readCheckpoint(spaceDir string) (repo.WALPosition, error) {
	c, err := engram.ReadCheckpoint(spaceDir)
	if errors.Is(err, fs.ErrNotExist) {
		return repo.WALPosition{}, nil
	}
	if err != nil {
		return repo.WALPosition{}, fmt.Errorf("checkpoint: %w", err)
	}
	return repo.WALPosition{Seq: c.Sequence, TimestampNS: c.TimestampNS}, nil
}

// firstEntry reads the header of a segment's first entry.
func firstEntry(seg walreplay.SegmentInfo) (repo.WALPosition, bool, error) {
	if seg.Size < walreplay.HeaderSize {
		return repo.WALPosition{}, false, nil
	}
	f, err := os.Open(seg.Path)
	if err != nil {
		return repo.WALPosition{}, false, err
	}
	defer f.Close()
	var b [walreplay.HeaderSize]byte
	if _, err := f.ReadAt(b[:], 0); err != nil {
		return repo.WALPosition{}, false, err
	}
	h, reason := walreplay.DecodeHeader(b[:])
	if reason != "" {
		return repo.WALPosition{}, false, fmt.Errorf("segment %s offset 0: %s", seg.Name, reason)
	}
	return repo.WALPosition{Seq: h.Seq, TimestampNS: h.TimestampNS}, true, nil
}

// lastWALEntry returns the last complete entry of a WAL listed as segs,
// each segment read up to its listed size: its newest segment that has one
// (the last of segs read from newest, prev the one before it, both the
// same files held open; prev may be nil). It reads those segments whole;
// walStart leaves it to where the replay cannot tell.
func lastWALEntry(segs []walreplay.SegmentInfo, newest, prev *os.File) (repo.WALPosition, error) {
	for i := len(segs) - 1; i >= 0; i-- {
		var src io.ReaderAt = newest
		if i == len(segs)-2 && prev != nil {
			src = prev
		} else if i < len(segs)-1 {
			f, err := os.Open(segs[i].Path)
			if err != nil {
				return repo.WALPosition{}, err
			}
			defer f.Close()
			src = f
		}
		sr := walreplay.NewSegmentReader(io.NewSectionReader(src, 0, segs[i].Size), segs[i].Name)
		var pos repo.WALPosition
		for {
			e, err := sr.Next()
			if err != nil {
				break
			}
			pos = repo.WALPosition{Seq: e.Seq, TimestampNS: e.TimestampNS}
		}
		if pos.Seq > 0 {
			return pos, nil
		}
	}
	return repo.WALPosition{}, nil
}
