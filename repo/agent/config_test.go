package agent

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"memento/repo"
)

// One precedence: flags (set by cmd/memento after the rest) over the
// environment over the file over the defaults; unknown keys fail.
func TestConfigPrecedence(t *testing.T) {
	c := Defaults()
	if c.Retention.Daily != 7 || c.Retention.Weekly != 4 || c.Retention.Monthly != 12 || c.Retention.Min != 2 ||
		c.WALCompactThreshold != 100 || c.Replicate.Limit != "10MiB" || time.Duration(c.WAL.Interval) != time.Second {
		t.Fatalf("defaults: %+v", c)
	}
	file := `
data_dir: /from/file
wal:
  interval: 2s
  min_gap: 400ms
schedules:
  backup: ""
retention:
  daily: 3
wal_compact_threshold: 50
`
	if err := c.ParseConfig([]byte(file)); err != nil {
		t.Fatal(err)
	}
	if c.DataDir != "/from/file" || time.Duration(c.WAL.Interval) != 2*time.Second || time.Duration(c.WAL.MinGap) != 400*time.Millisecond || c.Schedules.Backup != "" ||
		c.Retention.Daily != 3 || c.Retention.Weekly != 4 || c.Schedules.Verify != DefaultVerifyCron {
		t.Fatalf("after the file: %+v", c)
	}
	env := map[string]string{"ENGRAM_DATA_DIR": "/from/env", "BACKUP_RETENTION_DAILY": "9", "MEMENTO_REPOSITORY": "/repo"}
	if err := c.ApplyEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok }); err != nil {
		t.Fatal(err)
	}
	if c.DataDir != "/from/env" || c.Retention.Daily != 9 || c.WALCompactThreshold != 50 {
		t.Fatalf("after the environment: %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if y := c.YAML(); !strings.Contains(y, "data_dir: /from/env") || !strings.Contains(y, "interval: 2s") {
		t.Fatalf("YAML:\n%s", y)
	}
	// The printed configuration reads back to the same.
	d := Defaults()
	if err := d.ParseConfig([]byte(c.YAML())); err != nil || d.YAML() != c.YAML() {
		t.Fatalf("round trip: %v\n%s\n%s", err, d.YAML(), c.YAML())
	}
}

func TestConfigRejects(t *testing.T) {
	for _, bad := range []string{
		"wal:\n  rpo_budgte: 30s\n",
		"retention:\n  daily: x\n",
		"wal:\n  interval: soon\n",
		"nonsense: 1\n",
	} {
		c := Defaults()
		if err := c.ParseConfig([]byte(bad)); !errors.Is(err, ErrConfig) {
			t.Errorf("%q: %v, want ErrConfig", bad, err)
		}
	}
	for name, mut := range map[string]func(*Config){
		"no data dir":   func(c *Config) { c.DataDir = "" },
		"bad cron":      func(c *Config) { c.Schedules.Backup = "every day" },
		"min 0":         func(c *Config) { c.Retention.Min = 0 },
		"bad limit":     func(c *Config) { c.Replicate.Limit = "fast" },
		"zero interval": func(c *Config) { c.WAL.Interval = 0 },
		"threshold < 0": func(c *Config) { c.WALCompactThreshold = -1 },
		"min_gap < 0":   func(c *Config) { c.WAL.MinGap = Duration(-time.Second) },
	} {
		c := Defaults()
		c.DataDir, c.Repository = "/d", "/r"
		mut(&c)
		if err := c.Validate(); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: %v, want ErrConfig", name, err)
		}
	}
	c := Defaults()
	if err := c.ApplyEnv(func(k string) (string, bool) { return "many", k == "WAL_COMPACT_THRESHOLD" }); !errors.Is(err, ErrConfig) {
		t.Errorf("WAL_COMPACT_THRESHOLD=many: %v", err)
	}
}

// The defaults back up nightly; each schedule's nominal interval (the metric
// memento_job_interval_seconds the alert MementoBackupMissing scales by) is
// its longest gap over the coming week.
func TestScheduleInterval(t *testing.T) {
	if Defaults().Schedules.Backup != "0 2 * * *" {
		t.Errorf("default backup schedule %q, want nightly 0 2 * * *", Defaults().Schedules.Backup)
	}
	now := time.Date(2026, 12, 4, 23, 17, 0, 0, time.UTC) // a Friday
	for expr, want := range map[string]time.Duration{
		DefaultBackupCron: 24 * time.Hour,
		"0 */4 * * *":     4 * time.Hour,
		DefaultVerifyCron: 10 * time.Minute,
		"@every 30s":      30 * time.Second,
		"0 2,3 * * *":     23 * time.Hour, // not the 1 h between 02:00 and 03:00
		"0 2 * * 1-5":     72 * time.Hour, // the weekend
	} {
		s, err := parseSchedule("backup", expr)
		if err != nil {
			t.Fatal(err)
		}
		if got := scheduleInterval(s, now); got != want {
			t.Errorf("%q: interval %s, want %s", expr, got, want)
		}
	}
}

// memento_job_interval_seconds is exported per scheduled task, absent when
// the task is off.
func TestIntervalMetric(t *testing.T) {
	cfg := Defaults()
	cfg.DataDir, cfg.Repository = t.TempDir(), t.TempDir()
	cfg.Schedules.Verify = ""
	a, err := New(Options{Config: cfg, Open: func(context.Context) (*repo.Repository, error) { return nil, errors.New("unused") }})
	if err != nil {
		t.Fatal(err)
	}
	got := metricValues(serve(a, "/metrics"), "memento_job_interval_seconds")
	want := map[string]float64{`{task="backup"}`: 86400, `{task="prune"}`: 86400, `{task="wal_compact"}`: 3600}
	if len(got) != len(want) {
		t.Errorf("memento_job_interval_seconds: %v, want %v (verify off, replicate without destinations)", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("memento_job_interval_seconds%s = %v, want %v", k, got[k], v)
		}
	}
}
