package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"memento/walreplay"
)

// chaosAgentSeed is the seed of agent kill trial 0; trial i has seed
// chaosAgentSeed+i.
const chaosAgentSeed = 20261205200

// TestChaosAgentKill: while engram-sim writes, `memento agent` and `memento
// wal watch` (alternating) are killed with SIGKILL at a random point (after
// a seeded number of file changes in the repository: a lock, a pack, an
// index file, a WAL run file), then started again. A restart must never be
// refused (the agent's lock file names a dead holder; repository locks of
// the archiver are shared): the restarted process must still be running
// when it is killed. After the last trial the writer stops, one `wal
// archive` catches up, and each space's archive is one gap-free range from
// the first backup to the last entry written; `check --read-data` is clean
// and a point-in-time restore of each space's last entry equals engram-sim's
// truth.
//
// make test runs 2 trials (one of each command); MEMENTO_CHAOS_AGENT_KILLS=N runs N (make
// chaos-agent), MEMENTO_CHAOS_AGENT_REPORT=FILE writes a markdown report.
func TestChaosAgentKill(t *testing.T) {
	trials := chaosTrials(t, "MEMENTO_CHAOS_AGENT_KILLS", 2)
	e := newEnv(t)
	dd := filepath.Join(t.TempDir(), "dd")
	e.sim("generate", "--dir", dd, "--size", "2MB", "--spaces", "2", "--segment-size", "64KiB", "--dim", "16", "--seed", "13")
	e.mustRun("backup", "--data-dir", dd, "--all")
	cfg := filepath.Join(t.TempDir(), "agent.yaml")
	if err := os.WriteFile(cfg, []byte(`wal:
  interval: 200ms
schedules:
  backup: "@every 4s"
  verify: "@every 1h"
  prune: "@every 1h"
  wal_compact: "@every 3s"
wal_compact_threshold: 2
`), 0o600); err != nil {
		t.Fatal(err)
	}
	sim := exec.Command(engramSimBin, "run", "--dir", dd, "--rate", "200", "--duration", "60m",
		"--segment-size", "32KiB", "--dim", "16", "--checkpoint-every", "500ms")
	var simErr strings.Builder
	sim.Stderr = &simErr
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	simDone := false
	stopSim := func() {
		if !simDone {
			simDone = true
			_ = sim.Process.Signal(syscall.SIGTERM)
			if err := sim.Wait(); err != nil {
				t.Errorf("engram-sim run: %v\n%s", err, simErr.String())
			}
		}
	}
	t.Cleanup(stopSim)

	var report strings.Builder
	report.WriteString("| trial | command | kill after steps | outcome |\n|---|---|---|---|\n")
	failures, kills := 0, map[string]int{}
	for i := 0; i < trials; i++ {
		rng := rand.New(rand.NewPCG(uint64(chaosAgentSeed+i), 3))
		name := "agent"
		args := []string{"agent", "--data-dir", dd, "--listen", freeAddr(t), "--config", cfg}
		if i%2 == 1 {
			name = "wal watch"
			args = []string{"wal", "watch", "--data-dir", dd, "--all", "--interval", "200ms"}
		}
		at := rng.IntN(40)
		killed, steps, r := runKilled(e, []string{e.repo}, at, args...)
		outcome := "killed"
		if !killed {
			failures++
			outcome = fmt.Sprintf("ended by itself: exit %d: %s", r.code, oneLine(r.stderr))
			t.Errorf("trial %d: memento %s (restart after a kill) %s", i, name, outcome)
		} else {
			kills[name]++
		}
		fmt.Fprintf(&report, "| %d | %s | %d (seen %d) | %s |\n", i, name, at, steps, outcome)
	}

	// The writer stops; the archive catches up and is whole.
	stopSim()
	e.mustRun("wal", "archive", "--data-dir", dd, "--all")
	e.mustRun("check", "--read-data")
	for _, sp := range []string{"space-a", "space-b"} {
		l, err := walreplay.OpenLog(filepath.Join(dd, "spaces", sp, "wal"))
		if err != nil {
			t.Fatal(err)
		}
		sum, err := l.Verify(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		rg := e.ranges(sp)
		if len(rg.Ranges) != 1 || rg.Ranges[0].ToSeq != sum.LastSeq || rg.ArchivedSeq != sum.LastSeq {
			failures++
			t.Errorf("space %s: recoverable ranges %+v (archived through %d), want one range through the last entry written, %d",
				sp, rg.Ranges, rg.ArchivedSeq, sum.LastSeq)
		}
		want := e.simTruth(dd, sp)
		e.pitr(sp, "--at", walreplay.FormatTime(want.TimestampNS), want)
	}
	t.Logf("%d agent kill trials (kills: %s), %d failures", trials, countsText(kills), failures)
	if p := os.Getenv("MEMENTO_CHAOS_AGENT_REPORT"); p != "" {
		head := fmt.Sprintf("## Chaos: SIGKILL of `memento agent` and `memento wal watch`\n\n"+
			"`make chaos-agent` (TestChaosAgentKill, seeds %d+i): %d trials (kills: %s) while engram-sim writes at "+
			"200 entries/s, **%d failures**. Each restart ran (never refused by a lock); at the end each space's "+
			"archive is one gap-free range through the last entry written, `check --read-data` is clean and a PITR "+
			"restore of each space's last entry equals engram-sim truth.\n\n", chaosAgentSeed, trials, countsText(kills), failures)
		if err := os.WriteFile(p, []byte(head+report.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
