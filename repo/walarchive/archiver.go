package walarchive

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/zeebo/blake3"

	"memento/chunk"
	"memento/engram"
	"memento/index"
	"memento/repo"
	"memento/walreplay"
)

// WALArchiver ships WAL segments of Engram spaces into the repository. It is
// long-lived in `wal watch`: it keeps each space's archive position, the set
// of chunk IDs the repository holds and the running BLAKE3 of the open
// segment in memory, so a run reads only what was appended since the last
// one. A new WALArchiver (a restart, another host) rebuilds all of that from
// the repository: nothing is kept in local files.
type WALArchiver struct {
	r       Repository
	pipe    *chunk.Pipeline
	ownPipe bool
	host    string

	mu     sync.Mutex
	spaces map[string]*spaceArchiver
	// tails are the runs' tails still going on (archiveSpace's deferTail).
	tails sync.WaitGroup
	// gate is held shared by every run and exclusively by Pause.
	gate sync.RWMutex
}

// Pause waits for the runs in progress to end (their deferred tails too)
// and holds new ones back until resume is called: the agent pauses
// archiving for the exclusive section of a prune (maintenance.PruneOptions.Pause), which then works on the
// repository alone. A run held back waits; it lists the WAL only once
// resumed, so its RPO lag counts the pause.
func (a *WALArchiver) Pause() (resume func()) {
	a.gate.Lock()
	var once sync.Once
	return func() { once.Do(a.gate.Unlock) }
}

// Reload forgets what the archiver keeps in memory about the repository:
// every space's archive position and the chunks it knows the repository
// holds (not the running hashes of the data dir's open segments, which are
// checked against the record they continue). Each space's next run loads
// them again. It must be called, while paused, after a prune: the prune
// rewrote archives (the position names files it deleted and records it
// dropped) and deleted packs (known chunks may be gone).
func (a *WALArchiver) Reload() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, sa := range a.spaces {
		sa.mu.Lock()
		sa.pos = nil
		sa.knownMu.Lock()
		sa.known = nil
		sa.knownMu.Unlock()
		sa.mu.Unlock()
	}
}

// NewWALArchiver returns an archiver using pipe (shared with other work of the
// process; nil makes a private one that Close stops).
func NewWALArchiver(r Repository, pipe *chunk.Pipeline) *WALArchiver {
	host, _ := os.Hostname()
	a := &WALArchiver{r: r, pipe: pipe, host: host, spaces: map[string]*spaceArchiver{}}
	if pipe == nil {
		a.pipe = chunk.NewPipeline(0, chunk.DefaultLevel)
		a.ownPipe = true
	}
	return a
}

// Wait waits for the tails of the watcher's runs that returned (the local
// index's merge, consolidation). Call it once no run is going on any more.
func (a *WALArchiver) Wait() { a.tails.Wait() }

// Close waits for the runs' tails (Wait), then releases the archiver's
// private pipeline, if any.
func (a *WALArchiver) Close() {
	a.tails.Wait()
	if a.ownPipe {
		a.pipe.Close()
	}
}

// spaceArchiver is the in-memory state of one space. Runs of one space are
// serialized by mu; different spaces run in parallel.
type spaceArchiver struct {
	mu sync.Mutex
	// line is the line of history pos belongs to (the data dir's identity
	// and the space's timeline when pos was loaded); a run that finds
	// another (a restore moved the space to a new timeline) reloads.
	line    Line
	checked bool // the line's history record was checked (checkLine)
	pos     *WALArchive
	knownMu sync.Mutex
	known   map[chunk.ID]struct{}
	// knownGen is the reconciliation generation known was loaded at
	// (Repository.reconcilePacks).
	knownGen uint64
	// open is the running hash of the segment last shipped while open, so
	// that the next run hashes only the new bytes.
	open *segHash
	// reported remembers gaps already reported, so `wal watch` logs each once.
	reported map[string]bool
}

type segHash struct {
	name string
	ino  uint64
	size int64
	h    *blake3.Hasher
}

// WALArchiveResult says what one run did for one space.
type WALArchiveResult struct {
	Space       string   `json:"space"`
	Identity    string   `json:"identity,omitempty"`
	Timeline    uint32   `json:"timeline"`
	Segments    int      `json:"segments"`     // segments with new records
	NewBytes    int64    `json:"new_bytes"`    // WAL bytes newly covered by the archive
	ReadBytes   int64    `json:"read_bytes"`   // bytes read to store them: the new ones and those of the record's tail stored or chunked again
	StoredBytes int64    `json:"stored_bytes"` // bytes of packs written
	LastSeq     uint64   `json:"last_seq"`     // archive position after the run
	LastTS      int64    `json:"last_ts"`
	TornTail    string   `json:"torn_tail,omitempty"` // where the newest segment's torn tail starts
	Warnings    []string `json:"warnings,omitempty"`
	Seconds     float64  `json:"seconds"`
	// Phases is how long the run spent in each of its steps, for the debug
	// log (where the RPO lag of a slow run went).
	Phases RunPhases `json:"-"`
	// ReadAt is when the run listed the WAL: every entry complete on disk
	// then is archived once the run succeeded (the RPO lag of a space is
	// at most the time since the ReadAt of its last successful run, and 0
	// while no WAL file changed since). Zero when the run failed before.
	ReadAt time.Time `json:"-"`
}

// RunPhases are the durations of the steps of one archive run, in order.
type RunPhases struct {
	Lock      time.Duration // the data dir's timelines lock, the space's state and its run lock
	Reconcile time.Duration // reconciling the packs, loading the known chunks
	Ship      time.Duration // listing, reading, chunking and sealing the new bytes
	Pack      time.Duration // writing the last pack (and waiting for the earlier ones)
	Index     time.Duration // writing the index file
	Record    time.Duration // writing the wal/ record file (and consolidating)
	Merge     time.Duration // waiting for the local index to take the index file, after the record
}

// LogAttrs returns the phases as log attributes (milliseconds).
func (p RunPhases) LogAttrs() []any {
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	return []any{"lock_ms", ms(p.Lock), "reconcile_ms", ms(p.Reconcile), "ship_ms", ms(p.Ship), "pack_ms", ms(p.Pack),
		"index_ms", ms(p.Index), "record_ms", ms(p.Record), "merge_ms", ms(p.Merge)}
}

// Position returns the in-memory archive position of space, loading it first.
func (a *WALArchiver) Position(ctx context.Context, space string) (*WALArchive, error) {
	sa, err := a.space(ctx, Legacy(space))
	if err != nil {
		return nil, err
	}
	return sa.pos, nil
}

// DataDirLine returns the line of history the data dir's space is on: the
// identity in DIR/.memento/identity.json ("" without the file: the legacy
// database; the CLI creates the file first, engram.EnsureIdentity) and the
// timeline in DIR/.memento/timelines.json (1 when not listed).
func DataDirLine(dataDir, space string) (Line, error) {
	l := Line{Space: space, Timeline: 1}
	id, err := engram.ReadIdentity(dataDir)
	switch {
	case err == nil:
		l.Identity = id.Identity
	case !errors.Is(err, engram.ErrNoIdentity):
		return l, err
	}
	tl, err := engram.ReadTimelines(dataDir)
	if err != nil {
		return l, err
	}
	l.Timeline = tl.Of(space)
	return l, l.Valid()
}

// space returns the state of the space, (re)loading the archive position
// when it is not of line.
func (a *WALArchiver) space(ctx context.Context, line Line) (*spaceArchiver, error) {
	a.mu.Lock()
	sa, ok := a.spaces[line.Space]
	if !ok {
		sa = &spaceArchiver{reported: map[string]bool{}, line: line}
		a.spaces[line.Space] = sa
	}
	a.mu.Unlock()
	if sa.line != line {
		sa.mu.Lock()
		sa.line, sa.pos, sa.open, sa.checked, sa.reported = line, nil, nil, false, map[string]bool{}
		sa.mu.Unlock()
	}
	if sa.pos == nil {
		pos, err := LoadLine(ctx, a.r, line)
		if err != nil {
			return nil, err
		}
		sa.pos = pos
	}
	return sa, nil
}

// checkLine makes sure the repository knows the line: a timeline after 1
// must have its history record (written by the restore or --new-timeline
// that started it), and timeline 1 of a database with an identity gets its
// record on the first archive (it registers the database's host and data
// dir, for commands choosing between databases).
func (a *WALArchiver) checkLine(ctx context.Context, sa *spaceArchiver, dataDir string) error {
	if sa.checked || sa.line.IsLegacy() {
		return nil
	}
	h, err := LoadHistory(ctx, a.r, sa.line.Identity, sa.line.Space)
	if err != nil {
		return err
	}
	if h.Records[sa.line.Timeline] == nil {
		if sa.line.Timeline > 1 {
			return fmt.Errorf("%s: %w: %s says the space is on timeline %d, but the repository has no history record of it (restored from another repository? archive with 'memento wal archive --new-timeline --space %s --data-dir %s')",
				sa.line, repo.ErrNotFound, engram.TimelinesPath(dataDir), sa.line.Timeline, sa.line.Space, dataDir)
		}
		abs, _ := filepath.Abs(dataDir)
		rec := &HistoryRecord{Identity: sa.line.Identity, Space: sa.line.Space, Timeline: 1, Target: "first archive",
			Time: time.Now().UTC(), Host: a.host, DataDir: abs}
		if err := SaveHistory(ctx, a.r, rec); err != nil {
			return err
		}
	}
	sa.checked = true
	return nil
}

// ArchiveSpace ships every complete WAL entry of DIR/spaces/<space>/wal that
// the repository lacks. Per segment it stores only what is new: the bytes
// appended to a grown segment become a piece of its record's tail while they
// reach no chunk boundary, and the tail is cut again into a backup's chunks
// once they do or the segment is sealed (every boundary before the tail is
// final: WALSegmentRecord.TailStart, docs/repository-format.md §13); a
// sealed segment already archived is not even opened. Entries are validated as they are read (CRC, sequence
// continuity, timestamps); a torn tail of the newest segment is left for the
// next run. On error, segments shipped before it are still recorded.
func (a *WALArchiver) ArchiveSpace(ctx context.Context, dataDir, space string) (*WALArchiveResult, error) {
	return a.archiveSpace(ctx, dataDir, space, false)
}

// archiveSpace is ArchiveSpace. With deferTail (the Watcher's runs) a run
// that saved its record returns as soon as the record is durable, and what
// follows it (waiting for the local index to take the run's index file,
// consolidating the record files every ConsolidateAfter runs) goes on in a
// goroutine that holds the space's run lock to its end: the next run of the
// space starts after it, and Wait waits for all of them. The archive
// position the result reports is the repository's once the record is
// written; the local index is a cache of the index files and consolidation
// only rewrites records in fewer files, so neither belongs on the path from
// a WAL write to its archive (the RPO lag). Their failures are logged
// (a.r.Logger) instead of returned. Every run holds the gate shared (Pause)
// to its very end, its tail included: a paused archiver writes nothing.
func (a *WALArchiver) archiveSpace(ctx context.Context, dataDir, space string, deferTail bool) (*WALArchiveResult, error) {
	a.gate.RLock()
	gateHeld := true // false once a tail goroutine owns it
	defer func() {
		if gateHeld {
			a.gate.RUnlock()
		}
	}()
	start := time.Now()
	if err := engram.ValidSpaceID(space); err != nil {
		return nil, err
	}
	line, unlock, err := a.lockedLine(ctx, dataDir, space)
	if err != nil {
		return nil, fmt.Errorf("space %s: %w", space, err)
	}
	defer unlock()
	sa, err := a.space(ctx, line)
	if err != nil {
		return nil, err
	}
	sa.mu.Lock()
	var handOff func() // the run's tail, to run after it returned, holding sa.mu
	defer func() {
		if handOff == nil {
			sa.mu.Unlock()
			return
		}
		gateHeld = false
		a.tails.Add(1)
		go func() {
			defer a.tails.Done()
			defer a.gate.RUnlock()
			defer sa.mu.Unlock()
			handOff()
		}()
	}()
	var ph RunPhases
	mark := time.Now()
	lap := func(d *time.Duration) {
		now := time.Now()
		*d, mark = now.Sub(mark), now
	}
	ph.Lock = mark.Sub(start)
	if err := a.checkLine(ctx, sa, dataDir); err != nil {
		return nil, err
	}
	// Every run reconciles the packs (one listing of data/ per
	// reconcileFresh at most): a pack lost while `wal watch` runs is not
	// deduplicated against for longer than that.
	gen, err := a.r.ReconcilePacks(ctx)
	if err != nil {
		return nil, err
	}
	if sa.known == nil || sa.knownGen != gen {
		if sa.known, err = a.r.KnownBlobs(ctx, space); err != nil {
			return nil, err
		}
		sa.knownGen = gen
	}
	lap(&ph.Reconcile)
	dir := filepath.Join(dataDir, "spaces", space, "wal")
	if _, err := os.Stat(dir); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("space %s: %w: no WAL directory %s", space, repo.ErrNotFound, dir)
		}
		return nil, fmt.Errorf("space %s: %w", space, err)
	}
	readAt := time.Now()
	segs, err := walreplay.ListSegments(dir)
	if err != nil {
		return nil, fmt.Errorf("space %s: %w", space, err)
	}
	res := &WALArchiveResult{Space: space, Identity: line.Identity, Timeline: line.Timeline, ReadAt: readAt}
	run := &walRun{dataDir: dataDir, a: a, sa: sa, space: space, res: res, packer: a.r.NewPacker(ctx, space), key: a.r.ChunkKey(space)}
	// The run's packs go before those of a backup sharing the repository
	// (the agent's scheduled backups): the time they wait is RPO lag.
	run.packer.Urgent()
	werr := run.shipAll(ctx, segs)
	lap(&ph.Ship)
	// The record file is staged (written and fsynced where no reader sees
	// it) while the last pack and the index file are written: it is
	// published only after them (saveRecords), so what a crash can leave
	// is unchanged, but its own write is off the chain of writes that must
	// follow each other.
	wctx := context.WithoutCancel(ctx)
	type stagedRecord struct {
		s   *stagedWALFile
		err error
	}
	stagedCh := make(chan stagedRecord, 1)
	go func() {
		st, err := stageWALFile(wctx, a.r, sa.pos, a.host, run.recs)
		stagedCh <- stagedRecord{st, err}
	}()
	packs, stored, perr := run.packer.Flush()
	lap(&ph.Pack)
	res.StoredBytes = stored
	if perr != nil && werr == nil {
		werr = perr
	}
	// Records may only name chunks that reached the repository and its
	// index: the index file is durable when SaveIndexFile returns.
	merge, ierr := a.r.SaveIndexFile(wctx, packs)
	staged := <-stagedCh
	if ierr != nil {
		staged.s.abort()
		return nil, ierr
	}
	lap(&ph.Index)
	// Only now are the run's chunks in the repository and its index: the
	// next runs may deduplicate against them.
	sa.knownMu.Lock()
	for _, p := range packs {
		for _, b := range p.Blobs {
			sa.known[b.ID] = struct{}{}
		}
	}
	sa.knownMu.Unlock()
	// The local index (a cache of the index files) takes the new file while
	// the record is written: its transaction is off the path from a WAL
	// write to its archive.
	merged := make(chan error, 1)
	go func() { merged <- merge() }()
	rerr := a.saveRecords(ctx, wctx, run, packs, perr, staged.s, staged.err)
	lap(&ph.Record)
	tail := func() (warnings []string, err error) {
		if err := <-merged; err != nil {
			return nil, err
		}
		if rerr != nil || perr != nil {
			return nil, nil
		}
		return a.consolidate(ctx, wctx, sa, run, packs), nil
	}
	if deferTail && rerr == nil {
		handOff = func() {
			t0 := time.Now()
			warnings, err := tail()
			log := a.r.Logger()
			if err != nil {
				log.Error("after an archive run", "space", space, "err", err)
			}
			for _, w := range warnings {
				log.Warn(w, "space", space)
			}
			log.Debug("archive run's tail", "space", space, "merge_consolidate_ms", float64(time.Since(t0).Microseconds())/1000)
		}
	} else {
		warnings, merr := tail()
		if rerr == nil {
			rerr = merr
		}
		res.Warnings = append(res.Warnings, warnings...)
		lap(&ph.Merge)
	}
	res.Phases = ph
	if rerr != nil {
		return nil, rerr
	}
	if perr == nil { // otherwise no record was saved: nothing was updated
		res.Segments = len(run.recs)
	} else {
		res.NewBytes = 0
	}
	res.LastSeq, res.LastTS = sa.pos.End()
	res.Seconds = time.Since(start).Seconds()
	if werr == nil {
		werr = run.gapError(ctx, segs)
	}
	if werr != nil {
		if errors.Is(werr, walreplay.ErrCorrupt) || errors.Is(werr, walreplay.ErrGap) || errors.Is(werr, ErrWALGap) {
			// Damage in the source WAL: an integrity failure for the CLI.
			return res, &repo.CorruptError{What: "space " + space, Detail: "source WAL", Err: werr}
		}
		return res, fmt.Errorf("space %s: %w", space, werr)
	}
	return res, nil
}

// saveRecords publishes the run's record file, staged (st, or the error
// staging it) — none when its packs failed (perr): then nothing may name
// their chunks, and the staged file is dropped.
func (a *WALArchiver) saveRecords(ctx, wctx context.Context, run *walRun, packs []index.PackInfo, perr error, st *stagedWALFile, serr error) (err error) {
	defer func() {
		if err != nil || perr != nil {
			st.abort()
		}
	}()
	if perr != nil {
		return nil
	}
	// Under Object Lock, the older packs the records name are made
	// retained as long as the record file first.
	if rep, err := extendRecordRetention(ctx, a.r, run.space, run.recs, packs); err != nil {
		return fmt.Errorf("space %s: %w", run.space, err)
	} else if rep != nil {
		level := slog.LevelDebug
		if rep.Extended > 0 {
			level = slog.LevelInfo
		}
		a.r.Logger().Log(ctx, level, "retention of the WAL records' packs", "space", run.space, "packs", rep.Packs, "queried", rep.Queried, "extended", rep.Extended, "seconds", rep.Seconds)
	}
	// Records written under a lost lock could name chunks a prune deleted
	// meanwhile: the next run archives them again.
	if err := repo.LockHeld(ctx); err != nil {
		return err
	}
	if serr != nil || st == nil {
		return serr
	}
	return st.commit(wctx)
}

// consolidate folds the space's record files into one when they are many;
// it returns what went wrong as warnings (the records stay valid as they
// are).
func (a *WALArchiver) consolidate(ctx, wctx context.Context, sa *spaceArchiver, run *walRun, packs []index.PackInfo) []string {
	if _, runs := sa.pos.Files(); runs < ConsolidateAfter {
		return nil
	}
	// The consolidated file names every archived chunk: under Object
	// Lock their packs must be retained as long as it.
	if _, err := extendRecordRetention(ctx, a.r, run.space, sa.pos.Segments(), packs); err != nil {
		return []string{fmt.Sprintf("space %s: WAL records not consolidated: %v", run.space, err)}
	}
	if err := ConsolidateWAL(wctx, a.r, sa.pos, a.host); err != nil {
		return []string{err.Error()}
	}
	return nil
}

// lockedLine returns the line of history the data dir's space is on
// (DataDirTimeline: a pending fork is recorded first) with the data dir's
// timelines lock held shared, and its release. The run holds it to the end,
// so a restore in place, which holds the lock exclusively from recording
// its pending fork until the restored space is swapped in, never swaps
// files under a run: a `wal watch` left running across a restore ships the
// restored space only after it has seen the fork (and recorded the new
// timeline), never onto the old timeline.
func (a *WALArchiver) lockedLine(ctx context.Context, dataDir, space string) (Line, func(), error) {
	for {
		line, err := DataDirTimeline(ctx, a.r, dataDir, space, a.host)
		if err != nil {
			return line, nil, err
		}
		unlock, err := engram.LockTimelinesShared(dataDir)
		if err != nil {
			return line, nil, err
		}
		// A restore may have swapped its result in between: then the
		// space's entry changed (a pending fork, or another timeline).
		now, err := DataDirLine(dataDir, space)
		if err != nil {
			unlock()
			return now, nil, err
		}
		tl, err := engram.ReadTimelines(dataDir)
		if err != nil {
			unlock()
			return now, nil, err
		}
		if now == line && tl.Fork(space) == nil {
			return line, unlock, nil
		}
		unlock()
		if err := ctx.Err(); err != nil {
			return line, nil, err
		}
	}
}

// walRun is one archive run of one space.
type walRun struct {
	dataDir string
	a       *WALArchiver
	sa      *spaceArchiver
	space   string
	res     *WALArchiveResult
	packer  *repo.Packer
	key     chunk.Key
	recs    []WALSegmentRecord
}

// shipAll walks the data dir's segments oldest first.
func (w *walRun) shipAll(ctx context.Context, segs []walreplay.SegmentInfo) error {
	for i, seg := range segs {
		if err := ctx.Err(); err != nil {
			return err
		}
		sealed := i < len(segs)-1
		rec, err := w.shipSegment(ctx, seg, sealed)
		if err != nil {
			return err
		}
		if rec != nil {
			w.recs = append(w.recs, *rec)
		}
	}
	return nil
}

// gapError reports holes in the sequences held by the archive (ordinary and
// compacted records together) that the data dir shows: a hole right before a
// segment present in the data dir means the source lost sequences before they
// were archived (rotated away, deleted). Holes only in the archive's history
// are not the data dir's fault; `pitr ranges` shows them. A hole that a
// snapshot of the space covers (its WAL reaches the entry before the
// segment) is history too: recovery after it starts from that snapshot, so it
// is not reported and archiving exits 0. In a long-lived archiver each hole
// is reported once.
func (w *walRun) gapError(ctx context.Context, segs []walreplay.SegmentInfo) error {
	type iv struct{ lo, hi uint64 }
	var ivs []iv
	for _, r := range w.sa.pos.Segments() {
		ivs = append(ivs, iv{r.FirstSeq, r.LastSeq})
	}
	slices.SortFunc(ivs, func(a, b iv) int { return cmp.Compare(a.lo, b.lo) })
	present := map[uint64]string{}
	for _, s := range segs {
		present[s.FirstSeq] = s.Name
	}
	var msgs []error
	var hi uint64
	var covered uint64 // the highest WAL end of a snapshot of the space, read once when needed
	coveredRead := false
	for i, v := range ivs {
		if i > 0 && v.lo > hi+1 {
			if name, ok := present[v.lo]; ok {
				key := fmt.Sprintf("%d-%d", hi+1, v.lo-1)
				if !coveredRead {
					var err error
					if covered, err = SnapshotWALEnd(ctx, w.a.r, w.space); err != nil {
						return err
					}
					coveredRead = true
				}
				if covered < v.lo-1 && !w.sa.reported[key] {
					w.sa.reported[key] = true
					msgs = append(msgs, fmt.Errorf("%w: sequences %d..%d are missing: the archive ends at %d and the data dir's %s starts at %d (those entries were never archived; the segments after the gap are archived, and a backup of the space, 'memento backup --data-dir DIR --space %s', starts a new recoverable range and ends this error)",
						ErrWALGap, hi+1, v.lo-1, hi, name, v.lo, w.space))
				}
			}
		}
		hi = max(hi, v.hi)
	}
	return errors.Join(msgs...)
}

// inode returns a file's inode (0 if unknown), to notice a file replaced by
// rename (compaction) at the same name.
func inode(fi os.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Ino
	}
	return 0
}
