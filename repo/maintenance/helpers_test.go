package maintenance

// Test helpers of the maintenance package's own tests; the shared ones
// (test repository, tree digests, backup and restore steps) are repotest,
// backuptest and restoretest.

import (
	"context"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"memento/chunk"
	"memento/repo"
	"memento/repo/backup"
	"memento/repo/backup/backuptest"
	"memento/repo/repotest"
	"memento/repo/verify"
)

// verifyIDs verifies snapshots and fails the test if verification itself fails.
func verifyIDs(t testing.TB, r *repo.Repository, level verify.Level, ids ...chunk.ID) []*verify.Verdict {
	t.Helper()
	vds, err := verify.VerifySnapshots(context.Background(), r, ids, verify.VerifyOptions{Level: level, TempDir: t.TempDir()})
	if err != nil {
		t.Fatalf("verify %s: %v", level, err)
	}
	return vds
}

// wantPass requires every verdict to have passed.
func wantPass(t testing.TB, vds ...*verify.Verdict) {
	t.Helper()
	for _, vd := range vds {
		if !vd.Passed {
			t.Fatalf("snapshot %s %s: want pass, got findings:\n%s", vd.Short(), vd.Level, findingsText(vd))
		}
	}
}

// wantFinding requires a failed verdict with a finding at level whose text
// contains every one of want.
func wantFinding(t testing.TB, vd *verify.Verdict, level verify.Level, want ...string) {
	t.Helper()
	if vd.Passed {
		t.Fatalf("snapshot %s %s passed, want a finding at %s containing %q", vd.Short(), vd.Level, level, want)
	}
	for _, f := range vd.Findings {
		if f.Level != level {
			continue
		}
		ok := true
		for _, w := range want {
			ok = ok && strings.Contains(f.String(), w)
		}
		if ok {
			return
		}
	}
	t.Fatalf("snapshot %s: no %s finding containing %q in:\n%s", vd.Short(), level, want, findingsText(vd))
}

func findingsText(vd *verify.Verdict) string {
	var b strings.Builder
	for _, f := range vd.Findings {
		b.WriteString("\t" + f.String() + "\n")
	}
	return b.String()
}

// spaceFixture is a repository with one Engram space snapshot and one
// snapshot of plain paths.
type spaceFixture struct {
	tr      *repotest.Repo
	dataDir string
	space   *repo.Snapshot
	paths   *repo.Snapshot
}

func newSpaceFixture(t *testing.T, packSize int64) *spaceFixture {
	t.Helper()
	tr := repotest.New(t, repo.InitOptions{PackSize: packSize})
	dd := filepath.Join(t.TempDir(), "engram")
	repotest.WriteEngramSpace(t, dd, "tenant_01", 600, 16<<10, 450)
	src := filepath.Join(t.TempDir(), "src")
	repotest.WriteFile(t, filepath.Join(src, "big"), repotest.RandomBytes(3, 3<<20), 0o644)
	repotest.WriteFile(t, filepath.Join(src, "dir", "small"), []byte("small file"), 0o600)
	repotest.WriteFile(t, filepath.Join(src, "empty"), nil, 0o644)
	if err := os.Symlink("big", filepath.Join(src, "link")); err != nil {
		t.Fatal(err)
	}
	return &spaceFixture{tr: tr, dataDir: dd, space: backuptest.Space(t, tr.Repository, dd, "tenant_01"), paths: backuptest.Backup(t, tr.Repository, backup.BackupOptions{Paths: []string{src}})}
}

// repoFiles lists a repository's files of one kind ("" = all), relative.
func repoFiles(t testing.TB, dir, kind string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(filepath.Join(dir, kind), func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() && !strings.HasPrefix(d.Name(), ".") {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	sort.Strings(out)
	return out
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func chmod(t testing.TB, p string, mode os.FileMode) {
	t.Helper()
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}

// corruptFixture is a repository with one snapshot of src/{victim,other}.
type corruptFixture struct {
	tr     *repotest.Repo
	sn     *repo.Snapshot
	victim chunk.ID // first chunk of src/victim
	pack   string   // path of the pack holding it
	loc    struct{ off, length int64 }
}

func newCorruptFixture(t *testing.T, insecure bool) *corruptFixture {
	t.Helper()
	tr := repotest.New(t, repo.InitOptions{Insecure: insecure})
	src := filepath.Join(t.TempDir(), "src")
	repotest.WriteFile(t, filepath.Join(src, "victim"), repotest.RandomBytes(5, 1<<20), 0o644)
	repotest.WriteFile(t, filepath.Join(src, "other"), []byte("unharmed"), 0o644)
	sn := backuptest.Backup(t, tr.Repository, backup.BackupOptions{Paths: []string{src}})
	n := tr.NodeAt(t, sn, "src/victim")
	locs, err := tr.Locate("", n.Content[:1])
	if err != nil {
		t.Fatal(err)
	}
	loc := locs[n.Content[0]]
	fx := &corruptFixture{tr: tr, sn: sn, victim: n.Content[0], pack: filepath.Join(tr.Dir, filepath.FromSlash(repo.PackName(loc.Pack)))}
	fx.loc.off, fx.loc.length = int64(loc.Offset), int64(loc.Length)
	return fx
}

// flip inverts one byte of a repository file in place.
func flip(t *testing.T, p string, off int64) {
	t.Helper()
	chmod(t, p, 0o600)
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x55
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// lockInfo is the JSON of a lock file (the repository's private lockInfo).
type lockInfo struct {
	Version      int       `json:"version"`
	Host         string    `json:"host"`
	PID          int       `json:"pid"`
	Time         time.Time `json:"time"`
	Exclusive    bool      `json:"exclusive"`
	Command      string    `json:"command,omitempty"`
	BootID       string    `json:"boot_id,omitempty"`
	PIDNamespace string    `json:"pid_ns,omitempty"`
}

// writeTestLock stores li as a lock file whose mtime (the storage's clock)
// is age ago.
func writeTestLock(t *testing.T, tr *repotest.Repo, li lockInfo, age time.Duration) string {
	t.Helper()
	id, err := tr.SaveFile(context.Background(), repo.DirLocks, "lock", li) // what the repository's writeLock does
	if err != nil {
		t.Fatal(err)
	}
	name := repo.FileName(repo.DirLocks, id)
	if age != 0 {
		at := time.Now().Add(-age)
		if err := os.Chtimes(filepath.Join(tr.Dir, filepath.FromSlash(name)), at, at); err != nil {
			t.Fatal(err)
		}
	}
	return name
}
