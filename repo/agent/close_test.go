package agent

import (
	"context"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"memento/repo"
	"memento/repo/backend/local"
	"memento/repo/repotest"
)

// closeCount is a local backend that counts its Closes.
type closeCount struct {
	*local.Backend
	closes atomic.Int32
}

func (c *closeCount) Close() error {
	c.closes.Add(1)
	return c.Backend.Close()
}

// The agent closes what it opened once done with it: a replication run's
// destinations when the run ends, a session's repository backend when the
// session ends. A local backend holds descriptors until closed (its fsyncs'
// io_uring and eventfd, its open packs), and a long-lived agent opens one
// per replication run and per session.
func TestAgentClosesWhatItOpens(t *testing.T) {
	tr := repotest.New(t, repo.InitOptions{})
	cfg := testConfig(testData(t), tr.Dir)
	cfg.Schedules.Prune, cfg.Schedules.WALCompact, cfg.Schedules.Verify, cfg.Schedules.Backup = "", "", "", "@every 1h"
	cfg.Replicate.To = []string{filepath.Join(t.TempDir(), "replica")}
	var dsts []*closeCount
	dest := func(ctx context.Context, to string) (repo.Backend, error) {
		be, err := local.Open(to)
		if err != nil {
			be, err = local.Create(to)
		}
		if err != nil {
			return nil, err
		}
		d := &closeCount{Backend: be}
		dsts = append(dsts, d)
		return d, nil
	}
	var sessions atomic.Pointer[closeCount]
	open := func(ctx context.Context) (*repo.Repository, error) {
		be, err := local.Open(tr.Dir)
		if err != nil {
			return nil, err
		}
		c := &closeCount{Backend: be}
		sessions.Store(c)
		return repo.Open(ctx, c, repo.Options{Password: repotest.Password, CacheDir: tr.Cache})
	}
	ag, err := New(Options{Config: cfg, Open: open, Destination: dest})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	r, err := open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for run := range 2 {
		if _, err := ag.replicateAll(ctx, r); err != nil {
			t.Fatal(err)
		}
		if len(dsts) != run+1 || dsts[run].closes.Load() != 1 {
			t.Fatalf("replication run %d: destination closed %d times, want once", run, dsts[run].closes.Load())
		}
	}
	first := sessions.Load()
	rn := start(t, Options{Config: cfg, Open: open, Destination: dest})
	waitFor(t, 30*time.Second, "a session opened", func() (bool, string) { return sessions.Load() != first, "" })
	rn.stop(t)
	if n := sessions.Load().closes.Load(); n != 1 {
		t.Fatalf("the session's backend closed %d times when its session ended, want once", n)
	}
}
