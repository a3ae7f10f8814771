package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"memento/engram"
	"memento/walreplay"
)

type runOpts struct {
	dir        string
	profile    *profile // nil: default; run uses its record text
	newIDs     []string // spaces to create when the dir is new
	seed       uint64
	dim        int // 0: metadata's or default
	segSize    int64
	mix        mix
	sameTS     float64
	rate       float64 // entries/s over all spaces; 0 = as fast as possible
	duration   time.Duration
	entries    uint64 // over all spaces; 0 = unlimited
	crashAfter uint64 // over all spaces; 0 = no crash
	fsync      bool
	truth      string
	truthEvery uint64
	fsyncLog   string
	batch      time.Duration
	ckptEvery  time.Duration
	coldRows   int
	out        io.Writer
}

func newRunCmd() *cobra.Command {
	var (
		cf     contentFlags
		o      runOpts
		spaces int
		names  string
	)
	cmd := &cobra.Command{
		Use:   "run --dir DIR [--rate 5000] [--duration 30s | --entries N] [--seed 1]",
		Short: "Keep writing a data dir like a live Engram database",
		Long: `run writes a data dir the way a live database does: WAL entries at --rate
entries/s (over all spaces) with wall-clock timestamps, flushed (and with
--fsync, fsynced) per batch, segments rotated at --segment-size; at every
checkpoint (--checkpoint-every) dirty warm pages rewritten in place, a cold
segment written now and then, hot files rewritten (tmp + rename) and
checkpoint.json replaced atomically (tmp, fsync, rename). It creates DIR if
missing and resumes it (replaying its WAL) if present.

Ground truth goes to --truth (JSON lines {space,sequence,timestamp_ns,digest})
every --truth-every entries per space and on exit. Each line costs a digest of
the space's whole state (BLAKE3 over every live record, ~150 ms per 100 MB of
live state on a 2-core VM) on the space's writer goroutine, so keep N well
above the per-space rate on big dirs, and use "engram-sim truth --at T" for
any other instant; --fsync-log gets one line
per batch {space,sequence,timestamp_ns,fsync_ns,fsync} with the wall-clock
time the batch became durable, for RPO measurements.

Each truth line (of run and of "engram-sim truth") names the timeline the
space is on (docs/pitr.md, "Timelines"), read from DIR/.memento/timelines.json
when the run starts: "timeline":N. After a restore that left a pending fork
(no archive has recorded the new timeline yet) the number is not known: the
line has "timeline_pending":true, "fork_timeline":N and "fork_seq":S instead
(the new timeline forks timeline N after entry S; entries up to S are N's).
Lines of older versions have no timeline field.

--crash-after N writes N complete entries (over all spaces), then only part
of the next entry of every space (a torn tail), and exits with code 3.
SIGINT and SIGTERM stop cleanly: final checkpoint and truth lines, exit 0.

--profile sets the shape of the records written (their text); the tiers
follow the live-database rules above whatever the profile:
` + profileHelp(),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			m, err := cf.validate()
			if err != nil {
				return err
			}
			if o.dir == "" {
				return usageErrorf("--dir is required")
			}
			if o.rate < 0 {
				return usageErrorf("--rate %g: must be >= 0", o.rate)
			}
			if o.batch <= 0 || o.ckptEvery <= 0 {
				return usageErrorf("--batch and --checkpoint-every must be positive")
			}
			if o.newIDs, err = spaceIDsFromFlags(names, spaces); err != nil {
				return err
			}
			if o.segSize, err = cf.segmentSize(0); err != nil {
				return err
			}
			if o.profile, err = cf.profileOf(); err != nil {
				return err
			}
			o.seed, o.dim, o.mix, o.sameTS, o.truth, o.truthEvery = cf.seed, cf.dim, m, cf.sameTS, cf.truth, cf.truthEvy
			o.out = cmd.OutOrStdout()
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return run(ctx, o)
		},
	}
	cf.register(cmd, 1, 10000)
	f := cmd.Flags()
	f.StringVar(&o.dir, "dir", "", "data dir to write (created if missing, resumed if present)")
	f.Float64Var(&o.rate, "rate", 5000, "target entries per second over all spaces (0: as fast as possible)")
	f.DurationVar(&o.duration, "duration", 0, "stop after this long (0: until --entries or a signal)")
	f.Uint64Var(&o.entries, "entries", 0, "stop after this many entries over all spaces (0: no limit)")
	f.Uint64Var(&o.crashAfter, "crash-after", 0, "after this many entries, write a torn tail and exit 3")
	f.BoolVar(&o.fsync, "fsync", false, "fsync the WAL after every batch (otherwise only at checkpoints)")
	f.StringVar(&o.fsyncLog, "fsync-log", "", "append one JSON line per durable batch to FILE (for RPO measurement)")
	f.DurationVar(&o.batch, "batch", 10*time.Millisecond, "batch interval: entries are written, flushed and fsynced per batch")
	f.DurationVar(&o.ckptEvery, "checkpoint-every", time.Second, "checkpoint interval (tiers and checkpoint.json)")
	f.IntVar(&o.coldRows, "cold-rows", 4096, "write a cold segment once this many records were written since the last one")
	f.IntVar(&spaces, "spaces", 3, "spaces to create when DIR is new")
	f.StringVar(&names, "space-names", "", "comma-separated space ids to create when DIR is new")
	return cmd
}

// fsyncLine is one line of --fsync-log: the batch ending at Sequence became
// durable (fsynced with --fsync, else written to the OS) at FsyncNS.
type fsyncLine struct {
	Space       string `json:"space"`
	Sequence    uint64 `json:"sequence"`
	TimestampNS int64  `json:"timestamp_ns"`
	FsyncNS     int64  `json:"fsync_ns"`
	Fsync       bool   `json:"fsync"`
}

// errCrashed marks the simulated crash; main maps it to exit code 3.
var errCrashed = errors.New("simulated crash")

func run(ctx context.Context, o runOpts) error {
	md, err := openOrCreateDir(o)
	if err != nil {
		return err
	}
	if o.dim == 0 {
		o.dim = md.Dim
	}
	if o.segSize == 0 {
		o.segSize = md.WALSegmentSize
	}
	truth, err := openJSONL(o.truth)
	if err != nil {
		return err
	}
	fsl, err := openJSONL(o.fsyncLog)
	if err != nil {
		truth.close()
		return err
	}
	ids := md.IDs()
	limit := o.entries
	if o.crashAfter > 0 && (limit == 0 || o.crashAfter < limit) {
		limit = o.crashAfter
	}
	runners := make([]*spaceRunner, len(ids))
	g, gctx := errgroup.WithContext(ctx)
	for i, id := range ids {
		sr := &spaceRunner{id: id, o: &o, truth: truth, fsyncLog: fsl,
			rate: o.rate / float64(len(ids)), crash: o.crashAfter > 0 && limit == o.crashAfter}
		if limit > 0 {
			sr.quota = limit / uint64(len(ids))
			if uint64(i) < limit%uint64(len(ids)) {
				sr.quota++
			}
		}
		runners[i] = sr
		g.Go(func() error { return sr.run(gctx) })
	}
	err = g.Wait()
	if cerr := truth.close(); err == nil {
		err = cerr
	}
	if cerr := fsl.close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	// The rate is measured from the first space's start of writing, after
	// the replay of an existing WAL.
	end := time.Now()
	start := end
	for _, r := range runners {
		if !r.started.IsZero() && r.started.Before(start) {
			start = r.started
		}
	}
	el := end.Sub(start)
	var total uint64
	for _, r := range runners {
		total += r.written
		fmt.Fprintf(o.out, "%s: %d entries, last seq %d, last timestamp %s, %d checkpoints, %d warm pages, %d cold segments\n",
			r.id, r.written, r.lastSeq, walreplay.FormatTime(r.lastTS), r.checkpoints, r.warmWrites, r.coldSegments)
	}
	fmt.Fprintf(o.out, "wrote %d entries in %s (%.0f entries/s)\n", total, el.Round(time.Millisecond), float64(total)/el.Seconds())
	var torn []string
	for _, r := range runners {
		if r.crashed {
			torn = append(torn, r.tornInfo)
		}
	}
	if len(torn) > 0 {
		return &exitCodeError{code: exitCrash, err: fmt.Errorf("%w after %d entries: torn tails: %s", errCrashed, total, strings.Join(torn, "; "))}
	}
	return nil
}

// openOrCreateDir reads DIR/metadata.json, or creates a new data dir with
// the requested spaces when there is none.
func openOrCreateDir(o runOpts) (*engram.Metadata, error) {
	md, err := engram.ReadMetadata(o.dir)
	if err == nil {
		if md.Dim == 0 {
			md.Dim = defaultDim
		}
		if md.WALSegmentSize == 0 {
			md.WALSegmentSize = defaultSegSize
		}
		if len(md.Spaces) == 0 {
			return nil, fmt.Errorf("%s: %w: metadata.json lists no spaces", o.dir, errNotDataDir)
		}
		for _, id := range md.IDs() {
			if err := makeSpaceDirs(o.dir, id); err != nil {
				return nil, err
			}
		}
		return md, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	dim, seg := o.dim, o.segSize
	if dim == 0 {
		dim = defaultDim
	}
	if seg == 0 {
		seg = defaultSegSize
	}
	md = engram.NewMetadata(o.newIDs, time.Now().UnixNano(), seg, dim)
	if err := os.MkdirAll(o.dir, 0o755); err != nil {
		return nil, err
	}
	for _, id := range o.newIDs {
		if err := makeSpaceDirs(o.dir, id); err != nil {
			return nil, err
		}
		if err := writeCheckpoint(o.dir, id, engram.Checkpoint{}, true); err != nil {
			return nil, err
		}
	}
	return md, writeMetadata(o.dir, md, true)
}

// spaceRunner writes one space. Each space has its own goroutine, RNG
// streams, WAL writer and tiers; they share only the truth and fsync logs.
type spaceRunner struct {
	id       string
	o        *runOpts
	truth    *jsonlFile
	fsyncLog *jsonlFile
	rate     float64 // entries/s for this space
	quota    uint64  // entries to write (0: unlimited)
	crash    bool    // tear the tail after the quota

	w      *walreplay.Writer
	st     *walreplay.State
	tt     *truthTracker
	m      *model
	clk    *wallClock
	warm   *warmTier
	recent *recentRing
	dirty  dirtySet
	cold   []coldRecord

	written, lastSeq uint64
	lastTS           int64
	checkpoints      int
	warmWrites       int
	coldSegments     int
	tornInfo         string
	crashed          bool
	started          time.Time // when writing began (after the replay)
	lastCkpt         time.Time
	batchFirst       uint64
}

func (s *spaceRunner) open(ctx context.Context) error {
	o := s.o
	// OpenWriter first: it cuts a torn tail left by a previous crash, so
	// that the replay below and the writer agree on where the log ends.
	w, err := walreplay.OpenWriter(engram.WALDir(o.dir, s.id), walreplay.WriterOptions{MaxSegmentSize: o.segSize, BufferSize: 1 << 20})
	if err != nil {
		return fmt.Errorf("space %s: %w", s.id, err)
	}
	s.w = w
	s.st = walreplay.NewState()
	if w.LastSeq() > 0 {
		var pos walreplay.Position
		// `wal compact` (the memento agent compacts while the database
		// runs) may replace sealed segments between the listing and the
		// reads: a segment gone meanwhile means list and replay again.
		for attempt := 1; ; attempt++ {
			l, err := walreplay.OpenLog(engram.WALDir(o.dir, s.id))
			if err != nil {
				return fmt.Errorf("space %s: %w", s.id, err)
			}
			s.st = walreplay.NewState()
			pos, err = l.Replay(ctx, walreplay.Target{}, s.st)
			if err == nil {
				break
			}
			if !errors.Is(err, fs.ErrNotExist) || attempt == 5 {
				return fmt.Errorf("space %s: replay existing WAL: %w", s.id, err)
			}
		}
		if pos.Seq != w.LastSeq() {
			return fmt.Errorf("space %s: replay ended at seq %d but the writer resumes after %d", s.id, pos.Seq, w.LastSeq())
		}
	}
	s.lastSeq, s.lastTS = w.LastSeq(), w.LastTimestamp()
	// Streams are named by the resume point so that a resumed run does not
	// repeat the ids of the run before it.
	from := strconv.FormatUint(s.lastSeq, 10)
	s.m = newModel(newRNG(o.seed, "run", s.id, from), o.mix, o.dimFor())
	if o.profile != nil {
		s.m.text = o.profile.text
	}
	s.st.Each(func(id string, _ []byte) error { s.m.addLive(id); return nil })
	s.clk = newWallClock(newRNG(o.seed, "run", s.id, from, "clock"), s.lastTS, o.sameTS)
	if o.truth != "" {
		tag, err := readTimelineTag(o.dir, s.id)
		if err != nil {
			return err
		}
		s.tt = newTruthTracker(s.id, s.st, o.truthEvery, func(l truthLine) error { l.timelineTag = tag; return s.truth.write(l) })
	} else {
		s.st = nil // ids are in the model now; without truth the state is not needed
	}
	if s.warm, err = openWarm(engram.WarmPath(o.dir, s.id)); err != nil {
		return err
	}
	s.recent = newRecentRing(32)
	s.dirty.init()
	s.lastCkpt = time.Now()
	return nil
}

func (o *runOpts) dimFor() int {
	if o.dim == 0 {
		return defaultDim
	}
	return o.dim
}

func (s *spaceRunner) run(ctx context.Context) (err error) {
	if err := s.open(ctx); err != nil {
		if s.w != nil {
			s.w.Close()
		}
		return err
	}
	defer func() {
		if err != nil {
			s.w.Close() // best effort; the error that stopped us matters more
		}
		if cerr := s.warm.Close(); err == nil {
			err = cerr
		}
	}()
	o := s.o
	start := time.Now()
	s.started = start
	var e walreplay.Entry
	// With a rate, one batch per tick: the entries due by then are written,
	// flushed and (with --fsync) fsynced together, as a database group-commits.
	var tick *time.Ticker
	if s.rate > 0 {
		tick = time.NewTicker(o.batch)
		defer tick.Stop()
	}
	for {
		var due uint64
		if s.rate > 0 {
			el := time.Since(start)
			if o.duration > 0 {
				el = min(el, o.duration) // a late wake-up must not overshoot
			}
			due = uint64(el.Seconds() * s.rate)
		} else {
			due = s.written + 1024
		}
		if s.quota > 0 {
			due = min(due, s.quota)
		}
		s.batchFirst = s.written
		for s.written < due && ctx.Err() == nil {
			if err := s.writeOne(&e); err != nil {
				return err
			}
			if s.written-s.batchFirst >= 8192 {
				break // catching up: keep batches bounded
			}
		}
		if err := s.endBatch(); err != nil {
			return err
		}
		done := ctx.Err() != nil || (s.quota > 0 && s.written >= s.quota) ||
			(o.duration > 0 && time.Since(start) >= o.duration)
		if done {
			break
		}
		if time.Since(s.lastCkpt) >= o.ckptEvery || s.dirty.len() >= 50000 {
			if err := s.checkpoint(); err != nil {
				return err
			}
		}
		if tick != nil {
			select {
			case <-ctx.Done():
			case <-tick.C:
			}
		}
	}
	if s.tt != nil {
		if err := s.tt.final(); err != nil {
			return err
		}
		if err := s.truth.flush(); err != nil {
			return err
		}
	}
	if s.crash && s.written >= s.quota {
		return s.tearTail(&e)
	}
	if err := s.checkpoint(); err != nil {
		return err
	}
	return s.w.Close()
}

// writeOne appends the next entry and feeds the tiers and the truth.
func (s *spaceRunner) writeOne(e *walreplay.Entry) error {
	e.Seq, e.TimestampNS = s.lastSeq+1, s.clk.next()
	op := s.m.next(e)
	if err := s.w.Append(e); err != nil {
		return fmt.Errorf("space %s: %w", s.id, err)
	}
	if s.tt != nil {
		if err := s.tt.apply(e); err != nil {
			return fmt.Errorf("space %s: %w", s.id, err)
		}
	}
	s.lastSeq, s.lastTS = e.Seq, e.TimestampNS
	s.written++
	switch op {
	case opStore, opUpdate:
		s.dirty.put(&s.m.rec, e.Seq, e.TimestampNS, op == opStore)
		s.recent.add(&s.m.rec, e.Seq, e.TimestampNS)
	case opDelete:
		s.dirty.del(s.m.rec.ID, e.Seq)
	}
	return nil
}

// endBatch makes the batch visible (and durable with --fsync) and logs when.
func (s *spaceRunner) endBatch() error {
	if s.written == s.batchFirst {
		return nil
	}
	var err error
	if s.o.fsync {
		err = s.w.Sync()
	} else {
		err = s.w.Flush()
	}
	if err != nil {
		return fmt.Errorf("space %s: %w", s.id, err)
	}
	if err := s.fsyncLog.write(fsyncLine{Space: s.id, Sequence: s.lastSeq, TimestampNS: s.lastTS,
		FsyncNS: time.Now().UnixNano(), Fsync: s.o.fsync}); err != nil {
		return err
	}
	if err := s.fsyncLog.flush(); err != nil {
		return err
	}
	return s.truth.flush()
}

// checkpoint flushes the tiers to the state through the last WAL entry
// and then advances checkpoint.json, in the order a database must: WAL
// durable, tiers written, checkpoint published last.
func (s *spaceRunner) checkpoint() error {
	o := s.o
	if err := s.w.Sync(); err != nil {
		return fmt.Errorf("space %s: %w", s.id, err)
	}
	before := s.warm.written
	for _, d := range s.dirty.ops() {
		var err error
		if d.deleted {
			err = s.warm.del(d.rec.ID)
		} else {
			err = s.warm.put(&d.rec, d.seq, d.isNew)
			if len(s.cold) < o.coldRows {
				s.cold = append(s.cold, coldRecord{rec: d.rec, seq: d.seq, ts: d.ts})
			}
		}
		if err != nil {
			return err
		}
	}
	s.warmWrites += s.warm.written - before
	s.dirty.reset()
	if o.fsync {
		if err := s.warm.Sync(); err != nil {
			return fmt.Errorf("space %s: fsync warm: %w", s.id, err)
		}
	}
	if len(s.cold) >= o.coldRows {
		n, err := nextColdNumber(engram.ColdDir(o.dir, s.id))
		if err != nil {
			return err
		}
		if _, err := writeCold(engram.ColdDir(o.dir, s.id)+"/"+engram.ColdSegmentName(n), coldRowsFromRecords(s.cold, o.dimFor()), o.fsync); err != nil {
			return fmt.Errorf("space %s: %w", s.id, err)
		}
		s.cold = s.cold[:0]
		s.coldSegments++
	}
	live := len(s.m.live)
	if err := writeHot(o.dir, s.id, s.recent.items(), hotStatsDoc{Sequence: s.lastSeq, TimestampNS: s.lastTS,
		LiveRecords: live, Entries: s.lastSeq}, o.fsync); err != nil {
		return fmt.Errorf("space %s: %w", s.id, err)
	}
	if err := writeCheckpoint(o.dir, s.id, engram.Checkpoint{Sequence: s.lastSeq, TimestampNS: s.lastTS}, true); err != nil {
		return fmt.Errorf("space %s: %w", s.id, err)
	}
	s.checkpoints++
	s.lastCkpt = time.Now()
	return nil
}

// tearTail simulates the crash: it writes a random proper prefix of the
// next entry (header and part of the payload, or less) and abandons the
// writer, which closes the segment without fsync.
func (s *spaceRunner) tearTail(e *walreplay.Entry) error {
	r := newRNG(s.o.seed, "run", s.id, "crash", strconv.FormatUint(s.lastSeq, 10))
	e.Seq, e.TimestampNS = s.lastSeq+1, s.clk.next()
	s.m.next(e)
	n := 1 + r.IntN(int(e.Size())-1)
	if err := s.w.AbandonMidEntry(e, n); err != nil {
		return fmt.Errorf("space %s: %w", s.id, err)
	}
	s.tornInfo = fmt.Sprintf("%s %s: %d of %d bytes of seq %d", s.id, s.w.Segment(), n, e.Size(), e.Seq)
	// Not an error for the errgroup: that would cancel the other spaces
	// before they reach their own crash point.
	s.crashed = true
	return nil
}

// dirtySet holds the writes since the last checkpoint, last write per id
// wins, in first-write order.
type dirtySet struct {
	idx  map[string]int
	list []dirtyOp
	emb  []float32 // slab for the embeddings of list
}

type dirtyOp struct {
	rec     walreplay.Record
	seq     uint64
	ts      int64
	isNew   bool
	deleted bool
}

func (d *dirtySet) init()    { d.idx = map[string]int{} }
func (d *dirtySet) len() int { return len(d.list) }

// reset forgets the ops. The embedding slab is dropped, not reused: the
// cold buffer still references records copied out of it.
func (d *dirtySet) reset()         { clear(d.idx); d.list = d.list[:0]; d.emb = nil }
func (d *dirtySet) ops() []dirtyOp { return d.list }

// put records a store or update, copying the record (callers reuse it).
func (d *dirtySet) put(r *walreplay.Record, seq uint64, ts int64, isNew bool) {
	if cap(d.emb)-len(d.emb) < len(r.Embedding) {
		d.emb = make([]float32, 0, max(64*len(r.Embedding), 4096))
	}
	start := len(d.emb)
	d.emb = append(d.emb, r.Embedding...)
	op := dirtyOp{rec: walreplay.Record{ID: r.ID, Confidence: r.Confidence, Content: r.Content,
		Embedding: d.emb[start:len(d.emb):len(d.emb)]}, seq: seq, ts: ts, isNew: isNew}
	d.set(r.ID, op)
}

func (d *dirtySet) del(id string, seq uint64) {
	d.set(id, dirtyOp{rec: walreplay.Record{ID: id}, seq: seq, deleted: true})
}

func (d *dirtySet) set(id string, op dirtyOp) {
	if i, ok := d.idx[id]; ok {
		op.isNew = op.isNew || d.list[i].isNew
		d.list[i] = op
		return
	}
	d.idx[id] = len(d.list)
	d.list = append(d.list, op)
}
