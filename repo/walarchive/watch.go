package walarchive

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
)

// WatchOptions configure a Watcher.
type WatchOptions struct {
	// DataDir is the Engram data dir whose spaces/<space>/wal directories
	// are watched.
	DataDir string
	// Interval is the poll period of every space (and of the discovery of
	// new spaces).
	Interval time.Duration
	// MinGap is the least time from the start of one archive run of a space
	// to the start of the next (0: DefaultMinGap, at most Interval/2). Runs
	// of one space never overlap: under load a run starts when the
	// previous one ended. Each run that ships something writes about three
	// files to the repository (a pack, an index file, a wal/ run file), so
	// MinGap bounds a busy space's requests to about 3/MinGap per second.
	MinGap time.Duration
	// Spaces are the spaces to watch; nil watches every space ListSpaces
	// returns, discovering new ones every Interval.
	Spaces []string
	// ListSpaces lists the spaces of DataDir (with Spaces nil): the
	// watchable ones, and an error for each entry that is not one (each
	// reported once).
	ListSpaces func(dataDir string) (spaces []string, notWatchable []error, err error)
	// Logger receives the watcher's log lines; nil discards them.
	Logger *slog.Logger

	// Observe is called after every archive run that was not stopped by
	// the context (metrics); res may be nil when err is set.
	Observe func(space string, res *WALArchiveResult, err error, now time.Time)
	// OnError is called after Observe when a run failed; the watcher keeps
	// going and retries at the next change or poll.
	OnError func(space string, err error)
	// OnShipped is called after a run that shipped new records.
	OnShipped func(res *WALArchiveResult)
}

// DefaultMinGap is WatchOptions.MinGap when none is given: with runs that
// store only the appended bytes (the pieces of repository-format.md,
// "Incremental shipping") a run costs little, and a busy space gets about
// 4 runs a second, 12 files written to the repository (docs/pitr.md).
const DefaultMinGap = 250 * time.Millisecond

// minGap is the spacing of runs of one space (WatchOptions.MinGap).
func (o *WatchOptions) minGap() time.Duration {
	if o.MinGap > 0 {
		return o.MinGap
	}
	return min(DefaultMinGap, o.Interval/2)
}

// Watcher archives the WAL of a data dir's spaces continuously: a write to a
// space's WAL directory (a filesystem notification) triggers an archive run
// of that space, runs of one space start at least MinGap apart (a run
// started when the previous one ended if that took longer), and every space
// is polled every Interval in case notifications are lost (network
// filesystems, overflow). A run stores only what was appended since the last
// one, so the gap bounds the number of files written to the repository, not
// the bytes. Each space has its own loop; the callbacks may be called
// concurrently for different spaces.
type Watcher struct {
	ar   *WALArchiver
	opts WatchOptions
	log  *slog.Logger

	mu       sync.Mutex
	triggers map[string]chan struct{}
	wg       sync.WaitGroup
	fsw      *fsnotify.Watcher
	notSpace map[string]bool // entries of spaces/ reported as not watchable (once each)
}

// NewWatcher returns a watcher running ar's archive runs.
func NewWatcher(ar *WALArchiver, opts WatchOptions) *Watcher {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Watcher{ar: ar, opts: opts, log: log, triggers: map[string]chan struct{}{}, notSpace: map[string]bool{}}
}

// Run watches until ctx is cancelled, then waits for the running archive
// runs to stop and returns nil. A failed run or listing is logged (and
// passed to the callbacks), never returned.
func (w *Watcher) Run(ctx context.Context) error {
	var err error
	if w.fsw, err = fsnotify.NewWatcher(); err != nil {
		w.log.Warn("filesystem notifications unavailable, polling only", "err", err)
		w.fsw = nil
	} else {
		defer w.fsw.Close()
		go w.events(ctx)
	}
	w.log.Info("watching", "data_dir", w.opts.DataDir, "interval", w.opts.Interval)
	for {
		if err := w.discover(ctx); err != nil {
			w.log.Error("list spaces", "err", err)
		}
		select {
		case <-ctx.Done():
			w.wg.Wait()
			w.ar.Wait()
			return nil
		case <-time.After(w.opts.Interval):
		}
	}
}

// discover starts a loop for every space not yet watched.
func (w *Watcher) discover(ctx context.Context) error {
	spaces := w.opts.Spaces
	if spaces == nil && w.opts.ListSpaces != nil {
		var bad []error
		var err error
		if spaces, bad, err = w.opts.ListSpaces(w.opts.DataDir); err != nil {
			return err
		}
		for _, err := range bad {
			if !w.notSpace[err.Error()] {
				w.notSpace[err.Error()] = true
				w.log.Error("not watched", "err", err)
			}
		}
	}
	for _, sp := range spaces {
		w.mu.Lock()
		_, ok := w.triggers[sp]
		if !ok {
			w.triggers[sp] = make(chan struct{}, 1)
		}
		trig := w.triggers[sp]
		w.mu.Unlock()
		if ok {
			continue
		}
		if w.fsw != nil {
			if err := w.fsw.Add(filepath.Join(w.opts.DataDir, "spaces", sp, "wal")); err != nil {
				w.log.Warn("no notifications for this space, polling it", "space", sp, "err", err)
			}
		}
		w.wg.Add(1)
		go w.loop(ctx, sp, trig)
	}
	return nil
}

// events turns filesystem notifications into triggers of the space whose
// wal/ directory changed.
func (w *Watcher) events(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-w.fsw.Events:
			if !ok {
				return
			}
			sp := filepath.Base(filepath.Dir(filepath.Dir(ev.Name)))
			if !strings.HasPrefix(filepath.Base(ev.Name), "wal-") {
				continue
			}
			w.mu.Lock()
			trig := w.triggers[sp]
			w.mu.Unlock()
			if trig != nil {
				select {
				case trig <- struct{}{}:
				default:
				}
			}
		case err, ok := <-w.fsw.Errors:
			if !ok {
				return
			}
			w.log.Warn("filesystem notifications", "err", err)
		}
	}
}

// loop archives one space whenever triggered or polled.
func (w *Watcher) loop(ctx context.Context, space string, trig chan struct{}) {
	defer w.wg.Done()
	minGap := w.opts.minGap()
	var last time.Time
	var timeline uint32 // of the last run, to notice a restore's fork
	for {
		select {
		case <-ctx.Done():
			return
		case <-trig:
		case <-time.After(w.opts.Interval):
		}
		woke := time.Now()
		if wait := time.Until(last.Add(minGap)); wait > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
		}
		select { // the wait covered any trigger that arrived meanwhile
		case <-trig:
		default:
		}
		waited := time.Since(woke) // the gap to the previous run
		last = time.Now()
		res, err := w.ar.archiveSpace(ctx, w.opts.DataDir, space, true)
		if ctx.Err() != nil {
			return
		}
		if w.opts.Observe != nil {
			w.opts.Observe(space, res, err, time.Now())
		}
		if err != nil {
			w.log.Error("archive run failed; retrying at the next change or poll", "space", space, "err", err)
			if w.opts.OnError != nil {
				w.opts.OnError(space, err)
			}
		}
		if res != nil && res.Timeline != timeline {
			if timeline != 0 {
				// A restore in place swapped a new space directory in and
				// this run recorded its fork: archiving goes on on the new
				// timeline. The notifications followed the old directory
				// (moved aside): watch the new one.
				w.log.Warn("the space is on a new timeline (a restore's fork was recorded); archiving continues on it",
					"space", space, "timeline", res.Timeline, "previous", timeline)
				w.rewatch(space)
			}
			timeline = res.Timeline
		}
		if res != nil && res.Segments > 0 {
			w.log.Debug("archived", append([]any{"space", space, "segments", res.Segments, "new_bytes", res.NewBytes, "last_seq", res.LastSeq,
				"seconds", res.Seconds, "waited_ms", float64(waited.Microseconds()) / 1000}, res.Phases.LogAttrs()...)...)
			if w.opts.OnShipped != nil {
				w.opts.OnShipped(res)
			}
		}
	}
}

// rewatch replaces the space's WAL directory notification by one of the
// directory now at its path (a restore swapped the space directory).
func (w *Watcher) rewatch(space string) {
	if w.fsw == nil {
		return
	}
	p := filepath.Join(w.opts.DataDir, "spaces", space, "wal")
	_ = w.fsw.Remove(p)
	if err := w.fsw.Add(p); err != nil {
		w.log.Warn("no notifications for this space, polling it", "space", space, "err", err)
	}
}
