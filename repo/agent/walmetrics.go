package agent

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"memento/repo/walarchive"
)

// WALMetrics are the metrics of continuous WAL archiving, exported under the
// same names by `memento wal watch --metrics-addr` and by the agent. The
// alert operators want is on RPO: time() -
// memento_wal_last_success_timestamp_seconds growing past a few intervals
// means the archive has stopped keeping up.
type WALMetrics struct {
	runs        *prometheus.CounterVec
	newBytes    *prometheus.CounterVec
	storedBytes *prometheus.CounterVec
	lastSeq     *prometheus.GaugeVec
	lastEntryTS *prometheus.GaugeVec
	lastSuccess *prometheus.GaugeVec
	runSeconds  *prometheus.HistogramVec
}

// NewWALMetrics creates the WAL archiving metrics and registers them with reg.
func NewWALMetrics(reg prometheus.Registerer) *WALMetrics {
	m := &WALMetrics{
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "memento_wal_archive_runs_total",
			Help: "Archive runs by space and result (ok, error)."}, []string{"space", "result"}),
		newBytes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "memento_wal_archived_bytes_total",
			Help: "WAL bytes newly covered by the archive."}, []string{"space"}),
		storedBytes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "memento_wal_stored_bytes_total",
			Help: "Pack bytes written to the repository by archive runs."}, []string{"space"}),
		lastSeq: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "memento_wal_archived_sequence",
			Help: "Sequence number of the last archived WAL entry."}, []string{"space"}),
		lastEntryTS: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "memento_wal_archived_entry_timestamp_seconds",
			Help: "Timestamp of the last archived WAL entry (Unix seconds)."}, []string{"space"}),
		lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "memento_wal_last_success_timestamp_seconds",
			Help: "When the last archive run of the space succeeded (Unix seconds)."}, []string{"space"}),
		runSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "memento_wal_archive_run_seconds",
			Help: "Duration of archive runs.", Buckets: prometheus.ExponentialBuckets(0.005, 2, 14)}, []string{"space"}),
	}
	for _, c := range []prometheus.Collector{m.runs, m.newBytes, m.storedBytes, m.lastSeq, m.lastEntryTS, m.lastSuccess, m.runSeconds} {
		reg.MustRegister(c)
	}
	return m
}

// Observe records one archive run (walarchive.WatchOptions.Observe); m may
// be nil (metrics off).
func (m *WALMetrics) Observe(space string, res *walarchive.WALArchiveResult, err error, now time.Time) {
	if m == nil {
		return
	}
	if err != nil {
		m.runs.WithLabelValues(space, "error").Inc()
		return
	}
	// The run's figures first, the run count last: a scrape that counts
	// the run also sees what it archived.
	m.lastSuccess.WithLabelValues(space).Set(unixSeconds(now))
	if res != nil {
		m.newBytes.WithLabelValues(space).Add(float64(res.NewBytes))
		m.storedBytes.WithLabelValues(space).Add(float64(res.StoredBytes))
		m.runSeconds.WithLabelValues(space).Observe(res.Seconds)
		if res.LastSeq > 0 {
			m.lastSeq.WithLabelValues(space).Set(float64(res.LastSeq))
			m.lastEntryTS.WithLabelValues(space).Set(unixNanoSeconds(res.LastTS))
		}
	}
	m.runs.WithLabelValues(space, "ok").Inc()
}
