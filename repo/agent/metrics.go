package agent

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"memento/repo/walarchive"
)

// metrics are the agent's Prometheus metrics, named as
// docs/operations/agent-contract.md lists them (deploy/ relies on the names;
// `go test ./deploy/` checks this file against the contract).
type metrics struct {
	// The per-task metrics, shared with one-shot commands.
	*JobMetrics
	verify    *prometheus.GaugeVec
	repoSize  prometheus.Gauge
	snapshots *prometheus.GaugeVec
	up        prometheus.Gauge

	// The metrics of `wal watch --metrics-addr`, same names and meaning.
	wal *WALMetrics

	// Computed when scraped (rpoCollector): memento_wal_rpo_lag_seconds and
	// memento_replication_lag_seconds.
	rpoDesc  *prometheus.Desc
	replDesc *prometheus.Desc
}

// JobMetrics are the per-task metrics of the contract (last success and
// failure, duration, bytes, nominal interval), labelled space and task.
// The agent exports them for its scheduled jobs, and one-shot commands
// (`memento backup --metrics-textfile/--metrics-push`, run by a timer or a
// CronJob) under the same names, so that the same alerts cover both.
type JobMetrics struct {
	lastSuccess *prometheus.GaugeVec
	lastFailure *prometheus.GaugeVec
	duration    *prometheus.GaugeVec
	bytesRead   *prometheus.CounterVec
	bytesAdded  *prometheus.CounterVec
	interval    *prometheus.GaugeVec
}

// NewJobMetrics creates the per-task metrics and registers them with reg.
func NewJobMetrics(reg prometheus.Registerer) *JobMetrics {
	// The label is `task`, not `job`: Prometheus sets `job` on every scraped
	// series (the scrape job), so a `job` label of the agent's own would be
	// renamed exported_job unless scraped with honor_labels.
	sj := []string{"space", "task"}
	m := &JobMetrics{
		lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "memento_job_last_success_timestamp_seconds",
			Help: "Unix time when the job last succeeded for the space (repository-wide jobs: space=\"\")."}, sj),
		lastFailure: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "memento_job_last_failure_timestamp_seconds",
			Help: "Unix time when the job last failed for the space."}, sj),
		duration: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "memento_job_duration_seconds",
			Help: "Duration of the job's last run."}, sj),
		bytesRead: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "memento_job_bytes_read_total",
			Help: "Bytes the job read (source files, WAL, packs)."}, sj),
		bytesAdded: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "memento_job_bytes_added_total",
			Help: "Bytes the job added to the repository (after dedup and compression)."}, sj),
		interval: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "memento_job_interval_seconds",
			Help: "Nominal time between two runs of the scheduled task (the longest gap between its runs in the coming week); absent when the task is off."}, []string{"task"}),
	}
	for _, c := range []prometheus.Collector{m.lastSuccess, m.lastFailure, m.duration, m.bytesRead, m.bytesAdded, m.interval} {
		reg.MustRegister(c)
	}
	return m
}

// SetInterval exports the task's nominal interval (d <= 0: none).
func (m *JobMetrics) SetInterval(task string, d time.Duration) {
	if d <= 0 {
		m.interval.DeleteLabelValues(task)
		return
	}
	m.interval.WithLabelValues(task).Set(d.Seconds())
}

// Observe records one run of task for space that started at start and
// took d, read and added bytes (0: not recorded), and failed with err.
func (m *JobMetrics) Observe(task, space string, start time.Time, d time.Duration, read, added int64, err error) {
	end := start.Add(d)
	m.duration.WithLabelValues(space, task).Set(d.Seconds())
	if err != nil {
		m.lastFailure.WithLabelValues(space, task).Set(unixSeconds(end))
	} else {
		m.lastSuccess.WithLabelValues(space, task).Set(unixSeconds(end))
	}
	if read > 0 {
		m.bytesRead.WithLabelValues(space, task).Add(float64(read))
	}
	if added > 0 {
		m.bytesAdded.WithLabelValues(space, task).Add(float64(added))
	}
}

func newMetrics(reg prometheus.Registerer, a *Agent) *metrics {
	m := &metrics{
		JobMetrics: NewJobMetrics(reg),
		verify: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "memento_verify_last_result",
			Help: "1 when the last verification at that level passed, 0 when it failed."}, []string{"space", "level"}),
		repoSize: prometheus.NewGauge(prometheus.GaugeOpts{Name: "memento_repository_size_bytes",
			Help: "Bytes stored in the repository (packs, indexes, snapshots, WAL records)."}),
		snapshots: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "memento_repository_snapshots",
			Help: "Snapshots of the space in the repository."}, []string{"space"}),
		up: prometheus.NewGauge(prometheus.GaugeOpts{Name: "memento_agent_up", Help: "1 while the agent runs."}),

		rpoDesc: prometheus.NewDesc("memento_wal_rpo_lag_seconds",
			"Upper bound of the age of the oldest WAL write not yet archived; 0 when everything written is archived.", []string{"space"}, nil),
		replDesc: prometheus.NewDesc("memento_replication_lag_seconds",
			"Time since the destination last held every repository file (0 after a complete run).", []string{"remote"}, nil),
	}
	for _, c := range []prometheus.Collector{m.verify, m.repoSize, m.snapshots, m.up, &lagCollector{m: m, a: a}} {
		reg.MustRegister(c)
	}
	m.wal = NewWALMetrics(reg)
	m.up.Set(1)
	for task, d := range a.intervals {
		m.SetInterval(task, d)
	}
	return m
}

// lagCollector computes the lag gauges at scrape time, from the agent's state
// and the WAL directories' modification times.
type lagCollector struct {
	m *metrics
	a *Agent
}

func (c *lagCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.m.rpoDesc; ch <- c.m.replDesc }

func (c *lagCollector) Collect(ch chan<- prometheus.Metric) {
	now := time.Now()
	for space, lag := range c.a.rpoLags(now) {
		ch <- prometheus.MustNewConstMetric(c.m.rpoDesc, prometheus.GaugeValue, lag.Seconds(), space)
	}
	for remote, lag := range c.a.replicationLags(now) {
		ch <- prometheus.MustNewConstMetric(c.m.replDesc, prometheus.GaugeValue, lag.Seconds(), remote)
	}
}

// observeArchive records one archive run (walarchive.WatchOptions.Observe).
func (m *metrics) observeArchive(space string, res *walarchive.WALArchiveResult, err error, now time.Time) {
	m.wal.Observe(space, res, err, now)
	if err != nil {
		m.lastFailure.WithLabelValues(space, JobWALArchive).Set(unixSeconds(now))
		return
	}
	m.lastSuccess.WithLabelValues(space, JobWALArchive).Set(unixSeconds(now))
	if res == nil {
		return
	}
	m.bytesRead.WithLabelValues(space, JobWALArchive).Add(float64(res.NewBytes))
	m.bytesAdded.WithLabelValues(space, JobWALArchive).Add(float64(res.StoredBytes))
	m.duration.WithLabelValues(space, JobWALArchive).Set(res.Seconds)
}

// observeJob records one run of a scheduled job.
func (m *metrics) observeJob(job, space string, start time.Time, d time.Duration, res jobResult, err error) {
	m.Observe(job, space, start, d, res.read, res.added, err)
}

// unixSeconds is t in Unix seconds with the nanoseconds as the fraction.
func unixSeconds(t time.Time) float64 { return unixNanoSeconds(t.UnixNano()) }

// unixNanoSeconds converts Unix nanoseconds without losing the fraction to
// float64's 53 bits, which a plain division would.
func unixNanoSeconds(ns int64) float64 { return float64(ns/1e9) + float64(ns%1e9)/1e9 }
