package repo_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"memento/repo"
	"memento/repo/backend/local"
	"memento/repo/backup"
	"memento/repo/backup/backuptest"
	"memento/repo/repotest"
	"memento/repo/restore/restoretest"
)

// testdata/repo-format2-encrypted was written once by the first binary of
// repository format 2 (compressed index files: metadata envelope version
// 2), with the same two snapshots as the format-1 goldens. Never
// regenerated; regenerate only when deliberately starting it with
//
//	go test ./repo -run 'TestGoldenRepositoryFormat2$' -update-golden
func TestGoldenRepositoryFormat2(t *testing.T) {
	checkGoldenFormat(t, "repo-format2-encrypted", 2, repo.EncryptionXChaCha)
}

// checkGoldenFormat opens a copy of the golden repository testdata/name of
// format version, whose config names encryption and whose index files are
// compressed, restores every snapshot to its recorded digest and rebuilds
// the index.
func checkGoldenFormat(t *testing.T, name string, version int, encryption string) {
	golden := filepath.Join("testdata", name)
	if *updateGolden {
		writeGolden(t, golden, false)
	}
	src := filepath.Join(golden, "repo")
	cfg, err := os.ReadFile(filepath.Join(src, "config"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(cfg, fmt.Appendf(nil, `"version": %d,`, version)) || !bytes.Contains(cfg, fmt.Appendf(nil, `"encryption": %q,`, encryption)) {
		t.Fatalf("golden config is not of format %d with %s:\n%s", version, encryption, cfg)
	}
	idx, err := filepath.Glob(filepath.Join(src, "index", "*"))
	if err != nil || len(idx) == 0 {
		t.Fatalf("index files %v, %v", idx, err)
	}
	for _, p := range idx {
		b, err := os.ReadFile(p)
		if err != nil || len(b) < 5 || string(b[:5]) != "MMTO\x02" {
			t.Fatalf("%s: not a compressed (version-2) envelope: %q, %v", p, b[:min(len(b), 5)], err)
		}
	}
	r := openGoldenCopy(t, src)
	want := loadGoldenDigest(t, golden)
	sns, err := r.Snapshots(context.Background())
	if err != nil || len(sns) != len(want) || len(sns) == 0 {
		t.Fatalf("%d snapshots (want %d), %v", len(sns), len(want), err)
	}
	for _, s := range sns {
		sn, err := r.FindSnapshot(context.Background(), s.ID.String())
		if err != nil {
			t.Fatal(err)
		}
		w, ok := want[sn.ID.String()]
		if !ok {
			t.Fatalf("snapshot %s is not in digest.json", sn.ID)
		}
		repotest.CompareTrees(t, w, restoredDigest(t, sn, restoretest.Restore(t, r, sn)))
	}
	if _, err := r.RebuildIndex(context.Background()); err != nil {
		t.Fatalf("index rebuild of a format-%d repository: %v", version, err)
	}
}

// openGoldenCopy opens a copy of the golden repository src (opening and
// restoring take locks, which write).
func openGoldenCopy(t *testing.T, src string) *repo.Repository {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "repo")
	if err := os.CopyFS(dir, os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
	be, err := local.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	r, err := repo.Open(context.Background(), be, repo.Options{Password: goldenPassword, CacheDir: t.TempDir()})
	if err != nil {
		t.Fatalf("golden %s no longer opens: %v", src, err)
	}
	return r
}

// TestFormat1GoldenStaysFormat1: backing up into a copy of a format-1
// golden repository leaves it of format 1, with plain (version-1) index
// files only, which every binary of format 1 reads; what was backed up
// restores.
func TestFormat1GoldenStaysFormat1(t *testing.T) {
	r := openGoldenCopy(t, filepath.Join("testdata", "repo-v1-encrypted", "repo"))
	dir := r.Backend().Location()
	src := t.TempDir()
	text := bytes.Repeat([]byte("a format-1 repository keeps plain index files\n"), 4000)
	repotest.WriteFile(t, filepath.Join(src, "notes.txt"), text, 0o644)
	repotest.WriteFile(t, filepath.Join(src, "rand.bin"), repotest.RandomBytes(18, 200<<10), 0o644)
	sn := backuptest.Backup(t, r, backup.BackupOptions{Paths: []string{src}, Host: "h"})
	if r.Config().Version != 1 {
		t.Fatalf("config version %d after a backup, want 1", r.Config().Version)
	}
	cfg, err := os.ReadFile(filepath.Join(dir, "config"))
	if err != nil || !bytes.Contains(cfg, []byte(`"version": 1,`)) {
		t.Fatalf("config rewritten: %s, %v", cfg, err)
	}
	idx, err := filepath.Glob(filepath.Join(dir, "index", "*"))
	if err != nil || len(idx) < 2 {
		t.Fatalf("index files %v, %v (want the golden's and the backup's)", idx, err)
	}
	for _, p := range idx {
		b, err := os.ReadFile(p)
		if err != nil || string(b[:5]) != "MMTO\x01" {
			t.Fatalf("%s in a format-1 repository: %q, %v", p, b[:min(len(b), 5)], err)
		}
	}
	want := repotest.DigestTree(t, src)
	found := 0
	for p, e := range restoredDigest(t, sn, restoretest.Restore(t, r, sn)) {
		if name := filepath.Base(p); e.Type == "file" {
			if w := want[name]; e.Sum != w.Sum || e.Size != w.Size {
				t.Errorf("restored %s: %d bytes, sum %s; want %d, %s", p, e.Size, e.Sum, w.Size, w.Sum)
			}
			found++
		}
	}
	if found != 2 {
		t.Fatalf("restored %d files, want 2", found)
	}
}
