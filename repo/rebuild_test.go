package repo_test

import (
	"context"
	"errors"
	"memento/repo"
	"memento/repo/backup"
	"memento/repo/backup/backuptest"
	"memento/repo/repotest"
	"memento/repo/restore"
	"memento/repo/restore/restoretest"
	"os"
	"path/filepath"
	"testing"
)

// TestRebuildIndexGivesSameRestores deletes the local bbolt index (and, in the
// second variant, the repository's index files too, so only the pack headers
// are left to tell where blobs are) and checks that after RebuildIndex every
// snapshot restores to the same digest as before.
func TestRebuildIndexGivesSameRestores(t *testing.T) {
	for _, dropIndexFiles := range []bool{false, true} {
		name := "bbolt deleted"
		if dropIndexFiles {
			name = "bbolt and index files deleted"
		}
		t.Run(name, func(t *testing.T) {
			tr := repotest.New(t, repo.InitOptions{PackSize: 1 << 20}) // small packs: several of them
			src := filepath.Join(t.TempDir(), "src")
			repotest.WriteFile(t, filepath.Join(src, "a"), repotest.RandomBytes(1, 3<<20), 0o644)
			repotest.WriteFile(t, filepath.Join(src, "d", "b"), []byte("bee"), 0o600)
			sn1 := backuptest.Backup(t, tr.Repository, backup.BackupOptions{Paths: []string{src}})
			repotest.WriteFile(t, filepath.Join(src, "c"), repotest.RandomBytes(2, 2<<20), 0o644)
			sn2 := backuptest.Backup(t, tr.Repository, backup.BackupOptions{Paths: []string{src}})
			want := map[string]map[string]repotest.Entry{}
			for _, sn := range []*repo.Snapshot{sn1, sn2} {
				want[sn.ID.String()] = repotest.DigestTree(t, restoretest.Restore(t, tr.Repository, sn))
			}
			if n := len(tr.PackFiles(t)); n < 3 {
				t.Fatalf("only %d packs; the test wants several", n)
			}

			if err := os.Remove(filepath.Join(tr.Cache, tr.Config().ID, "index.db")); err != nil {
				t.Fatal(err)
			}
			if dropIndexFiles {
				if err := os.RemoveAll(filepath.Join(tr.Dir, repo.DirIndex)); err != nil {
					t.Fatal(err)
				}
			}
			r := tr.Reopen(t)
			if dropIndexFiles {
				// Without index files the blobs cannot be found yet.
				if _, err := restore.Restore(context.Background(), r, sn1, filepath.Join(t.TempDir(), "x"), restore.RestoreOptions{}); !errors.Is(err, repo.ErrNotFound) {
					t.Fatalf("restore without any index: %v, want ErrNotFound", err)
				}
			}
			res, err := r.RebuildIndex(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if res.Snapshots != 2 || len(res.Damaged) != 0 || res.Packs != len(tr.PackFiles(t)) || res.Blobs == 0 {
				t.Errorf("rebuild result %+v", res)
			}
			tr.Repository = r
			sns, err := r.Snapshots(context.Background())
			if err != nil || len(sns) != 2 {
				t.Fatalf("snapshots after rebuild: %d, %v", len(sns), err)
			}
			for _, sn := range sns {
				full, err := r.FindSnapshot(context.Background(), sn.ID.String())
				if err != nil {
					t.Fatal(err)
				}
				repotest.CompareTrees(t, want[sn.ID.String()], repotest.DigestTree(t, restoretest.Restore(t, tr.Repository, full)))
			}
			// A backup after the rebuild still deduplicates against the old packs.
			sn3 := backuptest.Backup(t, tr.Repository, backup.BackupOptions{Paths: []string{src}, NoParent: true})
			if sn3.Summary.NewBytes != 0 {
				t.Errorf("backup after rebuild stored %d new bytes", sn3.Summary.NewBytes)
			}
		})
	}
}
