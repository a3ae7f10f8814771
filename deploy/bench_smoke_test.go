package deploy_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestBenchSmoke runs `make bench-smoke`: every data profile of
// scripts/bench.sh (default, wal-heavy, gosrc) at a few MiB, memento and
// restic, one round. It proves the benchmark still runs end to end and that
// every row it measures is correct (each restore is compared with its source
// by diff -r), so that `make bench` does not find out after an hour; the
// figures themselves mean nothing at this size.
func TestBenchSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping the benchmark smoke run in -short mode")
	}
	for _, tool := range []string{"make", "restic", "zstd", "/usr/bin/time", "fusermount3"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("the benchmark needs %s, required in CI: %v", tool, err)
			}
			t.Skipf("skipping: the benchmark needs %s: %v", tool, err)
		}
	}
	dir := t.TempDir()
	cmd := exec.Command("make", "-s", "bench-smoke", "BENCH_SMOKE_DIR="+dir)
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), "BENCH_KEEP=1")
	out, err := cmd.CombinedOutput()
	tail := string(out)
	if len(tail) > 4000 {
		tail = tail[len(tail)-4000:]
	}
	if err != nil {
		t.Fatalf("make bench-smoke: %v\n%s", err, tail)
	}
	report, err := os.ReadFile(filepath.Join(dir, "benchmarks.md"))
	if err != nil {
		t.Fatalf("make bench-smoke wrote no report: %v\n%s", err, tail)
	}
	rep := string(report)
	if strings.Contains(rep, "FAILED") {
		t.Fatalf("a benchmark row FAILED:\n%s", rep)
	}
	for _, profile := range []string{"default", "wal-heavy", "gosrc"} {
		if !strings.Contains(rep, "Profile "+profile) && !strings.Contains(rep, "Profile `"+profile+"`") {
			t.Errorf("the report has no table for profile %s", profile)
		}
	}
	// every restore row of memento and restic has a median time, and the
	// restores were checked against their source
	restore := regexp.MustCompile(`(?m)^\| full restore of the latest backup \| (memento|restic[^|]*) \| [0-9.]+ `)
	if n := len(restore.FindAllString(rep, -1)); n != 6 {
		t.Errorf("%d measured restore rows, want 6 (memento and restic on 3 profiles):\n%s", n, rep)
	}
}
