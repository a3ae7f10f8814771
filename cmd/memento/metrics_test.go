package main

import (
	"errors"
	"io"
	"log/slog"
	"math"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"memento/repo/agent"
	"memento/repo/walarchive"
)

func TestWatchMetricsExposition(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := agent.NewWALMetrics(reg)
	now := time.Unix(1795000000, 500000000)
	m.Observe("space-a", &walarchive.WALArchiveResult{Space: "space-a", NewBytes: 4096, StoredBytes: 1000, LastSeq: 42, LastTS: 1795000000250000000, Seconds: 0.02}, nil, now)
	m.Observe("space-a", nil, errors.New("gap"), now)
	var nilMetrics *agent.WALMetrics
	nilMetrics.Observe("space-a", nil, nil, now) // metrics off: no panic

	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, want := range []string{
		`memento_wal_archive_runs_total{result="ok",space="space-a"} 1`,
		`memento_wal_archive_runs_total{result="error",space="space-a"} 1`,
		`memento_wal_archived_bytes_total{space="space-a"} 4096`,
		`memento_wal_stored_bytes_total{space="space-a"} 1000`,
		`memento_wal_archived_sequence{space="space-a"} 42`,
		`memento_wal_archive_run_seconds_count{space="space-a"} 1`,
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	// Timestamps are floats: compare values, not their text.
	for series, want := range map[string]float64{
		`memento_wal_archived_entry_timestamp_seconds{space="space-a"}`: 1795000000.25,
		`memento_wal_last_success_timestamp_seconds{space="space-a"}`:   1795000000.5,
	} {
		got := math.NaN()
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, series+" "); ok {
				got, _ = strconv.ParseFloat(v, 64)
			}
		}
		if math.Abs(got-want) > 1e-6 {
			t.Errorf("%s = %.9f, want %.9f", series, got, want)
		}
	}
}

func TestServeMetricsBadAddress(t *testing.T) {
	err := serveMetrics(t.Context(), "127.0.0.1:notaport", prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	var ue *usageError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "--metrics-addr 127.0.0.1:notaport") {
		t.Fatalf("err = %v, want a usage error naming the address", err)
	}
}
