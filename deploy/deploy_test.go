package deploy_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// needTool returns the path of an external validator. A missing tool skips
// the test on a developer machine and fails it under CI=true, where .ci/run
// must have installed it.
func needTool(t *testing.T, name, debianPackage string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s not found (CI=true: install the Debian package %s; .ci/run does)", name, debianPackage)
	}
	t.Skipf("%s not found: apt-get install -y %s (under CI=true this test fails)", name, debianPackage)
	return ""
}

// run runs a command in dir and returns its combined output; a non-zero
// exit fails the test with the output.
func run(t *testing.T, dir string, env []string, name string, args ...string) string {
	t.Helper()
	out, err := runErr(dir, env, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}

func runErr(dir string, env []string, name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	if env != nil {
		cmd.Env = env
	}
	var b bytes.Buffer
	cmd.Stdout = &b
	cmd.Stderr = &b
	err := cmd.Run()
	return b.String(), err
}

// rootDir is the repository's root (go test runs in deploy/).
func rootDir(t *testing.T) string {
	t.Helper()
	d, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestPrometheusRules(t *testing.T) {
	promtool := needTool(t, "promtool", "prometheus")
	out := run(t, "prometheus", nil, promtool, "check", "rules", "memento-rules.yml")
	t.Logf("%s", out)
	out = run(t, "prometheus", nil, promtool, "test", "rules", "memento-rules.test.yml")
	t.Logf("%s", out)
	if !strings.Contains(out, "SUCCESS") {
		t.Fatalf("promtool test rules did not report SUCCESS:\n%s", out)
	}
	// Every alert the guide promises exists and has a unit test.
	rules := readFile(t, "prometheus/memento-rules.yml")
	tests := readFile(t, "prometheus/memento-rules.test.yml")
	for _, name := range alertNames {
		if !strings.Contains(rules, "alert: "+name+"\n") {
			t.Errorf("memento-rules.yml lacks the alert %s", name)
		}
		if !strings.Contains(tests, "alertname: "+name+"\n") {
			t.Errorf("memento-rules.test.yml does not test the alert %s", name)
		}
	}
	checkMetricNames(t, "memento-rules.yml", rules)
}

// alertNames are the alerts docs/operations/backup-restore.md lists.
var alertNames = []string{
	"MementoRPOAboveBudget", "MementoWALArchiveErrors", "MementoBackupMissing",
	"MementoJobFailing", "MementoVerificationFailed", "MementoReplicationLagging",
	"MementoRepositoryGrowth", "MementoAgentDown",
}

func readFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestOperationsGuide: the guide names every alert, script, setting, unit
// and manifest the deployment ships.
func TestOperationsGuide(t *testing.T) {
	guide := readFile(t, filepath.Join(rootDir(t), "docs", "operations", "backup-restore.md"))
	var want []string
	want = append(want, alertNames...)
	want = append(want, opsScripts...)
	want = append(want, "ENGRAM_DATA_DIR", "MEMENTO_REPOSITORY", "MEMENTO_PASSWORD_FILE", "MEMENTO_CACHE_DIR",
		"BACKUP_RETENTION_DAILY", "BACKUP_RETENTION_WEEKLY", "BACKUP_RETENTION_MONTHLY", "WAL_COMPACT_THRESHOLD",
		"MEMENTO_REPLICATE_LIMIT", "DRY_RUN", "memento_job_interval_seconds", "agent-contract.md", "memento-rules.yml", "memento.json")
	for _, glob := range []string{"systemd/memento-*", "kubernetes/*.yaml"} {
		files, err := filepath.Glob(glob)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			if !strings.HasSuffix(f, ".env") {
				want = append(want, filepath.Base(f))
			}
		}
	}
	for _, w := range want {
		if !strings.Contains(guide, w) {
			t.Errorf("docs/operations/backup-restore.md does not mention %s", w)
		}
	}
}
