package agent

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
)

func textOf(t *testing.T, reg *prometheus.Registry) string {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	for _, f := range fams {
		if _, err := expfmt.MetricFamilyToText(&b, f); err != nil {
			t.Fatal(err)
		}
	}
	return b.String()
}

// A second run loaded from the first's output keeps the gauges it does not
// set, replaces those it does, and adds to the counters.
func TestJobMetricsLoadContinues(t *testing.T) {
	reg1 := prometheus.NewRegistry()
	m1 := NewJobMetrics(reg1)
	start := time.Unix(1_800_000_000, 500_000_000)
	m1.Observe(JobBackup, "a", start, 2*time.Second, 100, 40, nil)
	m1.Observe(JobBackup, "b", start, time.Second, 10, 4, nil)
	m1.SetInterval(JobBackup, 4*time.Hour)
	first := textOf(t, reg1)

	reg2 := prometheus.NewRegistry()
	m2 := NewJobMetrics(reg2)
	if err := m2.Load(strings.NewReader(first)); err != nil {
		t.Fatal(err)
	}
	m2.Observe(JobBackup, "a", start.Add(time.Hour), 3*time.Second, 0, 0, errors.New("disk on fire"))
	m2.Observe(JobBackup, "b", start.Add(time.Hour), time.Second, 10, 4, nil)
	got := textOf(t, reg2)
	for _, want := range []string{
		`memento_job_last_success_timestamp_seconds{space="a",task="backup"} 1.8000000025e+09`,
		`memento_job_last_failure_timestamp_seconds{space="a",task="backup"} 1.8000036035e+09`,
		`memento_job_last_success_timestamp_seconds{space="b",task="backup"} 1.8000036015e+09`,
		`memento_job_duration_seconds{space="a",task="backup"} 3`,
		`memento_job_bytes_read_total{space="a",task="backup"} 100`,
		`memento_job_bytes_read_total{space="b",task="backup"} 20`,
		`memento_job_bytes_added_total{space="b",task="backup"} 8`,
	} {
		if !strings.Contains(got, want+"\n") {
			t.Errorf("want %s in\n%s", want, got)
		}
	}
	// The interval is the run's own, not loaded.
	if strings.Contains(got, "memento_job_interval_seconds") {
		t.Errorf("interval loaded from the earlier run:\n%s", got)
	}
}

func TestJobMetricsLoadRejects(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"# TYPE memento_job_duration_seconds gauge\nmemento_job_duration_seconds{space=\"a\"} 1\n", "metric memento_job_duration_seconds: want exactly the labels space and task"},
		{"# TYPE memento_job_bytes_read_total gauge\nmemento_job_bytes_read_total{space=\"a\",task=\"backup\"} 1\n", "metric memento_job_bytes_read_total: type GAUGE"},
		{"# TYPE memento_job_duration_seconds gauge\nmemento_job_duration_seconds{space=\"a\",task=\"backup\",x=\"y\"} 1\n", "want exactly the labels space and task"},
		{"memento_job_duration_seconds{space=\"a\" 1\n", "text format parsing error"},
		{"memento_job_duration_seconds{space=\"a\",task=\"backup\"} 1\n", "metric memento_job_duration_seconds: type UNTYPED"},
	} {
		m := NewJobMetrics(prometheus.NewRegistry())
		if err := m.Load(strings.NewReader(c.in)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Load(%q): %v, want %q", c.in, err, c.want)
		}
	}
	// Other families (node_exporter's, an old file's) are ignored.
	m := NewJobMetrics(prometheus.NewRegistry())
	if err := m.Load(strings.NewReader("# TYPE other gauge\nother{x=\"1\"} 2\n")); err != nil {
		t.Error(err)
	}
}

// FuzzJobMetricsLoad: a textfile is read back on the next run; whatever it
// holds, Load returns an error or loads values that gather and re-load.
func FuzzJobMetricsLoad(f *testing.F) {
	f.Add("memento_job_last_success_timestamp_seconds{space=\"a\",task=\"backup\"} 1.8e+09\n")
	f.Add("# TYPE memento_job_bytes_read_total counter\nmemento_job_bytes_read_total{space=\"\",task=\"prune\"} 7\n")
	f.Add("memento_job_duration_seconds{space=\"a\"} NaN\n")
	f.Fuzz(func(t *testing.T, in string) {
		reg := prometheus.NewRegistry()
		m := NewJobMetrics(reg)
		if m.Load(strings.NewReader(in)) != nil {
			return
		}
		out := textOf(t, reg)
		if err := NewJobMetrics(prometheus.NewRegistry()).Load(strings.NewReader(out)); err != nil {
			t.Fatalf("re-loading the gathered output: %v\n%s", err, out)
		}
	})
}
