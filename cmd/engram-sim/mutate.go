package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"memento/engram"
	"memento/walreplay"
)

type mutateOpts struct {
	dir        string
	profile    *profile // nil: default
	seed       uint64
	segSize    int64 // 0: metadata's
	mix        mix
	sameTS     float64
	tsStep     time.Duration
	walShare   float64
	warmShare  float64
	truth      string
	truthEvery uint64
	out        io.Writer
}

// mutateReport says what mutate did to one space.
type mutateReport struct {
	space                string
	walBefore, walAdded  int64
	entries              uint64
	firstSeq, lastSeq    uint64
	pagesTotal, pagesHit int
	coldName             string
	coldBytes            int64
	coldRows             int
	ckptFrom, ckptTo     uint64
}

func newMutateCmd() *cobra.Command {
	var (
		cf  contentFlags
		o   mutateOpts
		dir string
	)
	cmd := &cobra.Command{
		Use:   "mutate --dir DIR [--seed 2]",
		Short: "Apply a \"day of activity\" to a data dir (benchmarks' incremental backup)",
		Long: `mutate changes every space of DIR the way a day of activity would, as the
benchmarks expect: it appends --wal-share (2 %) more WAL bytes of valid
continuing entries (synthetic timestamps after the last one), rewrites
--warm-share (1 %) of the warm pages at random positions in place, adds one
cold segment (the day's records), rewrites the hot files and advances
checkpoint.json. Deterministic for a given dir and seed. Prints what it did.

--profile should name the profile the dir was generated with: it sets the
records' text, and with wal-heavy the day's cold segment and the hot
memtable get embeddings of their own (no embedding appears twice):
` + profileHelp(),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			m, err := cf.validate()
			if err != nil {
				return err
			}
			if o.profile, err = cf.profileOf(); err != nil {
				return err
			}
			if dir == "" {
				return usageErrorf("--dir is required")
			}
			if o.walShare < 0 || o.walShare > 10 || o.warmShare < 0 || o.warmShare > 1 {
				return usageErrorf("--wal-share must be in [0, 10] and --warm-share in [0, 1]")
			}
			if o.segSize, err = cf.segmentSize(0); err != nil {
				return err
			}
			if cf.dim != 0 {
				return usageErrorf("--dim: mutate uses the dimension in metadata.json")
			}
			o.dir, o.seed, o.mix, o.sameTS, o.tsStep, o.truth, o.truthEvery = dir, cf.seed, m, cf.sameTS, cf.tsStep, cf.truth, cf.truthEvy
			o.out = cmd.OutOrStdout()
			return mutate(cmd.Context(), o)
		},
	}
	cf.register(cmd, 2, 0)
	f := cmd.Flags()
	f.StringVar(&dir, "dir", "", "data dir to mutate")
	f.Float64Var(&o.walShare, "wal-share", 0.02, "WAL bytes to append, as a share of the existing WAL")
	f.Float64Var(&o.warmShare, "warm-share", 0.01, "share of warm pages to rewrite in place")
	return cmd
}

func mutate(ctx context.Context, o mutateOpts) error {
	if o.profile == nil {
		o.profile = profiles[0]
	}
	md, err := engram.ReadMetadata(o.dir)
	if err != nil {
		return fmt.Errorf("mutate: %w", err)
	}
	if o.segSize == 0 {
		o.segSize = md.WALSegmentSize
	}
	if o.segSize == 0 {
		o.segSize = defaultSegSize
	}
	dim := md.Dim
	if dim == 0 {
		dim = defaultDim
	}
	ids := md.IDs()
	reps := make([]mutateReport, len(ids))
	lines := make([][]truthLine, len(ids))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(runtime.GOMAXPROCS(0))
	for i, id := range ids {
		g.Go(func() error {
			var err error
			reps[i], lines[i], err = mutateSpace(gctx, o, id, dim)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	if o.truth != "" {
		j, err := openJSONL(o.truth)
		if err != nil {
			return err
		}
		for _, ls := range lines {
			for _, l := range ls {
				if err := j.write(l); err != nil {
					j.close()
					return err
				}
			}
		}
		if err := j.close(); err != nil {
			return err
		}
	}
	for _, r := range reps {
		fmt.Fprintf(o.out, "%s: wal +%d bytes (+%.2f %% of %d; %d entries, seq %d..%d); warm %d of %d pages rewritten in place; cold %s (%d bytes, %d rows); hot %d files rewritten; checkpoint %d -> %d\n",
			r.space, r.walAdded, 100*float64(r.walAdded)/float64(max(r.walBefore, 1)), r.walBefore, r.entries,
			r.firstSeq, r.lastSeq, r.pagesHit, r.pagesTotal, r.coldName, r.coldBytes, r.coldRows, len(engram.HotFiles), r.ckptFrom, r.ckptTo)
	}
	return nil
}

func mutateSpace(ctx context.Context, o mutateOpts, id string, dim int) (rep mutateReport, lines []truthLine, err error) {
	rep.space = id
	wd := engram.WALDir(o.dir, id)
	w, err := walreplay.OpenWriter(wd, walreplay.WriterOptions{MaxSegmentSize: o.segSize, BufferSize: 4 << 20})
	if err != nil {
		return rep, nil, fmt.Errorf("space %s: %w", id, err)
	}
	defer func() {
		if cerr := w.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("space %s: %w", id, cerr)
		}
	}()
	segs, err := walreplay.ListSegments(wd)
	if err != nil {
		return rep, nil, err
	}
	for _, s := range segs {
		rep.walBefore += s.Size
	}
	// Replay to learn the live ids (updates and deletes pick existing ones)
	// and, with --truth, to digest the state afterwards.
	st := walreplay.NewState()
	if w.LastSeq() > 0 {
		l, err := walreplay.OpenLog(wd)
		if err != nil {
			return rep, nil, err
		}
		if _, err := l.Replay(ctx, walreplay.Target{}, st); err != nil {
			return rep, nil, fmt.Errorf("space %s: replay: %w", id, err)
		}
	}
	from := strconv.FormatUint(w.LastSeq(), 10)
	m := newModel(newRNG(o.seed, "mutate", id, from), o.mix, dim)
	m.text = o.profile.text
	st.Each(func(id string, _ []byte) error { m.addLive(id); return nil })
	last := w.LastTimestamp()
	if last == 0 {
		last = epochNS
	}
	clk := &synthClock{r: newRNG(o.seed, "mutate", id, from, "clock"), last: last, meanStep: int64(o.tsStep), sameTS: o.sameTS}
	var tt *truthTracker
	if o.truth != "" {
		tt = newTruthTracker(id, st, o.truthEvery, func(l truthLine) error { lines = append(lines, l); return nil })
	}
	target := int64(o.walShare * float64(rep.walBefore))
	rep.firstSeq = w.LastSeq() + 1
	var (
		e      walreplay.Entry
		cold   []coldRecord
		recent = newRecentRing(32)
		ck     engram.Checkpoint
	)
	for rep.walAdded < target {
		e.Seq, e.TimestampNS = w.LastSeq()+1, clk.next()
		op := m.next(&e)
		if err := w.Append(&e); err != nil {
			return rep, nil, fmt.Errorf("space %s: %w", id, err)
		}
		if tt != nil {
			if err := tt.apply(&e); err != nil {
				return rep, nil, err
			}
		}
		rep.walAdded += e.Size()
		rep.entries++
		if op == opStore || op == opUpdate {
			r := m.rec
			if o.profile.uniqueEmbeddings {
				r.Embedding = nil // drawn afresh when the segment is written
			} else {
				r.Embedding = slices.Clone(r.Embedding)
			}
			cold = append(cold, coldRecord{rec: r, seq: e.Seq, ts: e.TimestampNS})
			recent.add(&m.rec, e.Seq, e.TimestampNS)
		}
		if ck.Sequence == 0 && rep.walAdded >= target*9/10 {
			ck = engram.Checkpoint{Sequence: e.Seq, TimestampNS: e.TimestampNS}
		}
	}
	rep.lastSeq = w.LastSeq()
	if tt != nil {
		if err := tt.final(); err != nil {
			return rep, nil, err
		}
	}
	if err := w.Sync(); err != nil {
		return rep, nil, fmt.Errorf("space %s: %w", id, err)
	}

	// Warm: rewrite a random 1 % of the pages where they are.
	warm, err := openWarm(engram.WarmPath(o.dir, id))
	if err != nil {
		return rep, nil, err
	}
	rep.pagesTotal = int(warm.pages)
	r := newRNG(o.seed, "mutate", id, from, "warm")
	k := int(o.warmShare*float64(warm.pages) + 0.999999)
	emb := make([]float32, dim)
	var sb strings.Builder
	for _, p := range samplePages(r, int(warm.pages), k) {
		rec := randomRecord(r, dim, emb, &sb, o.profile.text)
		lsn := rep.firstSeq
		if rep.lastSeq >= rep.firstSeq {
			lsn += r.Uint64N(rep.lastSeq - rep.firstSeq + 1)
		}
		if err := warm.writePage(uint32(p), lsn, &rec); err != nil {
			warm.Close()
			return rep, nil, err
		}
	}
	rep.pagesHit = warm.written
	if err := warm.Close(); err != nil {
		return rep, nil, err
	}

	// Cold: one new segment holding the day's records.
	n, err := nextColdNumber(engram.ColdDir(o.dir, id))
	if err != nil {
		return rep, nil, err
	}
	rep.coldName, rep.coldRows = engram.ColdSegmentName(n), len(cold)
	rows := coldRowsFromRecords(cold, dim)
	if o.profile.uniqueEmbeddings {
		cr := newRNG(o.seed, "mutate", id, from, "cold")
		rows.embedding = func(dst []byte, _ int) []byte { return appendNormalBytes(dst, cr, dim) }
	}
	if rep.coldBytes, err = writeCold(filepath.Join(engram.ColdDir(o.dir, id), rep.coldName), rows, false); err != nil {
		return rep, nil, fmt.Errorf("space %s: %w", id, err)
	}

	// Hot files and the checkpoint.
	if old, err := readCheckpoint(o.dir, id); err == nil {
		rep.ckptFrom = old.Sequence
	}
	if ck.Sequence == 0 { // nothing appended (--wal-share 0)
		ck = engram.Checkpoint{Sequence: w.LastSeq(), TimestampNS: w.LastTimestamp()}
	}
	rep.ckptTo = ck.Sequence
	hot := recent.items()
	if o.profile.uniqueEmbeddings {
		freshEmbeddings(hot, newRNG(o.seed, "mutate", id, from, "hot"))
	}
	if err := writeHot(o.dir, id, hot, hotStatsDoc{Sequence: ck.Sequence, TimestampNS: ck.TimestampNS,
		LiveRecords: len(m.live), Entries: w.LastSeq()}, false); err != nil {
		return rep, nil, err
	}
	return rep, lines, writeCheckpoint(o.dir, id, ck, true)
}

// samplePages picks k distinct page numbers in [0, n) (Floyd's algorithm,
// O(k) memory whatever the file size), returned in ascending order.
func samplePages(r *rand.Rand, n, k int) []int {
	k = min(k, n)
	chosen := make(map[int]bool, k)
	out := make([]int, 0, k)
	for j := n - k; j < n; j++ {
		t := r.IntN(j + 1)
		if chosen[t] {
			t = j
		}
		chosen[t] = true
		out = append(out, t)
	}
	slices.Sort(out)
	return out
}
