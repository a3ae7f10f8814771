package replicate

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"path"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zeebo/blake3"
	"golang.org/x/sync/errgroup"

	"memento/repo"
	"memento/repo/walarchive"
)

// Replication copies repository files as they are — already encrypted,
// already named by their hash — from one backend to others. It needs no
// password and never decodes a file: a file's name is its BLAKE3, so
// "the destination has a file of that name and size" means it has those
// bytes, and copying what is missing is a complete replication.
//
// The order of the copy is what makes an interrupted run harmless. Files
// are copied phase by phase, each phase finished before the next begins,
// referred-to files first:
//
//	keys/  config  data/  index/  wal/  snapshots/  logs/  (anything else)
//
// so whenever the destination holds a snapshot, it already holds the index
// files and packs the snapshot needs (the same rule a backup follows), and
// a rerun simply copies what is still missing. locks/ is never copied: a
// lock belongs to a process using the source.
//
// The source is listed referrers-first in effect: one full listing, then
// data/ and index/ again. A backup that finishes while the listing runs
// writes its packs and index file before its manifest, so every manifest
// seen by the first listing has its packs in the second.

// ReplicateOptions tune a replication.
type ReplicateOptions struct {
	// Parallel is how many files are copied at once to each destination (default 4).
	Parallel int
	// BytesPerSecond limits the average rate of everything read from the
	// source, across all destinations (0: unlimited).
	BytesPerSecond int64
	// Verify re-reads every file written and checks it against its name
	// (BLAKE3), or against the source for the config.
	Verify bool
	// Delete removes destination files that the source no longer has,
	// after the copy and referrers first (snapshots before index files
	// before packs), so the destination stays a valid repository.
	Delete bool
	// Progress, if set, counts files and bytes copied as they complete.
	Progress *repo.Progress
	Logger   *slog.Logger
}

// ReplicateStats is the result for one destination.
type ReplicateStats struct {
	Destination  string  `json:"destination"`
	Files        int64   `json:"files"`         // files copied
	Bytes        int64   `json:"bytes"`         // bytes copied
	Skipped      int64   `json:"skipped"`       // files the destination already had
	SkippedBytes int64   `json:"skipped_bytes"` // their bytes
	Replaced     int64   `json:"replaced"`      // damaged destination files (wrong size) copied again
	Vanished     int64   `json:"vanished"`      // source files deleted (pruned) while the run went on
	Verified     int64   `json:"verified"`      // files re-read and checked
	Deleted      int64   `json:"deleted"`       // destination files removed by Delete
	Seconds      float64 `json:"seconds"`
	Error        string  `json:"error,omitempty"`

	// Retained counts destination files Delete would remove that are under
	// an Object Lock retention; they stay until it expires, and with them
	// the files they refer to (the later phases are not run).
	Retained int64 `json:"retained,omitempty"`

	// RetentionQueried counts the destination's packs whose retention was
	// asked about before new manifests and WAL records were copied into an
	// Object Locked destination, RetentionExtended those lengthened
	// (extendRetention).
	RetentionQueried  int64 `json:"retention_queried,omitempty"`
	RetentionExtended int64 `json:"retention_extended,omitempty"`
}

// Replicate copies every file of the repository on src that dst lacks.
func Replicate(ctx context.Context, src, dst repo.Backend, opts ReplicateOptions) (ReplicateStats, error) {
	st, err := ReplicateAll(ctx, src, []repo.Backend{dst}, opts)
	return st[0], err
}

// ReplicateAll replicates src to several destinations at once (fan-out):
// the source is listed once, each destination is planned and copied on its
// own, and one failing destination does not stop the others. The error
// joins the destinations' errors.
func ReplicateAll(ctx context.Context, src repo.Backend, dsts []repo.Backend, opts ReplicateOptions) ([]ReplicateStats, error) {
	if opts.Parallel <= 0 {
		opts.Parallel = 4
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	stats := make([]ReplicateStats, len(dsts))
	for i, d := range dsts {
		stats[i].Destination = d.Location()
	}
	start := time.Now()
	files, err := listSource(ctx, src)
	if err != nil {
		for i := range stats {
			stats[i].Error = err.Error()
		}
		return stats, err
	}
	rp := &replicator{src: src, files: files, opts: opts, lim: newRateLimiter(opts.BytesPerSecond)}
	errs := make([]error, len(dsts))
	var wg sync.WaitGroup
	for i, d := range dsts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = rp.run(ctx, d, &stats[i])
			stats[i].Seconds = time.Since(start).Seconds()
			if errs[i] != nil {
				errs[i] = fmt.Errorf("replicate %s to %s: %w", src.Location(), d.Location(), errs[i])
				stats[i].Error = errs[i].Error()
			}
		}()
	}
	wg.Wait()
	return stats, errors.Join(errs...)
}

type replicator struct {
	src   repo.Backend
	files map[string]int64
	opts  ReplicateOptions
	lim   *rateLimiter
}

// Phases of a replication, in copy order.
const (
	phaseKeys = iota
	phaseConfig
	phaseData
	phaseIndex
	phaseWAL
	phaseSnapshots
	phaseLogs
	phaseOther
	numPhases
)

// replicationPhase is where a file goes in the copy order; skip is true for
// files never replicated (locks).
func replicationPhase(name string) (phase int, skip bool) {
	if name == repo.ConfigName {
		return phaseConfig, false
	}
	top, _, _ := strings.Cut(name, "/")
	switch top {
	case repo.DirKeys:
		return phaseKeys, false
	case repo.DirData:
		return phaseData, false
	case repo.DirIndex:
		return phaseIndex, false
	case walarchive.DirWAL, walarchive.DirHistory:
		return phaseWAL, false
	case repo.DirSnapshots:
		return phaseSnapshots, false
	case repo.DirLogs:
		return phaseLogs, false
	case repo.DirLocks:
		return 0, true
	}
	return phaseOther, false
}

// listSource lists the whole source, then data/ and index/ again (see above).
func listSource(ctx context.Context, src repo.Backend) (map[string]int64, error) {
	files := map[string]int64{}
	add := func(name string, size int64) error {
		files[name] = size
		return nil
	}
	if err := src.List(ctx, "", add); err != nil {
		return nil, fmt.Errorf("list source %s: %w", src.Location(), err)
	}
	if _, ok := files[repo.ConfigName]; !ok {
		return nil, fmt.Errorf("%w at %s (no config file): nothing to replicate", repo.ErrNoRepository, src.Location())
	}
	for _, dir := range []string{repo.DirIndex, repo.DirData} {
		if err := src.List(ctx, dir, add); err != nil {
			return nil, fmt.Errorf("list source %s: %w", src.Location(), err)
		}
	}
	return files, nil
}

type copyJob struct {
	name    string
	size    int64
	replace bool // the destination has a file of another size
}

func (rp *replicator) run(ctx context.Context, dst repo.Backend, st *ReplicateStats) error {
	have := map[string]int64{}
	if err := dst.List(ctx, "", func(name string, size int64) error {
		have[name] = size
		return nil
	}); err != nil {
		return fmt.Errorf("list destination: %w", err)
	}
	if _, ok := have[repo.ConfigName]; ok {
		if err := rp.sameRepository(ctx, dst); err != nil {
			return err
		}
	}
	var phases [numPhases][]copyJob
	for name, size := range rp.files {
		phase, skip := replicationPhase(name)
		if skip {
			continue
		}
		dsize, ok := have[name]
		switch {
		case ok && dsize == size:
			st.Skipped++
			st.SkippedBytes += size
		case ok && name == repo.ConfigName:
			// sameRepository compared the bytes; a config is never replaced.
			st.Skipped++
			st.SkippedBytes += dsize
		default:
			phases[phase] = append(phases[phase], copyJob{name: name, size: size, replace: ok})
		}
	}
	for phase, jobs := range phases {
		if phase == phaseWAL && len(phases[phaseWAL])+len(phases[phaseSnapshots]) > 0 {
			if err := rp.extendRetention(ctx, dst, have, st); err != nil {
				return err
			}
		}
		// Large files first, so the phase does not end on one big straggler.
		sort.Slice(jobs, func(i, j int) bool {
			if jobs[i].size != jobs[j].size {
				return jobs[i].size > jobs[j].size
			}
			return jobs[i].name < jobs[j].name
		})
		if err := rp.copyPhase(ctx, dst, jobs, st); err != nil {
			return err
		}
	}
	if rp.opts.Delete {
		return rp.deleteExtra(ctx, dst, have, st)
	}
	return nil
}

// extendRetention makes the packs the destination already had retained at
// least as long as the manifests and WAL records about to be copied, on a
// destination that retains what it is written (S3 Object Lock with a
// retention period): those may reuse packs copied long ago, whose
// retention would expire first and let the destination's credentials
// delete data a retained snapshot needs (docs/operations/ransomware.md,
// "Packs shared by newer snapshots"). Replication decodes nothing, so it
// cannot tell which packs the new files use: it asks about every pack
// both the source and the destination hold (a pack the source no longer
// lists was pruned there, so nothing copied now uses it), eight at a
// time, and extends those retained for less, as a backup does. The packs
// copied by this run were just written with the retention and a margin.
func (rp *replicator) extendRetention(ctx context.Context, dst repo.Backend, have map[string]int64, st *ReplicateStats) error {
	ex, ok := dst.(repo.RetentionExtender)
	if !ok || ex.RetentionPeriod() <= 0 {
		return nil
	}
	var packs [][32]byte
	for name, size := range rp.files {
		if !strings.HasPrefix(name, repo.DirData+"/") {
			continue
		}
		id, hashed := hashName(name)
		if dsize, ok := have[name]; ok && dsize == size && hashed {
			packs = append(packs, id)
		}
	}
	if len(packs) == 0 {
		return nil
	}
	start := time.Now()
	_, extended, err := repo.ExtendPackRetention(ctx, ex, packs)
	st.RetentionQueried += int64(len(packs))
	st.RetentionExtended += int64(extended)
	if err != nil {
		return fmt.Errorf("retention of the destination's packs (new manifests must not outlive the data they use; nothing was copied after the packs and index files; the destination's credentials need s3:GetObjectRetention and s3:PutObjectRetention): %w", err)
	}
	level := slog.LevelDebug
	if extended > 0 {
		level = slog.LevelInfo
	}
	rp.opts.Logger.Log(ctx, level, "retention of the destination's packs", "destination", dst.Location(),
		"queried", len(packs), "extended", extended, "seconds", time.Since(start).Seconds())
	return nil
}

// sameRepository refuses a destination whose config differs from the source's.
func (rp *replicator) sameRepository(ctx context.Context, dst repo.Backend) error {
	a, err := repo.ReadAll(ctx, rp.src, repo.ConfigName, 1<<20)
	if err != nil {
		return fmt.Errorf("source: %w", err)
	}
	b, err := repo.ReadAll(ctx, dst, repo.ConfigName, 1<<20)
	if err != nil {
		return fmt.Errorf("destination: %w", err)
	}
	if !bytes.Equal(a, b) {
		return fmt.Errorf("%w: %s has another config than %s; replicate into an empty location", ErrReplicaMismatch, dst.Location(), rp.src.Location())
	}
	return nil
}

func (rp *replicator) copyPhase(ctx context.Context, dst repo.Backend, jobs []copyJob, st *ReplicateStats) error {
	if len(jobs) == 0 {
		return nil
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(rp.opts.Parallel)
	var files, bytes, replaced, vanished, verified atomic.Int64
	for _, j := range jobs {
		if gctx.Err() != nil {
			break
		}
		g.Go(func() error {
			gone, err := rp.copyFile(gctx, dst, j)
			switch {
			case err != nil:
				return err
			case gone:
				vanished.Add(1)
				rp.opts.Logger.Debug("source file vanished during replication (pruned)", "file", j.name)
				return nil
			}
			if rp.opts.Verify {
				if err := rp.verify(gctx, dst, j); err != nil {
					return err
				}
				verified.Add(1)
			}
			files.Add(1)
			bytes.Add(j.size)
			if j.replace {
				replaced.Add(1)
			}
			if p := rp.opts.Progress; p != nil {
				p.Files.Add(1)
			}
			return nil
		})
	}
	err := g.Wait()
	st.Files += files.Load()
	st.Bytes += bytes.Load()
	st.Replaced += replaced.Load()
	st.Vanished += vanished.Load()
	st.Verified += verified.Load()
	if err == nil {
		err = ctx.Err()
	}
	return err
}

// copyFile copies one file; gone is true when the source no longer has it.
func (rp *replicator) copyFile(ctx context.Context, dst repo.Backend, j copyJob) (gone bool, err error) {
	if j.replace {
		// Only a damaged or foreign file has the right name and the wrong
		// size; backends refuse to overwrite one, so it goes first.
		rp.opts.Logger.Warn("destination file has the wrong size; copying it again", "file", j.name, "destination", dst.Location())
		if err := dst.Delete(ctx, j.name); err != nil {
			return false, fmt.Errorf("replace %s: %w", j.name, err)
		}
	}
	f := &sourceFile{ctx: ctx, be: rp.src, name: j.name, size: j.size, lim: rp.lim}
	defer f.Close()
	var r io.Reader = f
	if p := rp.opts.Progress; p != nil {
		r = &countReader{r: f, f: f, n: &p.Bytes}
	}
	if err := dst.Write(ctx, j.name, r, j.size); err != nil {
		if f.err != nil && errors.Is(f.err, fs.ErrNotExist) {
			return true, nil
		}
		if f.err != nil && ctx.Err() == nil {
			return false, fmt.Errorf("copy %s: source: %w", j.name, f.err)
		}
		return false, fmt.Errorf("copy %s: %w", j.name, err)
	}
	return false, nil
}

// countReader counts bytes for the progress bar and keeps ReadAt and Seek
// visible to the destination.
type countReader struct {
	r io.Reader
	f *sourceFile
	n *atomic.Int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

func (c *countReader) ReadAt(p []byte, off int64) (int, error) {
	n, err := c.f.ReadAt(p, off)
	c.n.Add(int64(n))
	return n, err
}

func (c *countReader) Seek(off int64, whence int) (int64, error) { return c.f.Seek(off, whence) }

// verify re-reads a copied file from the destination. Files named by a hash
// must hash to their name; the config must equal the source's; other files
// (from future versions) must have the right size. A file that fails is
// deleted, so that a rerun copies it again, and the error wraps ErrCorrupt.
func (rp *replicator) verify(ctx context.Context, dst repo.Backend, j copyJob) error {
	rc, err := dst.Open(ctx, j.name, 0, -1)
	if err != nil {
		return fmt.Errorf("verify %s: %w", j.name, err)
	}
	defer rc.Close()
	h := blake3.New()
	n, err := io.Copy(h, rc)
	if err != nil {
		return fmt.Errorf("verify %s: %w", j.name, err)
	}
	var sum [32]byte
	h.Sum(sum[:0])
	bad := ""
	switch want, hashed := hashName(j.name); {
	case n != j.size:
		bad = fmt.Sprintf("has %d bytes, not %d", n, j.size)
	case hashed && sum != want:
		bad = "content does not match its name (hash mismatch) after copying"
	case j.name == repo.ConfigName:
		srcCfg, err := repo.ReadAll(ctx, rp.src, repo.ConfigName, 1<<20)
		if err != nil {
			return fmt.Errorf("verify config: source: %w", err)
		}
		if blake3.Sum256(srcCfg) != sum {
			bad = "differs from the source's config after copying"
		}
	}
	if bad == "" {
		return nil
	}
	_ = dst.Delete(context.WithoutCancel(ctx), j.name)
	return repo.Corruptf("replica file "+j.name+" at "+dst.Location(), "%s; it was deleted, rerun to copy it again (if it fails again, check the source with 'memento verify')", bad)
}

// hashName returns the hash a file is named by, if it is named by one.
func hashName(name string) ([32]byte, bool) {
	b, err := hex.DecodeString(path.Base(name))
	if err != nil || len(b) != 32 {
		return [32]byte{}, false
	}
	return [32]byte(b), true
}

// deleteExtra removes destination files the source does not have, referrers
// first: other and logs/, snapshots/, wal/, index/, data/, keys/. The config
// and locks are never deleted. Each phase finishes before the next starts, so
// no destination manifest ever refers to a pack already deleted.
func (rp *replicator) deleteExtra(ctx context.Context, dst repo.Backend, have map[string]int64, st *ReplicateStats) error {
	var phases [numPhases][]string
	for name := range have {
		phase, skip := replicationPhase(name)
		if skip || name == repo.ConfigName {
			continue
		}
		if _, ok := rp.files[name]; !ok {
			phases[phase] = append(phases[phase], name)
		}
	}
	if len(phases[phaseKeys]) > 0 && !rp.hasKeys() {
		return fmt.Errorf("refusing to delete the destination's keys: the source lists none")
	}
	for p := numPhases - 1; p >= 0; p-- {
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(rp.opts.Parallel)
		var n, kept atomic.Int64
		for _, name := range phases[p] {
			g.Go(func() error {
				if rt, ok := dst.(repo.Retainer); ok && rt.ObjectLocked() {
					until, _, err := rt.Retention(gctx, name)
					if err != nil {
						return fmt.Errorf("delete %s: %w", name, err)
					}
					if !until.IsZero() {
						kept.Add(1)
						return nil
					}
				}
				if err := dst.Delete(gctx, name); err != nil {
					return fmt.Errorf("delete %s: %w", name, err)
				}
				n.Add(1)
				return nil
			})
		}
		err := g.Wait()
		st.Deleted += n.Load()
		if err != nil {
			return err
		}
		if k := kept.Load(); k > 0 {
			// What the retained files refer to must stay too: stop here.
			st.Retained += k
			rp.opts.Logger.Warn("files the source no longer has are under Object Lock retention on the destination; they and what they refer to stay until it expires",
				"files", k, "destination", dst.Location())
			return nil
		}
	}
	return nil
}

func (rp *replicator) hasKeys() bool {
	for name := range rp.files {
		if strings.HasPrefix(name, repo.DirKeys+"/") {
			return true
		}
	}
	return false
}
