package repo_test

import (
	"context"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"memento/repo"
	"memento/repo/backend/local"
	"memento/repo/backup"
	"memento/repo/backup/backuptest"
	"memento/repo/pathmatch"
	"memento/repo/repotest"
	"memento/repo/restore/restoretest"
)

// testdata/repo-v2-encrypted was written once by the first binary writing
// tree format 2 and manifest version 2: one path snapshot of the full-path
// layout, with an exclude, holding hard links, extended attributes and a
// FIFO. Like the format-1 goldens it is never regenerated; regenerate only
// when deliberately starting it (as root, on a file system with user.*
// attributes) with
//
//	go test ./repo -run TestGoldenRepositoryV2 -update-golden
const goldenV2Source = "/tmp/memento-golden-v2/src"

func goldenV2Tree(t *testing.T, dir string) {
	if err := os.RemoveAll(filepath.Dir(dir)); err != nil {
		t.Fatal(err)
	}
	repotest.WriteFile(t, filepath.Join(dir, "a", "linked"), []byte("one inode, two names\n"), 0o640)
	repotest.WriteFile(t, filepath.Join(dir, "b", "other"), []byte("other\n"), 0o644)
	repotest.WriteFile(t, filepath.Join(dir, "skip.tmp"), []byte("excluded\n"), 0o644)
	for _, err := range []error{
		os.Link(filepath.Join(dir, "a", "linked"), filepath.Join(dir, "b", "linked2")),
		unix.Mkfifo(filepath.Join(dir, "fifo"), 0o600),
		unix.Lsetxattr(filepath.Join(dir, "b", "other"), "user.golden", []byte("v2 \x00\xff"), 0),
		unix.Lsetxattr(filepath.Join(dir, "a"), "user.dir", []byte("on a directory"), 0),
		os.Symlink("a/linked", filepath.Join(dir, "link")),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	tm := time.Date(2026, 12, 5, 1, 2, 3, 456789012, time.UTC)
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil {
			repotest.Touch(t, p, tm, d.Type()&fs.ModeSymlink != 0)
		}
		return nil
	})
	for _, d := range []string{filepath.Join(dir, "a"), filepath.Join(dir, "b"), dir, filepath.Dir(dir)} {
		repotest.Touch(t, d, tm, false)
	}
}

func TestGoldenRepositoryV2(t *testing.T) {
	const name = "repo-v2-encrypted"
	golden := filepath.Join("testdata", name)
	if *updateGolden {
		writeGoldenV2(t, golden)
	}
	dir := filepath.Join(t.TempDir(), "repo")
	if err := os.CopyFS(dir, os.DirFS(filepath.Join(golden, "repo"))); err != nil {
		t.Fatal(err)
	}
	want := loadGoldenDigest(t, golden)
	be, err := local.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	r, err := repo.Open(context.Background(), be, repo.Options{Password: goldenPassword, CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	sns, err := r.Snapshots(context.Background())
	if err != nil || len(sns) != len(want) || len(sns) == 0 {
		t.Fatalf("%d snapshots (want %d), %v", len(sns), len(want), err)
	}
	for _, s := range sns {
		sn, err := r.FindSnapshot(context.Background(), s.ID.String())
		if err != nil {
			t.Fatal(err)
		}
		if sn.Version != 2 || sn.Layout != repo.LayoutFull || sn.Summary.Excluded != 1 || sn.Summary.Special != 1 {
			t.Fatalf("snapshot %s: manifest version %d, layout %q, summary %+v", sn.ShortID(), sn.Version, sn.Layout, sn.Summary)
		}
		w, ok := want[sn.ID.String()]
		if !ok {
			t.Fatalf("snapshot %s is not in digest.json", sn.ID)
		}
		repotest.CompareTrees(t, w, restoredDigest(t, sn, restoretest.Restore(t, r, sn)))
	}
	if _, err := r.RebuildIndex(context.Background()); err != nil {
		t.Fatalf("index rebuild: %v", err)
	}
}

func writeGoldenV2(t *testing.T, golden string) {
	r := newGoldenRepo(t, golden, false)
	goldenV2Tree(t, goldenV2Source)
	defer os.RemoveAll(filepath.Dir(goldenV2Source))
	var ex pathmatch.Set
	if err := ex.Add([]string{"*.tmp"}, false); err != nil {
		t.Fatal(err)
	}
	sn := backuptest.Backup(t, r, backup.BackupOptions{Paths: []string{goldenV2Source}, FullPaths: true, Exclude: ex, Host: "golden", Tags: []string{"golden"}})
	digests := goldenDigest{sn.ID.String(): restoredDigest(t, sn, restoretest.Restore(t, r, sn))}
	b, err := json.MarshalIndent(digests, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(golden, "digest.json"), append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	_ = os.Remove(filepath.Join(golden, "repo", ".tmp-reserve")) // the local backend's, recreated on open
	_ = filepath.WalkDir(golden, func(p string, d fs.DirEntry, err error) error {
		if err == nil {
			if d.IsDir() {
				_ = os.Chmod(p, 0o755)
			} else {
				_ = os.Chmod(p, 0o644)
			}
		}
		return nil
	})
}
