package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/push"
	"github.com/spf13/pflag"

	"memento/repo"
	"memento/repo/agent"
	"memento/repo/backup"
)

// oneShotMetrics are the flags with which a one-shot command (run by a
// systemd timer or a Kubernetes CronJob) exports the agent's job metrics
// (docs/operations/agent-contract.md) for its own run: as a node_exporter
// textfile, to a Pushgateway, or both.
type oneShotMetrics struct {
	textfile string
	pushURL  string
	instance string
	interval time.Duration
}

func (o *oneShotMetrics) register(fl *pflag.FlagSet, task string) {
	fl.StringVar(&o.textfile, "metrics-textfile", "", "write the run's job metrics (task=\""+task+"\") to this node_exporter textfile (*.prom, replaced atomically; earlier runs' values are kept)")
	fl.StringVar(&o.pushURL, "metrics-push", "", "push the run's job metrics to this Pushgateway URL (grouping: job \"memento\" and --metrics-instance)")
	fl.StringVar(&o.instance, "metrics-instance", "", "the Pushgateway group's instance label: stable across runs (a CronJob's pod name is not) (default: this host's name)")
	fl.DurationVar(&o.interval, "metrics-interval", 0, "the schedule's interval, exported as memento_job_interval_seconds{task=\""+task+"\"} so that MementoBackupMissing follows it (e.g. 4h)")
}

// pushTimeout bounds a push to the Pushgateway.
const pushTimeout = 30 * time.Second

// begin checks the flags and returns the run's metrics (nil: off).
func (o *oneShotMetrics) begin(task string) (*oneShotRun, error) {
	if o.interval < 0 {
		return nil, usagef("--metrics-interval %s: must not be negative", o.interval)
	}
	if o.textfile == "" && o.pushURL == "" {
		return nil, nil // --metrics-interval alone: a unit whose textfile setting is empty
	}
	if o.textfile != "" && !strings.HasSuffix(o.textfile, ".prom") {
		return nil, usagef("--metrics-textfile %s: the name must end in .prom (node_exporter reads only those)", o.textfile)
	}
	if o.pushURL != "" {
		u, err := url.Parse(o.pushURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, usagef("--metrics-push %s: not an http(s) URL", o.pushURL)
		}
	}
	reg := prometheus.NewRegistry()
	r := &oneShotRun{o: o, task: task, reg: reg, m: agent.NewJobMetrics(reg), seen: map[string]bool{}}
	if o.textfile != "" {
		f, err := os.Open(o.textfile)
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			return nil, fmt.Errorf("--metrics-textfile: %w", err)
		default:
			err = r.m.Load(f)
			f.Close()
			if err != nil {
				return nil, fmt.Errorf("--metrics-textfile %s: %w", o.textfile, err)
			}
		}
	}
	r.m.SetInterval(task, o.interval)
	return r, nil
}

// oneShotRun collects one run's metrics; its methods are safe for
// concurrent use and do nothing on a nil run.
type oneShotRun struct {
	o    *oneShotMetrics
	task string
	reg  *prometheus.Registry
	m    *agent.JobMetrics
	mu   sync.Mutex
	seen map[string]bool
}

// observe records the run of one space (or "" for paths).
func (r *oneShotRun) observe(space string, start time.Time, read, added int64, err error) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seen[space] = true
	r.m.Observe(r.task, space, start, time.Since(start), read, added, err)
}

// finish records runErr as the failure of every space not observed (the run
// failed before it got to them), writes the metrics, and returns runErr, or
// the error of writing them when the run succeeded.
func (r *oneShotRun) finish(ctx context.Context, a *app, spaces []string, start time.Time, runErr error) error {
	if r == nil {
		return runErr
	}
	if runErr != nil {
		for _, s := range spaces {
			if !r.seen[s] {
				r.observe(s, start, 0, 0, runErr)
			}
		}
	}
	var errs []error
	if r.o.textfile != "" {
		if err := prometheus.WriteToTextfile(r.o.textfile, r.reg); err != nil {
			errs = append(errs, fmt.Errorf("--metrics-textfile: %w", err))
		}
	}
	if r.o.pushURL != "" {
		host := r.o.instance
		if host == "" {
			host, _ = os.Hostname()
		}
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), pushTimeout)
		// Add (POST) replaces only the families pushed: a failed run
		// keeps the last success pushed before it.
		err := push.New(r.o.pushURL, "memento").Grouping("instance", host).Gatherer(r.reg).
			Client(&http.Client{}).AddContext(pctx)
		cancel()
		if err != nil {
			errs = append(errs, fmt.Errorf("--metrics-push %s: %w", r.o.pushURL, err))
		}
	}
	err := errors.Join(errs...)
	switch {
	case err == nil:
		return runErr
	case runErr == nil:
		return err
	default:
		a.log.Error("could not export the run's metrics", "err", err)
		return runErr
	}
}

// observeSnapshot records a backup of space: bytes read and stored as the
// agent counts them.
func (r *oneShotRun) observeSnapshot(space string, start time.Time, sn *repo.Snapshot, err error) {
	var read, added int64
	if sn != nil {
		read, added = int64(sn.Summary.Bytes), int64(sn.Summary.StoredBytes)
	}
	r.observe(space, start, read, added, err)
}

// backupSpaces are the spaces of a backup's jobs ("" for paths).
func backupSpaces(jobs []backup.BackupOptions) []string {
	var s []string
	for _, j := range jobs {
		s = append(s, j.Space)
	}
	return s
}
