package restore

import (
	"bytes"
	"context"
	"log/slog"
	"memento/repo"
	"memento/repo/backup"
	"memento/repo/backup/backuptest"
	"memento/repo/repotest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestRestoreRemovesStaleStaging: a restore killed before its swap leaves its
// staging directory and owner file behind. The next restore into the same
// parent removes them, since no process holds the owner file's lock, and
// says so in one line per directory; a staging directory whose restore is
// still running, one without an owner file and a safety copy are kept.
func TestRestoreRemovesStaleStaging(t *testing.T) {
	tr := repotest.New(t, repo.InitOptions{})
	var logs bytes.Buffer
	tr.Repository = tr.ReopenWith(t, repo.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	src := filepath.Join(t.TempDir(), "src")
	repotest.WriteFile(t, filepath.Join(src, "f"), []byte("restored"), 0o644)
	sn := backuptest.Backup(t, tr.Repository, backup.BackupOptions{Paths: []string{src}})

	parent := t.TempDir()
	target := filepath.Join(parent, "target")
	leave := func(name string, owner bool) string {
		p := filepath.Join(parent, name)
		repotest.WriteFile(t, filepath.Join(p, "sub", "data"), repotest.RandomBytes(1, 1<<20), 0o644)
		if err := os.Chmod(filepath.Join(p, "sub"), 0o500); err != nil { // its mode already set
			t.Fatal(err)
		}
		if owner {
			repotest.WriteFile(t, p+stagingOwnerSuffix, []byte("pid 4194303\nhost elsewhere\n"), 0o600)
		}
		return p
	}
	stale := leave(".target.restore-111", true)
	stalePITR := leave(".space-a.pitr-222", true)
	orphan := filepath.Join(parent, ".other.restore-333"+stagingOwnerSuffix)
	repotest.WriteFile(t, orphan, []byte("pid 4194303\n"), 0o600)
	live := leave(".target.restore-444", true)
	lf, err := os.OpenFile(live+stagingOwnerSuffix, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	if err := unix.Flock(int(lf.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	old := leave(".target.restore-555", false)
	safety := leave("target.pre-restore-20260101T000000.000000000Z", false)

	if _, err := Restore(context.Background(), tr.Repository, sn, target, RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{stale, stale + stagingOwnerSuffix, stalePITR, stalePITR + stagingOwnerSuffix, orphan} {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("%s is still there", p)
		}
	}
	for _, p := range []string{live, live + stagingOwnerSuffix, old, safety} {
		if _, err := os.Lstat(filepath.Join(p, "sub", "data")); err != nil && !strings.HasSuffix(p, stagingOwnerSuffix) {
			t.Errorf("%s was removed: %v", p, err)
		} else if _, err := os.Lstat(p); err != nil {
			t.Errorf("%s was removed: %v", p, err)
		}
	}
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0]+lines[1], `"removed the staging directory of a restore that did not finish" dir=`+stale) ||
		!strings.Contains(logs.String(), "dir="+stalePITR+"\n") {
		t.Errorf("log:\n%s", logs.String())
	}
	if b, err := os.ReadFile(filepath.Join(target, "src", "f")); err != nil || string(b) != "restored" {
		t.Errorf("restored %q, %v", b, err)
	}
}
