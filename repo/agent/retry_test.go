package agent

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"memento/repo"
)

// A failing job is retried with exponential backoff, bounded by RetryMax,
// reported in the metrics and on the status page, and reset by a success.
func TestJobRetryBackoff(t *testing.T) {
	cfg := Defaults()
	cfg.DataDir, cfg.Repository = t.TempDir(), "/nowhere"
	a, err := New(Options{Config: cfg, RetryMin: time.Second, RetryMax: 5 * time.Second,
		Open: func(context.Context) (*repo.Repository, error) { return nil, errors.New("unused") }})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	var gaps []time.Duration
	for range 5 {
		a.record(JobBackup, "sp", start, time.Second, jobResult{}, errors.New("disk on fire"))
		js := a.jobs[jobKey{JobBackup, "sp"}]
		gaps = append(gaps, js.retryAt.Sub(start.Add(time.Second)))
	}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 5 * time.Second, 5 * time.Second}
	for i := range want {
		if gaps[i] != want[i] {
			t.Fatalf("retry delays %v, want %v", gaps, want)
		}
	}
	if v := metricValues(serve(a, "/metrics"), "memento_job_last_failure_timestamp_seconds")[`{space="sp",task="backup"}`]; v < float64(start.Unix()) {
		t.Errorf("memento_job_last_failure_timestamp_seconds = %v", v)
	}
	rec := serve(a, "/")
	if !strings.Contains(rec, "disk on fire") || !strings.Contains(rec, ">5<") {
		t.Errorf("the status page does not show the failure and its count:\n%s", rec)
	}
	a.record(JobBackup, "sp", start, time.Second, jobResult{}, nil)
	js := a.jobs[jobKey{JobBackup, "sp"}]
	if js.failures != 0 || !js.retryAt.IsZero() || js.lastErr != "" {
		t.Errorf("after a success: %+v", js)
	}
}

// serve answers one GET of path.
func serve(a *Agent, path string) string {
	w := httptest.NewRecorder()
	a.Handler().ServeHTTP(w, httptest.NewRequest("GET", path, nil))
	return w.Body.String()
}
