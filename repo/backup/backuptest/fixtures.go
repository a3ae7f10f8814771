package backuptest

import (
	"os"
	"path/filepath"
	"testing"

	"memento/chunk"
	"memento/repo"
	"memento/repo/backup"
	"memento/repo/repotest"
)

// CorruptFixture is a repository with one snapshot of src/{victim,other},
// for tests that damage the pack holding the first chunk of src/victim.
type CorruptFixture struct {
	Repo     *repotest.Repo
	Snapshot *repo.Snapshot
	// Victim is the first chunk of src/victim, Pack the path of the pack
	// file holding it, at Off for Length bytes.
	Victim      chunk.ID
	Pack        string
	Off, Length int64
}

// NewCorruptFixture backs up src/victim (1 MiB of random bytes) and
// src/other ("unharmed") into a new repository, encrypted unless insecure.
func NewCorruptFixture(t testing.TB, insecure bool) *CorruptFixture {
	t.Helper()
	tr := repotest.New(t, repo.InitOptions{Insecure: insecure})
	src := filepath.Join(t.TempDir(), "src")
	repotest.WriteFile(t, filepath.Join(src, "victim"), repotest.RandomBytes(5, 1<<20), 0o644)
	repotest.WriteFile(t, filepath.Join(src, "other"), []byte("unharmed"), 0o644)
	sn := Backup(t, tr.Repository, backup.BackupOptions{Paths: []string{src}})
	n := tr.NodeAt(t, sn, "src/victim")
	locs, err := tr.Locate("", n.Content[:1])
	if err != nil {
		t.Fatal(err)
	}
	loc := locs[n.Content[0]]
	return &CorruptFixture{Repo: tr, Snapshot: sn, Victim: n.Content[0],
		Pack: filepath.Join(tr.Dir, filepath.FromSlash(repo.PackName(loc.Pack))),
		Off:  int64(loc.Offset), Length: int64(loc.Length)}
}

// SpaceFixture is a repository with one Engram space snapshot and one
// snapshot of plain paths.
type SpaceFixture struct {
	Repo *repotest.Repo
	// DataDir is the Engram data directory of the space "tenant_01".
	DataDir string
	// Space is the snapshot of the space, Paths that of a tree with a
	// 3 MiB file, a small file in a directory, an empty file and a symlink.
	Space, Paths *repo.Snapshot
}

// NewSpaceFixture makes a SpaceFixture in a new repository with packSize
// (0: the default).
func NewSpaceFixture(t testing.TB, packSize int64) *SpaceFixture {
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
	return &SpaceFixture{Repo: tr, DataDir: dd, Space: Space(t, tr.Repository, dd, "tenant_01"), Paths: Backup(t, tr.Repository, backup.BackupOptions{Paths: []string{src}})}
}
