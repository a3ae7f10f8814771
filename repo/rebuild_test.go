package repo

import (
	"context"
	"errors"
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
			tr := newTestRepo(t, InitOptions{PackSize: 1 << 20}) // small packs: several of them
			src := filepath.Join(t.TempDir(), "src")
			writeFile(t, filepath.Join(src, "a"), randomBytes(1, 3<<20), 0o644)
			writeFile(t, filepath.Join(src, "d", "b"), []byte("bee"), 0o600)
			sn1 := tr.backup(t, BackupOptions{Paths: []string{src}})
			writeFile(t, filepath.Join(src, "c"), randomBytes(2, 2<<20), 0o644)
			sn2 := tr.backup(t, BackupOptions{Paths: []string{src}})
			want := map[string]map[string]entry{}
			for _, sn := range []*Snapshot{sn1, sn2} {
				want[sn.ID.String()] = digestTree(t, tr.restore(t, sn))
			}
			if n := len(tr.packFiles(t)); n < 3 {
				t.Fatalf("only %d packs; the test wants several", n)
			}

			if err := os.Remove(filepath.Join(tr.cache, tr.Config().ID, "index.db")); err != nil {
				t.Fatal(err)
			}
			if dropIndexFiles {
				if err := os.RemoveAll(filepath.Join(tr.dir, DirIndex)); err != nil {
					t.Fatal(err)
				}
			}
			r := tr.reopen(t)
			if dropIndexFiles {
				// Without index files the blobs cannot be found yet.
				if _, err := RestoreBridge(context.Background(), r, sn1, filepath.Join(t.TempDir(), "x"), nil); !errors.Is(err, ErrNotFound) {
					t.Fatalf("restore without any index: %v, want ErrNotFound", err)
				}
			}
			res, err := r.RebuildIndex(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if res.Snapshots != 2 || len(res.Damaged) != 0 || res.Packs != len(tr.packFiles(t)) || res.Blobs == 0 {
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
				compareTrees(t, want[sn.ID.String()], digestTree(t, tr.restore(t, full)))
			}
			// A backup after the rebuild still deduplicates against the old packs.
			sn3 := tr.backup(t, BackupOptions{Paths: []string{src}, NoParent: true})
			if sn3.Summary.NewBytes != 0 {
				t.Errorf("backup after rebuild stored %d new bytes", sn3.Summary.NewBytes)
			}
		})
	}
}
