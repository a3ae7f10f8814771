package agent

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"memento/repo"
	"memento/repo/maintenance"
	"memento/repo/repotest"
)

// The agent's prune is a job of its session: WAL archiving goes on during
// its phase 1 (held open by the test hook until both spaces' archiver has
// completed phase1Runs more runs, counted on the agent's metrics) and
// pauses only for its exclusive section, without a new session (the
// session's lock and archiver stay). The prune job succeeds, says how long
// it held the exclusive lock and paused archiving, and its audit record has
// exclusive_seconds; afterwards archiving goes on and the repository checks
// clean.
func TestAgentArchivesDuringPrune(t *testing.T) {
	const phase1Runs = 6
	spaces := []string{"space-a", "space-b"}
	tr := repotest.New(t, repo.InitOptions{})
	dd := testData(t)
	stopSim := liveSim(t, dd, 300)
	cfg := testConfig(dd, tr.Dir)
	cfg.Schedules.Verify, cfg.Schedules.WALCompact, cfg.Schedules.Prune = "", "", "@every 2s"
	var a atomic.Pointer[Agent]
	var during atomic.Int64
	var hooked atomic.Int32
	opts := Options{Config: cfg, Open: opener(tr), PruneBetweenPhases: func(ctx context.Context) error {
		if hooked.Add(1) > 1 {
			return nil
		}
		from := okArchiveRuns(a.Load(), spaces)
		for okArchiveRuns(a.Load(), spaces) < from+phase1Runs {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(20 * time.Millisecond): // polling the counter, not waiting for time to pass
			}
		}
		during.Store(int64(okArchiveRuns(a.Load(), spaces) - from))
		return nil
	}}
	rn := start(t, opts)
	a.Store(rn.a)
	rn.waitReady(t, true, 120*time.Second)
	deadline := time.Now().Add(3 * time.Minute)
	var detail string
	for {
		rn.a.mu.Lock()
		js := rn.a.jobs[jobKey{JobPrune, ""}]
		if js != nil && !js.lastSuccess.IsZero() {
			detail = js.detail
		}
		rn.a.mu.Unlock()
		if detail != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no prune succeeded within 3 minutes")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := during.Load(); n < phase1Runs {
		t.Fatalf("%d archive runs completed during prune's phase 1, want %d", n, phase1Runs)
	}
	if !strings.Contains(detail, "exclusive ") || !strings.Contains(detail, "WAL archiving paused ") {
		t.Fatalf("prune job detail %q does not say how long it held the exclusive lock and paused archiving", detail)
	}
	// Archiving goes on after the prune.
	after := okArchiveRuns(rn.a, spaces)
	for okArchiveRuns(rn.a, spaces) < after+2 {
		if time.Now().After(deadline) {
			t.Fatal("archiving did not resume after the prune")
		}
		time.Sleep(20 * time.Millisecond)
	}
	stopSim()
	rn.stop(t)
	r := tr.Reopen(t)
	recs, _, err := r.AuditLog(context.Background(), time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, rec := range recs {
		if rec.Command == "prune" && rec.Result == repo.AuditOK {
			if _, ok := rec.Figures["exclusive_seconds"]; ok {
				found = true
			}
		}
	}
	if !found {
		t.Fatalf("no successful prune audit record with exclusive_seconds among %d records", len(recs))
	}
	rep, err := maintenance.Check(context.Background(), r, maintenance.CheckOptions{ReadData: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range rep.Findings {
		if f.Severity == maintenance.SevError {
			t.Fatalf("check: %s: %s", f.What, f.Message)
		}
	}
}
