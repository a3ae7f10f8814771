package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"memento/repo/walarchive"
)

// watchMetrics is what `wal watch --metrics-addr` exports to Prometheus. The
// alert operators want is on RPO: time() - memento_wal_last_success_timestamp_seconds
// growing past a few intervals means the archive has stopped keeping up.
type watchMetrics struct {
	runs        *prometheus.CounterVec
	newBytes    *prometheus.CounterVec
	storedBytes *prometheus.CounterVec
	lastSeq     *prometheus.GaugeVec
	lastEntryTS *prometheus.GaugeVec
	lastSuccess *prometheus.GaugeVec
	runSeconds  *prometheus.HistogramVec
}

func newWatchMetrics(reg prometheus.Registerer) *watchMetrics {
	f := func(c prometheus.Collector) { reg.MustRegister(c) }
	m := &watchMetrics{
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
	f(m.runs)
	f(m.newBytes)
	f(m.storedBytes)
	f(m.lastSeq)
	f(m.lastEntryTS)
	f(m.lastSuccess)
	f(m.runSeconds)
	return m
}

// observe records one archive run; m may be nil (metrics off).
func (m *watchMetrics) observe(space string, res *walarchive.WALArchiveResult, err error, now time.Time) {
	if m == nil {
		return
	}
	if err != nil {
		m.runs.WithLabelValues(space, "error").Inc()
		return
	}
	m.runs.WithLabelValues(space, "ok").Inc()
	m.lastSuccess.WithLabelValues(space).Set(unixSeconds(now.UnixNano()))
	if res == nil {
		return
	}
	m.newBytes.WithLabelValues(space).Add(float64(res.NewBytes))
	m.storedBytes.WithLabelValues(space).Add(float64(res.StoredBytes))
	m.runSeconds.WithLabelValues(space).Observe(res.Seconds)
	if res.LastSeq > 0 {
		m.lastSeq.WithLabelValues(space).Set(float64(res.LastSeq))
		m.lastEntryTS.WithLabelValues(space).Set(unixSeconds(res.LastTS))
	}
}

// unixSeconds converts Unix nanoseconds to seconds without losing the
// fraction to float64's 53 bits, which a plain division of ns would.
func unixSeconds(ns int64) float64 {
	return float64(ns/1e9) + float64(ns%1e9)/1e9
}

// serveMetrics serves reg on addr at /metrics until ctx ends. It returns once
// the listener is up, so a bad address fails the command at start.
func serveMetrics(ctx context.Context, addr string, reg *prometheus.Registry, log *slog.Logger) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return usagef("--metrics-addr %s: %v", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server stopped", "err", err)
		}
	}()
	log.Info("serving Prometheus metrics", "url", "http://"+ln.Addr().String()+"/metrics")
	return nil
}
