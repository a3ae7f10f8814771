package main

import (
	"context"
	"encoding/json"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"memento/repo/agent"
	"memento/repo/walarchive"
)

func newWALWatchCommand(a *app) *cobra.Command {
	var (
		sel      spaceSel
		interval time.Duration
		minGap   time.Duration
		shipLog  string
		metrics  string
		every    time.Duration
	)
	c := &cobra.Command{
		Use:   "watch --data-dir DIR (--space ID | --all) [--interval 1s]",
		Short: "Archive the WAL continuously (filesystem notifications plus a poll fallback)",
		Long: `watch does what 'wal archive' does, continuously: a write to a space's WAL
directory triggers an archive run of that space, runs of one space start at
least --min-gap apart (default 250ms, at most --interval/2; a run that takes
longer delays the next), and every space is polled every --interval in case
notifications are lost (network filesystems, overflow). A run stores only the
bytes appended since the previous one, so the gap bounds the files written
to the repository (about three per run: a pack, an index file, a wal/ file;
requests an S3 bucket bills), not the bytes. An entry is therefore in the
repository about --min-gap plus one run after it was written, and at most
about --interval after it when notifications are lost. The archive position is read from the repository at start, so a
restarted watch continues where the last one stopped without re-shipping.
SIGINT/SIGTERM stop it cleanly (exit 0), during start-up too.

Each run that archived something is logged on stderr at info level (one
"memento: info: archived space=... segments=... bytes=... last_seq=..." line; -q drops
them). The audit trail gets one "archive" record per space that sums the
runs since the previous one: after the first run that archives something,
then at most every --audit-every while runs succeed, at once when a run
fails after succeeding, and when the watch stops.`,
		Example: `  memento wal watch --data-dir /var/lib/engram --all --interval 1s`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if interval <= 0 {
				return usagef("--interval must be positive")
			}
			if _, _, err := sel.resolve(false); err != nil {
				return err
			}
			if minGap < 0 {
				return usagef("--min-gap must not be negative")
			}
			if every < 0 {
				return usagef("--audit-every must not be negative")
			}
			a.logInfo()
			err := a.walWatch(cmd.Context(), sel, interval, minGap, shipLog, metrics, every)
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
	c.Flags().DurationVar(&minGap, "min-gap", 0, "least time between the starts of two archive runs of a space (0: 250ms, at most --interval/2); more means fewer repository requests, a larger RPO")
	c.Flags().StringVar(&metrics, "metrics-addr", "", "serve Prometheus metrics at http://ADDR/metrics, e.g. 127.0.0.1:9464 (off by default)")
	c.Flags().DurationVar(&every, "audit-every", defaultWatchAuditEvery, "while archive runs succeed, record them in the audit trail at most this often per space (0: every run that archived something)")
	c.Flags().StringVar(&shipLog, "ship-log", "", "append one JSON line per archive run that shipped entries: {space,timeline,last_seq,last_ts,shipped_ns} (RPO measurement)")
	return c
}

// shipLine is one line of --ship-log: the archive holds space's entries
// through LastSeq since ShippedNS (wall clock, after the wal/ file was written).
type shipLine struct {
	Space     string  `json:"space"`
	Timeline  uint32  `json:"timeline"`
	LastSeq   uint64  `json:"last_seq"`
	LastTS    int64   `json:"last_ts"`
	ShippedNS int64   `json:"shipped_ns"`
	Bytes     int64   `json:"bytes"`
	Seconds   float64 `json:"seconds"`
}

// walWatch wires a walarchive.Watcher to the command's repository, lock,
// metrics, ship log and output.
func (a *app) walWatch(ctx context.Context, sel spaceSel, interval, minGap time.Duration, shipLog, metricsAddr string, auditEvery time.Duration) error {
	w, err := a.openWAL(ctx, sel.dataDir, "wal watch")
	if err != nil {
		return err
	}
	defer w.close()
	ctx = w.ctx // cancelled if the lock is lost
	ar, closeAr := w.archiver()
	defer closeAr()
	// A failed run is logged by the watcher (error level): that is the
	// line an operator sees, in the --log-format format.
	warned := map[string]bool{} // the watch lists the spaces every interval: warn once per skipped entry
	watchSpaces := func(dataDir string) ([]string, []error, error) { return listSpacesWarned(dataDir, warned) }
	opts := walarchive.WatchOptions{DataDir: sel.dataDir, Interval: interval, MinGap: minGap, ListSpaces: watchSpaces, Logger: a.log}
	if !sel.all {
		opts.Spaces = sel.spaces
	}
	aud := newWatchAudit(a, w.r, auditEvery)
	observers := []func(string, *walarchive.WALArchiveResult, error, time.Time){
		func(space string, res *walarchive.WALArchiveResult, err error, now time.Time) {
			aud.observe(ctx, space, res, err, now)
		},
	}
	if metricsAddr != "" {
		reg := prometheus.NewRegistry()
		m := agent.NewWALMetrics(reg)
		observers = append(observers, m.Observe)
		if err := serveMetrics(ctx, metricsAddr, reg, a.log); err != nil {
			return err
		}
	}
	if shipLog != "" {
		ship, err := os.OpenFile(shipLog, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			return err
		}
		defer ship.Close()
		var mu sync.Mutex
		opts.OnShipped = func(res *walarchive.WALArchiveResult) { logShip(ship, &mu, res) }
	}
	opts.Observe = func(space string, res *walarchive.WALArchiveResult, err error, now time.Time) {
		for _, o := range observers {
			o(space, res, err, now)
		}
	}
	err = walarchive.NewWatcher(ar, opts).Run(ctx)
	aud.flush(ctx)
	return err
}

// logShip appends res's line to the --ship-log file.
func logShip(ship *os.File, mu *sync.Mutex, res *walarchive.WALArchiveResult) {
	b, _ := json.Marshal(shipLine{Space: res.Space, Timeline: res.Timeline, LastSeq: res.LastSeq, LastTS: res.LastTS, ShippedNS: time.Now().UnixNano(),
		Bytes: res.NewBytes, Seconds: res.Seconds})
	mu.Lock()
	defer mu.Unlock()
	_, _ = ship.Write(append(b, '\n'))
}
