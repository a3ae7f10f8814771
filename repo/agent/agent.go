package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/robfig/cron/v3"

	"memento/chunk"
	"memento/engram"
	"memento/repo"
	"memento/repo/backup"
	"memento/repo/replicate"
	"memento/repo/walarchive"
)

// Task names (the `task` label of the metrics, docs/operations/agent-contract.md).
const (
	JobWALArchive = "wal_archive"
	JobBackup     = "backup"
	JobForget     = "forget"
	JobPrune      = "prune"
	JobVerify     = "verify"
	JobWALCompact = "wal_compact"
	JobReplicate  = "replicate"
)

// Options wire an agent to the world. Config is validated by New; the
// functions are what cmd/memento provides (opening repositories and
// destinations is the CLI's: S3 flags, passwords).
type Options struct {
	Config Config
	// Open opens the repository (no lock taken); called at every session.
	// The agent closes its backend (if an io.Closer) when the session ends.
	Open func(ctx context.Context) (*repo.Repository, error)
	// Destination opens a replication destination (replicate.to), creating
	// it when missing. The agent closes it (if an io.Closer) when the
	// replication run ends.
	Destination func(ctx context.Context, to string) (repo.Backend, error)
	// ListSpaces lists the data dir's spaces (as walarchive.WatchOptions);
	// nil uses engram.ListSpaces.
	ListSpaces func(dataDir string) (spaces []string, bad []error, err error)
	Logger     *slog.Logger
	// Registry receives the metrics; nil makes a private one (Handler serves it).
	Registry *prometheus.Registry

	// RetryMin and RetryMax bound the exponential backoff of a failed job
	// and of reopening the repository (defaults 5s and 5m).
	RetryMin, RetryMax time.Duration
	// AfterBackupFiles, for tests, is called in a space backup once its
	// files are read, before the snapshot is saved.
	AfterBackupFiles func(space string)
	// PruneBetweenPhases, for tests, is called in a prune between its phase
	// 1 (shared lock: archiving and jobs go on) and its exclusive section
	// (maintenance.PruneOptions.BetweenPhases).
	PruneBetweenPhases func(ctx context.Context) error
}

// Agent is one running `memento agent`.
type Agent struct {
	opts  Options
	cfg   Config
	log   *slog.Logger
	reg   *prometheus.Registry
	m     *metrics
	sched map[string]cron.Schedule // job -> schedule; absent: off
	// intervals are the nominal intervals of sched (scheduleInterval, at New).
	intervals map[string]time.Duration
	rate      int64
	start     time.Time
	// replays is shared by the agent's space backups so that their state
	// replays take turns (backup.ConcurrentReplays), as in one `backup --all`.
	replays *backup.ReplayLimiter

	mu       sync.Mutex
	spaces   map[string]*spaceState
	jobs     map[jobKey]*jobState
	cur      *repo.Repository // the session's repository, nil between sessions
	repoErr  string           // why no session runs ("" while one does)
	probeErr string           // the last probe of the repository failed

	pruneLockedSince time.Time // prune first found another process's lock
	sizeAt           time.Time // when repoSize was last listed
	repl             map[string]*replState
	ready            bool // set once the first session started
	lastLoop         time.Time
	compactRO        bool // the data dir is read-only: compaction off
	repoSize         int64
	ranges           rangeCache

	// prunePause is how long the last prune paused WAL archiving (its
	// exclusive section, from the pause to the resume).
	prunePause time.Duration
}

type jobKey struct{ job, space string }

// jobState is what the agent knows of one job of one space.
type jobState struct {
	running     bool
	lastStart   time.Time
	lastDur     time.Duration
	lastErr     string
	lastSuccess time.Time
	lastFailure time.Time
	failures    int       // consecutive
	retryAt     time.Time // zero: no retry pending
	detail      string    // e.g. the snapshot saved
}

// spaceState is what the agent knows of one space.
type spaceState struct {
	archiveOKStart time.Time // when the last successful archive run listed the WAL (WALArchiveResult.ReadAt)
	archiveOK      bool      // the last archive run succeeded
	archiveErr     string
	archivedSeq    uint64
	archivedTS     int64
	snapshots      int
	latest         *repo.Snapshot
	verified       map[string]verifyState // level -> last result
}

type verifyState struct {
	time   time.Time
	passed bool
	snap   string
}

type replState struct {
	lastComplete time.Time
	lastErr      string
	since        time.Time // first failure since the last complete run
}

// jobResult are the figures of one run for the metrics.
type jobResult struct {
	read, added int64
	detail      string
}

// New checks the configuration and prepares an agent; Run runs it.
func New(opts Options) (*Agent, error) {
	if err := opts.Config.Validate(); err != nil {
		return nil, err
	}
	if opts.Open == nil {
		return nil, errors.New("agent: Options.Open is required")
	}
	if opts.ListSpaces == nil {
		opts.ListSpaces = func(dataDir string) ([]string, []error, error) {
			l, err := engram.ListSpaces(dataDir)
			if err != nil {
				return nil, nil, err
			}
			return l.Spaces, l.Bad, nil
		}
	}
	if opts.RetryMin <= 0 {
		opts.RetryMin = 5 * time.Second
	}
	if opts.RetryMax <= 0 {
		opts.RetryMax = 5 * time.Minute
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	a := &Agent{opts: opts, cfg: opts.Config, log: log, reg: opts.Registry, sched: map[string]cron.Schedule{}, start: time.Now(), replays: backup.NewReplayLimiter(0),
		spaces: map[string]*spaceState{}, jobs: map[jobKey]*jobState{}, repl: map[string]*replState{}, repoErr: "not opened yet"}
	c := opts.Config
	for job, expr := range map[string]string{JobBackup: c.Schedules.Backup, JobVerify: c.Schedules.Verify, JobPrune: c.Schedules.Prune,
		JobWALCompact: c.Schedules.WALCompact, JobReplicate: c.Schedules.Replicate} {
		s, err := parseSchedule(job, expr)
		if err != nil {
			return nil, err
		}
		if s != nil {
			a.sched[job] = s
		}
	}
	if c.WALCompactThreshold == 0 {
		delete(a.sched, JobWALCompact)
	}
	if len(c.Replicate.To) == 0 {
		delete(a.sched, JobReplicate)
	} else if opts.Destination == nil {
		return nil, errors.New("agent: replicate.to needs Options.Destination")
	}
	a.intervals = map[string]time.Duration{}
	for job, s := range a.sched {
		a.intervals[job] = scheduleInterval(s, a.start)
	}
	a.rate, _ = replicate.ParseByteRate(c.Replicate.Limit)
	if a.reg == nil {
		a.reg = prometheus.NewRegistry()
	}
	a.m = newMetrics(a.reg, a)
	for _, to := range c.Replicate.To {
		a.repl[redact(to)] = &replState{since: a.start}
	}
	return a, nil
}

// Registry returns the registry the metrics are in.
func (a *Agent) Registry() *prometheus.Registry { return a.reg }

// Run runs the agent until ctx is cancelled, then stops the running jobs
// (an interrupted backup keeps no partial snapshot) and returns nil. It
// fails at start when another agent runs on the data dir (ErrAgentRunning),
// or when the repository cannot be opened the first time for a reason
// retrying does not cure (repo.ErrNoRepository, repo.ErrWrongPassword).
func (a *Agent) Run(ctx context.Context) error {
	dl, err := lockDataDir(a.cfg.DataDir, a.cfg.CacheDir)
	if err != nil {
		return err
	}
	defer dl.unlock()
	defer a.m.up.Set(0)
	a.log.Info("agent started", "data_dir", a.cfg.DataDir, "repository", redact(a.cfg.Repository), "lock", dl.path)
	first := true
	backoff := time.Duration(0)
	for ctx.Err() == nil {
		opened := time.Now()
		r, err := a.opts.Open(ctx)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			if first && (errors.Is(err, repo.ErrNoRepository) || errors.Is(err, repo.ErrWrongPassword)) {
				return err
			}
			backoff = a.nextBackoff(backoff)
			a.setRepoErr(fmt.Sprintf("repository unreachable: %v (retry in %s)", oneLine(err.Error()), backoff))
			a.log.Error("cannot open the repository; retrying", "err", err, "retry_in", backoff)
			sleep(ctx, backoff)
			continue
		}
		first = false
		a.log.Debug("repository opened", "seconds", time.Since(opened).Seconds())
		err = a.session(ctx, r)
		closeBackend(r.Backend(), a.log)
		if err != nil && ctx.Err() == nil {
			backoff = a.nextBackoff(backoff)
			a.setRepoErr(fmt.Sprintf("%s: %v (retry in %s)", sessionErrKind(err), oneLine(err.Error()), backoff))
			a.log.Error("session ended; reopening the repository", "err", err, "retry_in", backoff)
			sleep(ctx, backoff)
			continue
		}
		if err == nil {
			backoff = 0
		}
	}
	a.log.Info("agent stopped")
	return nil
}

func (a *Agent) nextBackoff(d time.Duration) time.Duration {
	if d <= 0 {
		return a.opts.RetryMin
	}
	return min(2*d, a.opts.RetryMax)
}

// sessionErrKind names why a session ended for /readyz: another process's
// lock, a lost lock, or (anything else: its lock file could not be written,
// the storage went away) an unreachable repository.
func sessionErrKind(err error) string {
	switch {
	case errors.Is(err, repo.ErrLockLost):
		return "repository lock lost"
	case errors.Is(err, repo.ErrLocked):
		return "repository locked"
	default:
		return "repository unreachable"
	}
}

func (a *Agent) setRepoErr(s string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.repoErr = s
	a.cur = nil
}

// session runs the watcher and the scheduler under one shared lock until
// ctx ends or the lock is lost. Prune runs in the session as a job: its
// phase 1 beside archiving and the other jobs, its short exclusive section
// with every job done and archiving paused (scheduler.pauseForPrune).
func (a *Agent) session(ctx context.Context, r *repo.Repository) error {
	lock, err := r.Lock(ctx, false, "agent")
	if err != nil {
		return err
	}
	defer lock.Unlock()
	sctx, cancel := context.WithCancel(lock.Context()) // cancelled if the lock is lost
	defer cancel()
	a.mu.Lock()
	a.cur, a.repoErr, a.ready = r, "", true
	a.mu.Unlock()

	pipe := chunk.NewPipeline(heavyWorkers(), chunk.DefaultLevel)
	defer pipe.Close()
	ar := walarchive.NewWALArchiver(r, pipe)
	defer ar.Close()
	w := walarchive.NewWatcher(ar, walarchive.WatchOptions{DataDir: a.cfg.DataDir, Interval: time.Duration(a.cfg.WAL.Interval),
		MinGap: time.Duration(a.cfg.WAL.MinGap), ListSpaces: a.opts.ListSpaces, Logger: a.log, Observe: a.observeArchive})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _ = w.Run(sctx) }()
	// Archiving starts first: the listing of snapshots and of the
	// repository's size is for the scheduler and the status, not for the
	// watcher.
	a.refreshRepoState(sctx, r, true)

	s := &scheduler{a: a, r: r, pipe: pipe, ar: ar, lock: lock, done: make(chan struct{}, 16)}
	s.run(sctx)
	cancel()
	s.wg.Wait()
	wg.Wait()
	a.log.Debug("session's jobs and archive runs stopped")
	a.mu.Lock()
	a.cur = nil
	a.repoErr = "session ended; opening the repository again"
	a.mu.Unlock()
	if lerr := r.LockLost(); lerr != nil {
		return lerr
	}
	if ctx.Err() == nil {
		if err := context.Cause(sctx); err != nil && !errors.Is(err, context.Canceled) {
			return err
		}
	}
	return nil
}

// heavyWorkers is the parallelism of the agent's backups (their chunking
// pipeline) and verifications: one fewer than the cores the process may use
// (at least one), so that they never take every core from the WAL archive
// runs, whose duration is the RPO lag. A run beside a backup or a
// verification took 3 to 6 times as long as one alone (debug log phases,
// BenchmarkAgentRPO with compressed schedules).
func heavyWorkers() int { return max(1, runtime.GOMAXPROCS(0)-1) }

// observeArchive is the watcher's Observe: metrics and the space's state.
func (a *Agent) observeArchive(space string, res *walarchive.WALArchiveResult, err error, now time.Time) {
	a.m.observeArchive(space, res, err, now)
	a.mu.Lock()
	defer a.mu.Unlock()
	st := a.space(space)
	a.lastLoop = now
	if err != nil {
		st.archiveOK, st.archiveErr = false, oneLine(err.Error())
		return
	}
	st.archiveOK, st.archiveErr = true, ""
	start := now
	if res != nil {
		// Entries complete on disk when the run listed the WAL are
		// archived: the lag is measured from then, not from the run's
		// start (which may have waited for locks and a pack listing).
		start = res.ReadAt
		if start.IsZero() {
			start = now.Add(-time.Duration(res.Seconds * float64(time.Second)))
		}
		if res.LastSeq > 0 {
			st.archivedSeq, st.archivedTS = res.LastSeq, res.LastTS
		}
	}
	st.archiveOKStart = start
}

// space returns the state of a space, creating it; a.mu held.
func (a *Agent) space(name string) *spaceState {
	st := a.spaces[name]
	if st == nil {
		st = &spaceState{verified: map[string]verifyState{}}
		a.spaces[name] = st
	}
	return st
}

// rpoLags returns, per space, an upper bound of the age of the oldest WAL
// write not yet archived: 0 when no WAL file changed since the last
// successful archive run listed the WAL, else the time since that listing
// (since the agent started when no run succeeded yet). It is computed when
// asked (a scrape), so it grows between runs rather than jumping at them.
func (a *Agent) rpoLags(now time.Time) map[string]time.Duration {
	spaces, _, _ := a.opts.ListSpaces(a.cfg.DataDir)
	a.mu.Lock()
	okStart := map[string]time.Time{}
	for _, sp := range spaces {
		okStart[sp] = a.space(sp).archiveOKStart
	}
	a.mu.Unlock()
	out := map[string]time.Duration{}
	for sp, since := range okStart {
		if !since.IsZero() && !walChangedSince(filepath.Join(a.cfg.DataDir, "spaces", sp, "wal"), since.Add(-mtimeSlack)) {
			out[sp] = 0
			continue
		}
		if since.IsZero() {
			since = a.start
		}
		out[sp] = max(now.Sub(since), 0)
	}
	return out
}

// mtimeSlack covers the coarse clock file modification times are taken from
// (a jiffy, up to 10 ms, behind the clock the run read): a write just after
// a run listed the WAL may carry a modification time just before it.
const mtimeSlack = 20 * time.Millisecond

// walChangedSince reports whether a WAL segment of dir was modified at or
// after t (or dir cannot be read: then nothing is known to be archived).
func walChangedSince(dir string, t time.Time) bool {
	des, err := os.ReadDir(dir)
	if err != nil {
		return true
	}
	for _, de := range des {
		if !strings.HasPrefix(de.Name(), "wal-") {
			continue
		}
		fi, err := de.Info()
		if err != nil || !fi.ModTime().Before(t) {
			return true
		}
	}
	return false
}

func (a *Agent) replicationLags(now time.Time) map[string]time.Duration {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := map[string]time.Duration{}
	for remote, st := range a.repl {
		if st.lastErr == "" && !st.lastComplete.IsZero() {
			out[remote] = 0
		} else {
			out[remote] = now.Sub(st.since)
		}
	}
	return out
}

// refreshRepoState reloads the snapshot counts and the latest snapshot of
// each space, and the repository's size when force or not listed for a
// minute.
func (a *Agent) refreshRepoState(ctx context.Context, r *repo.Repository, force bool) {
	// The catalog's heads count the snapshots and only the newest of each
	// space is decoded: this runs after every job, and the catalog grows
	// by a snapshot per space and backup.
	heads, err := r.SnapshotHeads(ctx)
	var newest []*repo.Snapshot
	if err == nil {
		newest, err = r.LatestPerSpace(ctx)
	}
	if err == nil {
		// A local repository whose directory went away lists no
		// snapshots and no error: without its config the listing says
		// nothing, and /readyz must not turn "unreachable" into "no
		// backup yet" (the probe reports it).
		_, err = r.Backend().Stat(ctx, repo.ConfigName)
	}
	if err != nil {
		a.log.Warn("could not list snapshots", "err", err)
		return
	}
	count := map[string]int{}
	for _, h := range heads {
		if h.Space != "" {
			count[h.Space]++
		}
	}
	latest := map[string]*repo.Snapshot{}
	for _, sn := range newest {
		latest[sn.Space] = sn
	}
	a.ranges.invalidate()
	size := int64(-1)
	a.mu.Lock()
	stale := force || time.Since(a.sizeAt) >= sizeEvery
	a.mu.Unlock()
	if stale {
		// Listing every file of a large S3 repository costs: at most once
		// a minute (and after each prune).
		if size = repoSize(ctx, r.Backend()); size >= 0 {
			a.mu.Lock()
			a.sizeAt = time.Now()
			a.mu.Unlock()
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for sp, st := range a.spaces {
		if count[sp] == 0 {
			st.snapshots, st.latest = 0, nil
			a.m.snapshots.WithLabelValues(sp).Set(0)
		}
	}
	for sp, n := range count {
		st := a.space(sp)
		st.snapshots, st.latest = n, latest[sp]
		a.m.snapshots.WithLabelValues(sp).Set(float64(n))
	}
	if size >= 0 {
		a.repoSize = size
		a.m.repoSize.Set(float64(size))
	}
}

// sizeEvery is how often the repository's size is listed at most.
const sizeEvery = time.Minute

// repoSize sums the sizes of the repository's files (-1 when listing fails).
func repoSize(ctx context.Context, be repo.Backend) int64 {
	files := map[string]int64{}
	add := func(name string, size int64) error { files[name] = size; return nil }
	for _, dir := range []string{"", repo.DirData, repo.DirIndex, repo.DirSnapshots, repo.DirKeys, "wal", repo.DirLogs} {
		if err := be.List(ctx, dir, add); err != nil && !errors.Is(err, os.ErrNotExist) {
			return -1
		}
	}
	var n int64
	for _, s := range files {
		n += s
	}
	return n
}

// redact removes credentials from a location (user:pass@ in a URL).
func redact(loc string) string {
	if i := strings.Index(loc, "://"); i >= 0 {
		rest := loc[i+3:]
		if at := strings.Index(rest, "@"); at >= 0 && at < strings.IndexAny(rest+"/", "/") {
			return loc[:i+3] + rest[at+1:]
		}
	}
	return loc
}

func oneLine(s string) string { return strings.ReplaceAll(strings.TrimSpace(s), "\n", "; ") }

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
