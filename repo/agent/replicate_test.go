package agent

import (
	"context"
	"math"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"memento/repo"
	"memento/repo/backend/s3"
	"memento/repo/backend/s3/miniotest"
	"memento/repo/repotest"
)

// Replication to a real MinIO on the agent's schedule: the first run copies
// the whole repository at the configured bandwidth limit (2 MiB/s here,
// within 10 %), the bucket then holds every file of the repository, and the
// replication lag of that remote is 0.
func TestAgentReplicatesToMinIO(t *testing.T) {
	srv := miniotest.Start(t)
	bucket := srv.MakeBucket(t)
	tr := repotest.New(t, repo.InitOptions{})
	dd := filepath.Join(t.TempDir(), "data")
	sim(t, "generate", "--dir", dd, "--size", "12MB", "--spaces", "2", "--segment-size", "256KiB", "--dim", "64", "--seed", "5")
	cfg := testConfig(dd, tr.Dir)
	cfg.Schedules.Prune, cfg.Schedules.WALCompact, cfg.Schedules.Verify, cfg.Schedules.Backup = "", "", "", "@every 1h"
	cfg.Schedules.Replicate = "@every 8s"
	url := srv.URL(bucket, "replica")
	cfg.Replicate.To = []string{url}
	cfg.Replicate.Limit = "2MiB"
	dest := func(ctx context.Context, to string) (repo.Backend, error) {
		c, err := s3.ParseURL(to)
		if err != nil {
			return nil, err
		}
		c.AccessKey, c.SecretKey, c.Region = miniotest.AccessKey, miniotest.SecretKey, "us-east-1"
		return s3.Open(ctx, c)
	}
	rn := start(t, Options{Config: cfg, Open: opener(tr), Destination: dest})
	rn.waitReady(t, true, 60*time.Second) // the first backups are taken
	waitFor(t, 90*time.Second, "a replication run succeeded", func() (bool, string) {
		_, body := rn.get(t, "/metrics")
		return metricValues(body, "memento_job_last_success_timestamp_seconds")[`{space="",task="replicate"}`] > 0, ""
	})
	_, body := rn.get(t, "/metrics")
	rn.stop(t)
	bytes := metricValues(body, "memento_job_bytes_read_total")[`{space="",task="replicate"}`]
	secs := metricValues(body, "memento_job_duration_seconds")[`{space="",task="replicate"}`]
	if bytes < 4<<20 {
		t.Fatalf("the first replication copied %.0f bytes; the test needs at least 4 MiB to measure the rate", bytes)
	}
	rate := bytes / secs
	t.Logf("replicated %.1f MiB in %.2fs: %.2f MiB/s (limit 2 MiB/s)", bytes/(1<<20), secs, rate/(1<<20))
	if math.Abs(rate-2<<20)/(2<<20) > 0.10 {
		t.Errorf("replication ran at %.2f MiB/s, want 2 MiB/s within 10 %%", rate/(1<<20))
	}
	if lag, ok := metricValues(body, "memento_replication_lag_seconds")[`{remote="`+url+`"}`]; !ok || lag != 0 {
		t.Errorf("replication lag of %s: %v (present %v), want 0", url, lag, ok)
	}
	// Every file of the source was in the bucket after that run (files
	// written since, e.g. WAL records, go with the next run).
	keys := srv.Keys(t, bucket, "replica/")
	for _, dir := range []string{"", repo.DirData, repo.DirIndex, repo.DirSnapshots, repo.DirKeys} {
		_ = tr.Backend.List(context.Background(), dir, func(name string, size int64) error {
			if strings.HasPrefix(name, repo.DirLocks+"/") || strings.HasPrefix(name, "wal/") || strings.HasPrefix(name, repo.DirLogs+"/") {
				return nil
			}
			if strings.HasPrefix(name, repo.DirSnapshots+"/") || strings.HasPrefix(name, repo.DirData+"/") || strings.HasPrefix(name, repo.DirKeys+"/") || name == repo.ConfigName {
				if got, ok := keys[name]; !ok || got != size {
					t.Errorf("%s (%d bytes) not replicated (bucket: %d, %v)", name, size, got, ok)
				}
			}
			return nil
		})
	}
}
