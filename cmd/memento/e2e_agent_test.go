package main

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The real binary with no config file (the safe defaults): `memento agent
// --data-dir DIR --listen ADDR` becomes ready (first archive runs done, a
// first backup of each space taken), serves the contract's metrics, refuses
// a second agent on the data dir (exit 6), and stops on SIGTERM with exit 0
// within 5 s.
func TestE2EAgent(t *testing.T) {
	e := newEnv(t)
	dd := filepath.Join(t.TempDir(), "data")
	e.sim("generate", "--dir", dd, "--size", "3MB", "--spaces", "2", "--segment-size", "64KiB", "--dim", "16", "--seed", "11")
	addr := freeAddr(t)

	// --check-config: the effective configuration, exit 0; a bad one, exit 2.
	out := e.mustRun("agent", "--data-dir", dd, "--listen", addr, "--check-config")
	for _, want := range []string{"data_dir: " + dd, "listen: " + addr, "daily: 7", "weekly: 4", "monthly: 12", "min: 2", "interval: 1s"} {
		if !strings.Contains(out, want) {
			t.Errorf("--check-config lacks %q:\n%s", want, out)
		}
	}
	bad := filepath.Join(t.TempDir(), "agent.yaml")
	if err := os.WriteFile(bad, []byte("data_dir: "+dd+"\nretention:\n  dialy: 7\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.wantFail(2, "dialy", "agent", "--config", bad, "--check-config")

	cmd := exec.Command(mementoBin, "agent", "--data-dir", dd, "--listen", addr)
	cmd.Env = e.environ()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
		}
	}()
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		code, body := get("/readyz")
		if code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz not ready after 60s: %d %s\nstderr:\n%s", code, body, stderr.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	if code, body := get("/healthz"); code != 200 {
		t.Errorf("/healthz: %d %s", code, body)
	}
	_, metrics := get("/metrics")
	for _, want := range []string{"memento_agent_up 1", `memento_wal_rpo_lag_seconds{space="space-a"}`,
		`memento_job_last_success_timestamp_seconds{space="space-b",task="backup"}`,
		`memento_job_last_success_timestamp_seconds{space="space-a",task="wal_archive"}`,
		`memento_job_interval_seconds{task="backup"} 86400`, // the default: nightly
		`memento_job_interval_seconds{task="verify"} 600`,
		`memento_repository_snapshots{space="space-a"} 1`, "memento_repository_size_bytes", "memento_wal_archive_runs_total"} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if code, page := get("/"); code != 200 || !strings.Contains(page, `data-space="space-a"`) || !strings.Contains(page, "<svg") {
		t.Errorf("status page: %d\n%s", code, page)
	}

	// One agent per data dir.
	r := e.run("agent", "--data-dir", dd, "--listen", freeAddr(t))
	if r.code != 6 || !strings.Contains(r.stderr, "another memento agent") {
		t.Errorf("a second agent: exit %d, want 6\n%s", r.code, r.stderr)
	}

	start := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("agent after SIGTERM: %v\nstderr:\n%s", err, stderr.String())
		}
		t.Logf("stopped %s after SIGTERM", time.Since(start).Round(time.Millisecond))
	case <-time.After(5 * time.Second):
		t.Fatalf("the agent did not exit within 5s of SIGTERM\nstderr:\n%s", stderr.String())
	}
	if !strings.Contains(stderr.String(), "agent stopped") {
		t.Errorf("no clean stop in the log:\n%s", stderr.String())
	}
}
