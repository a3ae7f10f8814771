package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"memento/chunk"
	"memento/repo"
)

func newWALWatchCommand(a *app) *cobra.Command {
	var (
		sel      spaceSel
		interval time.Duration
		shipLog  string
		metrics  string
	)
	c := &cobra.Command{
		Use:   "watch --data-dir DIR (--space ID | --all) [--interval 1s]",
		Short: "Archive the WAL continuously (filesystem notifications plus a poll fallback)",
		Long: `watch does what 'wal archive' does, continuously: a write to a space's WAL
directory triggers an archive run of that space, runs of one space are at
least --interval/2 apart (each run re-stores the open segment's last partial
chunk, so back-to-back runs would waste space), and every space is polled every
--interval in case notifications are lost (network filesystems, overflow).
An entry is therefore in the repository at most about --interval after it was
written. The archive position is read from the repository at start, so a
restarted watch continues where the last one stopped without re-shipping.
SIGINT/SIGTERM stop it cleanly (exit 0), during start-up too.`,
		Example: `  memento wal watch --data-dir /var/lib/engram --all --interval 1s`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if interval <= 0 {
				return usagef("--interval must be positive")
			}
			if _, _, err := sel.resolve(false); err != nil {
				return err
			}
			err := a.walWatch(cmd.Context(), sel, interval, shipLog, metrics)
			if err != nil && cmd.Context().Err() != nil {
				// SIGINT/SIGTERM during start-up (opening the repository,
				// taking the lock) stops the watch as cleanly as later:
				// nothing was archived yet, so nothing is partial.
				a.log.Info("stopped by a signal during start-up", "err", err)
				return nil
			}
			return err
		},
	}
	sel.register(c, true)
	c.Flags().DurationVar(&interval, "interval", time.Second, "longest time between a WAL write and its archive run (poll period)")
	c.Flags().StringVar(&metrics, "metrics-addr", "", "serve Prometheus metrics at http://ADDR/metrics, e.g. 127.0.0.1:9464 (off by default)")
	c.Flags().StringVar(&shipLog, "ship-log", "", "append one JSON line per archive run that shipped entries: {space,last_seq,last_ts,shipped_ns} (RPO measurement)")
	return c
}

// shipLine is one line of --ship-log: the archive holds space's entries
// through LastSeq since ShippedNS (wall clock, after the wal/ file was written).
type shipLine struct {
	Space     string  `json:"space"`
	LastSeq   uint64  `json:"last_seq"`
	LastTS    int64   `json:"last_ts"`
	ShippedNS int64   `json:"shipped_ns"`
	Bytes     int64   `json:"bytes"`
	Seconds   float64 `json:"seconds"`
}

type watcher struct {
	a        *app
	ar       *repo.WALArchiver
	dataDir  string
	interval time.Duration
	fixed    []string // --space; nil with --all

	mu       sync.Mutex
	triggers map[string]chan struct{}
	wg       sync.WaitGroup
	fsw      *fsnotify.Watcher
	ship     *os.File
	shipMu   sync.Mutex
	metrics  *watchMetrics   // nil without --metrics-addr
	notSpace map[string]bool // entries of spaces/ reported as not watchable (once each)
}

func (a *app) walWatch(ctx context.Context, sel spaceSel, interval time.Duration, shipLog, metricsAddr string) error {
	r, err := a.open(ctx)
	if err != nil {
		return err
	}
	defer r.Close()
	lock, err := r.Lock(ctx, false, "wal watch")
	if err != nil {
		return err
	}
	defer lock.Unlock()
	ctx = lock.Context() // cancelled if the lock is lost
	pipe := chunk.NewPipeline(0, chunk.DefaultLevel)
	defer pipe.Close()
	w := &watcher{a: a, ar: r.NewWALArchiver(pipe), dataDir: sel.dataDir, interval: interval, triggers: map[string]chan struct{}{}, notSpace: map[string]bool{}}
	defer w.ar.Close()
	if !sel.all {
		w.fixed = sel.spaces
	}
	if metricsAddr != "" {
		reg := prometheus.NewRegistry()
		w.metrics = newWatchMetrics(reg)
		if err := serveMetrics(ctx, metricsAddr, reg, a.log); err != nil {
			return err
		}
	}
	if shipLog != "" {
		if w.ship, err = os.OpenFile(shipLog, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644); err != nil {
			return err
		}
		defer w.ship.Close()
	}
	if w.fsw, err = fsnotify.NewWatcher(); err != nil {
		a.log.Warn("filesystem notifications unavailable, polling only", "err", err)
	} else {
		defer w.fsw.Close()
		go w.events(ctx)
	}
	a.log.Info("watching", "data_dir", sel.dataDir, "interval", interval)
	for {
		if err := w.discover(ctx); err != nil {
			a.log.Error("list spaces", "err", err)
		}
		select {
		case <-ctx.Done():
			w.wg.Wait()
			return nil
		case <-time.After(interval):
		}
	}
}

// discover starts a loop for every space not yet watched.
func (w *watcher) discover(ctx context.Context) error {
	spaces := w.fixed
	if spaces == nil {
		var bad []error
		var err error
		if spaces, bad, err = listSpaces(w.dataDir); err != nil {
			return err
		}
		for _, err := range bad {
			if !w.notSpace[err.Error()] {
				w.notSpace[err.Error()] = true
				w.a.log.Error("not watched", "err", err)
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
			if err := w.fsw.Add(filepath.Join(w.dataDir, "spaces", sp, "wal")); err != nil {
				w.a.log.Warn("no notifications for this space, polling it", "space", sp, "err", err)
			}
		}
		w.wg.Add(1)
		go w.loop(ctx, sp, trig)
	}
	return nil
}

// events turns filesystem notifications into triggers of the space whose
// wal/ directory changed.
func (w *watcher) events(ctx context.Context) {
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
			w.a.log.Warn("filesystem notifications", "err", err)
		}
	}
}

// loop archives one space whenever triggered or polled.
func (w *watcher) loop(ctx context.Context, space string, trig chan struct{}) {
	defer w.wg.Done()
	minGap := w.interval / 2
	var last time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-trig:
		case <-time.After(w.interval):
		}
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
		last = time.Now()
		res, err := w.ar.ArchiveSpace(ctx, w.dataDir, space)
		if ctx.Err() != nil {
			return
		}
		w.metrics.observe(space, res, err, time.Now())
		if err != nil {
			w.a.log.Error("archive run failed; retrying at the next change or poll", "space", space, "err", err)
			fmt.Fprintf(w.a.stderr, "memento: wal watch: %s\n", oneLine(err.Error()))
		}
		if res != nil && res.Segments > 0 {
			w.a.log.Debug("archived", "space", space, "segments", res.Segments, "new_bytes", res.NewBytes, "last_seq", res.LastSeq, "seconds", res.Seconds)
			w.logShip(res)
		}
	}
}

func (w *watcher) logShip(res *repo.WALArchiveResult) {
	if w.ship == nil {
		return
	}
	b, _ := json.Marshal(shipLine{Space: res.Space, LastSeq: res.LastSeq, LastTS: res.LastTS, ShippedNS: time.Now().UnixNano(),
		Bytes: res.NewBytes, Seconds: res.Seconds})
	w.shipMu.Lock()
	defer w.shipMu.Unlock()
	_, _ = w.ship.Write(append(b, '\n'))
}
