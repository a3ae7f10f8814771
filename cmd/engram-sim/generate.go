package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"memento/engram"
	"memento/walreplay"
)

// contentFlags are the flags shared by generate, run and mutate that shape
// what is written.
type contentFlags struct {
	seed     uint64
	mix      string
	sameTS   float64
	tsStep   time.Duration
	segSize  string
	dim      int
	truth    string
	truthEvy uint64
	profile  string
}

func (c *contentFlags) register(cmd *cobra.Command, defaultSeed, defaultTruthEvery uint64) {
	f := cmd.Flags()
	f.Uint64Var(&c.seed, "seed", defaultSeed, "seed: the same seed writes the same content")
	f.StringVar(&c.mix, "mix", "store=60,update=30,delete=10", "relative weights of store, update, delete (and marker) entries")
	f.Float64Var(&c.sameTS, "same-ts", 0.05, "share of entries that reuse the previous entry's timestamp")
	f.DurationVar(&c.tsStep, "ts-step", 5*time.Millisecond, "mean step between synthetic timestamps (generate, mutate)")
	f.StringVar(&c.segSize, "segment-size", "", "WAL segment rotation size, e.g. 64MiB (default: metadata.json's, else 64MiB)")
	f.IntVar(&c.dim, "dim", 0, "embedding dimension (default: metadata.json's, else 768)")
	f.StringVar(&c.truth, "truth", "", "append ground-truth JSON lines {space,sequence,timestamp_ns,digest} to FILE")
	f.Uint64Var(&c.truthEvy, "truth-every", defaultTruthEvery, "write a truth line every N entries per space (each costs a digest of the whole state, ~150 ms per 100 MB)")
	f.StringVar(&c.profile, "profile", "default", "data profile: "+strings.Join(profileNames(), ", ")+" (see --help)")
}

// profileOf resolves --profile.
func (c *contentFlags) profileOf() (*profile, error) { return lookupProfile(c.profile) }

func (c *contentFlags) validate() (mix, error) {
	m, err := parseMix(c.mix)
	if err != nil {
		return m, fmt.Errorf("%w: --mix: %w", errUsage, err)
	}
	if c.sameTS < 0 || c.sameTS >= 1 {
		return m, usageErrorf("--same-ts %g: want 0 <= share < 1", c.sameTS)
	}
	if c.tsStep <= 0 {
		return m, usageErrorf("--ts-step %s: must be positive", c.tsStep)
	}
	if c.dim < 0 || c.dim > 65535 {
		return m, usageErrorf("--dim %d: want 1..65535", c.dim)
	}
	return m, nil
}

// segmentSize resolves --segment-size against a default.
func (c *contentFlags) segmentSize(def int64) (int64, error) {
	if c.segSize == "" {
		return def, nil
	}
	n, err := parseSize(c.segSize)
	if err != nil || n < 4096 {
		return 0, usageErrorf("--segment-size %q: want a size of at least 4KiB", c.segSize)
	}
	return n, nil
}

const (
	defaultDim     = 768
	defaultSegSize = 64 << 20
	// coldSegTarget is the size generate aims at for one cold segment.
	coldSegTarget = 32 << 20
)

// spacePlan is how generate splits one space's byte budget between tiers:
// about 45 % WAL, 30 % warm pages, the rest cold segments, plus a few small
// hot files. These are the proportions of a database whose WAL is retained
// for a while after checkpoints, which is what backups see.
type spacePlan struct {
	walBytes   int64
	warmPages  int
	coldRows   []int // rows per cold segment
	hotRecords int
	estEntries uint64 // estimate of WAL entries, for tier LSNs
}

func entrySizeEstimate(dim int) int64 {
	return walreplay.HeaderSize + 2 + 20 + 4 + 2 + 4*int64(dim) + 4 + 110
}

func planSpace(budget int64, dim int, pr *profile) spacePlan {
	var p spacePlan
	rec := entrySizeEstimate(dim) - 110 + pr.textEst
	hot := pr.hotBytes(budget)
	p.hotRecords = int(max(hot/rec, 1))
	p.walBytes = budget * pr.walPct / 100
	p.warmPages = int(max(budget*pr.warmPct/100/pageSize, 16))
	cold := budget - p.walBytes - int64(p.warmPages)*pageSize - hot
	n := max(int((cold+coldSegTarget/2)/coldSegTarget), 2)
	rows := max(int(cold/int64(n)/int64(coldRowSize(dim)-110+int(pr.textEst))), 1)
	for range n {
		p.coldRows = append(p.coldRows, rows)
	}
	p.estEntries = uint64(max(p.walBytes/rec, 1))
	return p
}

type generateOpts struct {
	dir        string
	profile    *profile // nil: default
	size       int64
	ids        []string
	seed       uint64
	dim        int
	segSize    int64
	mix        mix
	sameTS     float64
	tsStep     time.Duration
	truth      string
	truthEvery uint64
	workers    int
	out        io.Writer
}

func newGenerateCmd() *cobra.Command {
	var (
		cf      contentFlags
		dir     string
		size    string
		spaces  int
		names   string
		workers int
	)
	cmd := &cobra.Command{
		Use:   "generate --dir DIR --size 1G [--spaces 3] [--seed 1]",
		Short: "Write a complete Engram data dir of about the given size, fast and deterministically",
		Long: `generate writes a new Engram data dir: per space, WAL segments (about 45 %
of the space's share of --size), the warm page file (30 %), cold segments
(the rest), hot files and checkpoint.json (at about 90 % of the WAL), plus
DIR/metadata.json. Timestamps are synthetic, starting at 2026-11-01T00:00:00Z,
so the same seed gives the same bytes. Spaces are written in parallel.

--profile chooses the shape of the data (shares per tier, record text, and
for mutate the day's changes); the shares above are the default profile's:
` + profileHelp(),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			m, err := cf.validate()
			if err != nil {
				return err
			}
			pr, err := cf.profileOf()
			if err != nil {
				return err
			}
			if dir == "" {
				return usageErrorf("--dir is required")
			}
			sz, err := parseSize(size)
			if err != nil || sz <= 0 {
				return usageErrorf("--size %q: want a positive size such as 1G or 20MB", size)
			}
			ids, err := spaceIDsFromFlags(names, spaces)
			if err != nil {
				return err
			}
			seg, err := cf.segmentSize(defaultSegSize)
			if err != nil {
				return err
			}
			dim := cf.dim
			if dim == 0 {
				dim = defaultDim
			}
			if workers <= 0 {
				workers = runtime.GOMAXPROCS(0)
			}
			return generate(cmd.Context(), generateOpts{dir: dir, profile: pr, size: sz, ids: ids, seed: cf.seed, dim: dim,
				segSize: seg, mix: m, sameTS: cf.sameTS, tsStep: cf.tsStep, truth: cf.truth,
				truthEvery: cf.truthEvy, workers: workers, out: cmd.OutOrStdout()})
		},
	}
	cf.register(cmd, 1, 0)
	f := cmd.Flags()
	f.StringVar(&dir, "dir", "", "data dir to create (must not exist or be empty)")
	f.StringVar(&size, "size", "1G", "total size to write (1G = 1 GiB; 20MB = 20e6 bytes)")
	f.IntVar(&spaces, "spaces", 3, "number of spaces (named space-a, space-b, ...)")
	f.StringVar(&names, "space-names", "", "comma-separated space ids instead of --spaces, e.g. space-a,tenant_01")
	f.IntVar(&workers, "workers", 0, "parallel writers (default: GOMAXPROCS)")
	return cmd
}

// generate writes the data dir. Every task (a space's WAL, warm file, each
// cold segment) draws from its own seeded stream, so tasks run on all cores
// in any order and the bytes still depend on the seed alone.
func generate(ctx context.Context, o generateOpts) error {
	start := time.Now()
	if o.profile == nil {
		o.profile = profiles[0]
	}
	if err := requireEmptyDir(o.dir); err != nil {
		return err
	}
	if err := os.MkdirAll(o.dir, 0o755); err != nil {
		return err
	}
	if err := writeMetadata(o.dir, engram.NewMetadata(o.ids, epochNS, o.segSize, o.dim), false); err != nil {
		return err
	}
	budget := o.size / int64(len(o.ids))
	plans := make([]spacePlan, len(o.ids))
	for i, id := range o.ids {
		plans[i] = planSpace(budget, o.dim, o.profile)
		if err := makeSpaceDirs(o.dir, id); err != nil {
			return err
		}
	}
	lines := make([][]truthLine, len(o.ids))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(o.workers)
	// Largest tasks first so that the pool ends together.
	for i, id := range o.ids {
		g.Go(func() error {
			l, err := generateWAL(gctx, o, id, plans[i])
			lines[i] = l
			return err
		})
	}
	for i, id := range o.ids {
		g.Go(func() error {
			r := newRNG(o.seed, "generate", id, "warm")
			return generateWarm(engram.WarmPath(o.dir, id), plans[i].warmPages, o.dim, plans[i].estEntries, r, o.profile)
		})
	}
	for i, id := range o.ids {
		p := plans[i]
		var firstSeq uint64 = 1
		step := p.estEntries / uint64(len(p.coldRows)+1)
		for k, rows := range p.coldRows {
			seq := firstSeq + uint64(k)*step
			g.Go(func() error {
				if err := gctx.Err(); err != nil {
					return err
				}
				r := newRNG(o.seed, "generate", id, "cold", strconv.Itoa(k+1))
				ts := epochNS + int64(seq)*int64(o.tsStep)
				_, err := writeCold(filepath.Join(engram.ColdDir(o.dir, id), engram.ColdSegmentName(k+1)), syntheticColdRows(r, rows, o.dim, seq, ts, o.profile.text), false)
				return err
			})
		}
	}
	if err := g.Wait(); err != nil {
		return err
	}
	if o.truth != "" {
		if err := writeTruthFile(o.truth, lines); err != nil {
			return err
		}
	}
	total, files, err := dirSize(o.dir)
	if err != nil {
		return err
	}
	el := time.Since(start)
	fmt.Fprintf(o.out, "generated %s: %d spaces, %d files, %d bytes in %s (%.0f MB/s)\n",
		o.dir, len(o.ids), files, total, el.Round(time.Millisecond), float64(total)/1e6/el.Seconds())
	return nil
}

// generateWAL writes one space's WAL, then its hot files and checkpoint.json
// (the checkpoint lands at ~90 % of the WAL: the tiers hold the state
// through it, the WAL goes on past it). It returns the space's truth lines.
func generateWAL(ctx context.Context, o generateOpts, id string, p spacePlan) (lines []truthLine, err error) {
	w, err := walreplay.OpenWriter(engram.WALDir(o.dir, id), walreplay.WriterOptions{MaxSegmentSize: o.segSize, NoSync: true, BufferSize: 4 << 20})
	if err != nil {
		return nil, fmt.Errorf("space %s: %w", id, err)
	}
	defer func() {
		if cerr := w.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("space %s: %w", id, cerr)
		}
	}()
	m := newModel(newRNG(o.seed, "generate", id, "wal"), o.mix, o.dim)
	m.text = o.profile.text
	clk := &synthClock{r: newRNG(o.seed, "generate", id, "clock"), last: epochNS, meanStep: int64(o.tsStep), sameTS: o.sameTS}
	var tt *truthTracker
	if o.truth != "" {
		tt = newTruthTracker(id, walreplay.NewState(), o.truthEvery, func(l truthLine) error {
			lines = append(lines, l)
			return nil
		})
	}
	recent := newRecentRing(p.hotRecords)
	var (
		ck      engram.Checkpoint
		written int64
		e       walreplay.Entry
		last    uint64
	)
	ckAt := p.walBytes * 9 / 10
	for seq := uint64(1); written < p.walBytes; seq++ {
		if seq&1023 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		e.Seq, e.TimestampNS = seq, clk.next()
		op := m.next(&e)
		if err := w.Append(&e); err != nil {
			return nil, fmt.Errorf("space %s: %w", id, err)
		}
		last = e.Seq
		if tt != nil {
			if err := tt.apply(&e); err != nil {
				return nil, fmt.Errorf("space %s: %w", id, err)
			}
		}
		written += e.Size()
		if ck.Sequence == 0 && written >= ckAt {
			ck = engram.Checkpoint{Sequence: seq, TimestampNS: e.TimestampNS}
		}
		if ck.Sequence != 0 && (op == opStore || op == opUpdate) {
			recent.add(&m.rec, seq, e.TimestampNS)
		}
	}
	if tt != nil {
		if err := tt.final(); err != nil {
			return nil, err
		}
	}
	hot := recent.items()
	if o.profile.uniqueEmbeddings {
		freshEmbeddings(hot, newRNG(o.seed, "generate", id, "hot"))
	}
	if err := writeHot(o.dir, id, hot, hotStatsDoc{Sequence: ck.Sequence, TimestampNS: ck.TimestampNS,
		LiveRecords: len(m.live), Entries: last}, false); err != nil {
		return nil, err
	}
	return lines, writeCheckpoint(o.dir, id, ck, false)
}

// writeTruthFile writes generate's truth lines, space by space.
func writeTruthFile(path string, lines [][]truthLine) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	j, err := openJSONL(path)
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
	return j.close()
}

// requireEmptyDir refuses to generate over existing data: generate makes a
// dir from scratch, and mixing it with old files would void determinism.
func requireEmptyDir(dir string) error {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if len(ents) > 0 {
		names := make([]string, 0, 3)
		for _, e := range ents[:min(3, len(ents))] {
			names = append(names, e.Name())
		}
		return fmt.Errorf("generate: %s is not empty (%s...): remove it or choose another --dir", dir, strings.Join(names, ", "))
	}
	return nil
}

// dirSize sums the sizes of the regular files under dir.
func dirSize(dir string) (total int64, files int, err error) {
	err = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		total += fi.Size()
		files++
		return nil
	})
	return total, files, err
}
