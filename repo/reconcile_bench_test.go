package repo_test

import (
	"context"
	"fmt"
	"memento/repo"
	"memento/repo/backup"
	"memento/repo/backup/backuptest"
	"memento/repo/repotest"
	"path/filepath"
	"testing"
)

// BenchmarkUnchangedBackupPacks measures what the pack reconciliation
// (one listing of data/ and one pass over the cached packs) costs a backup
// in a repository of about 3,000 packs: "reconcile" is the reconciliation
// alone ("list" its listing of data/, "cached" its read of the cached
// packs), "backup" an unchanged re-backup, which includes it.
//
//	go test -run '^$' -bench UnchangedBackupPacks -benchtime 20x ./repo/
func BenchmarkUnchangedBackupPacks(b *testing.B) {
	tr := repotest.New(b, repo.InitOptions{PackSize: 8 << 10})
	src := filepath.Join(b.TempDir(), "src")
	for i := range 3000 {
		repotest.WriteFile(b, filepath.Join(src, fmt.Sprintf("d%02d", i%30), fmt.Sprintf("f%04d", i)), repotest.RandomBytes(uint64(i), 6<<10), 0o644)
	}
	backuptest.Backup(b, tr.Repository, backup.BackupOptions{Paths: []string{src}})
	packs := len(tr.PackFiles(b))
	b.Logf("%d packs", packs)
	ctx := context.Background()
	b.Run("reconcile", func(b *testing.B) {
		for b.Loop() {
			if _, err := tr.ReconcileNowForTest(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("list", func(b *testing.B) {
		for b.Loop() {
			if err := tr.Backend.List(ctx, repo.DirData, func(string, int64) error { return nil }); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("cached", func(b *testing.B) {
		for b.Loop() {
			if _, err := tr.Index().Packs(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("backup", func(b *testing.B) {
		for b.Loop() {
			tr.ForgetReconciledForTest() // every backup lists, as in its own process
			sn := backuptest.Backup(b, tr.Repository, backup.BackupOptions{Paths: []string{src}})
			if sn.Summary.NewChunks != 0 {
				b.Fatalf("unchanged backup stored %d chunks", sn.Summary.NewChunks)
			}
		}
	})
}
