package backup_test

import (
	"os"
	"path/filepath"
	"testing"

	"memento/repo"
	"memento/repo/backup"
	"memento/repo/backup/backuptest"
	"memento/repo/repotest"
)

// BenchmarkBackup measures a first backup into a new repository (MB/s of
// source data), and a second backup of the unchanged tree (change detection).
//
//	go test ./repo/backup ./repo/restore -run '^$' -bench 'Backup|Restore' -benchtime 3x
func BenchmarkBackup(b *testing.B) {
	src := filepath.Join(b.TempDir(), "src")
	size := repotest.WriteBenchTree(b, src)
	b.Run("first", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			b.StopTimer()
			tr := repotest.New(b, repo.InitOptions{})
			b.StartTimer()
			backuptest.Backup(b, tr.Repository, backup.BackupOptions{Paths: []string{src}})
			b.StopTimer()
			os.RemoveAll(tr.Dir)
			b.StartTimer()
		}
	})
	b.Run("unchanged", func(b *testing.B) {
		tr := repotest.New(b, repo.InitOptions{})
		backuptest.Backup(b, tr.Repository, backup.BackupOptions{Paths: []string{src}})
		b.SetBytes(size)
		for b.Loop() {
			sn := backuptest.Backup(b, tr.Repository, backup.BackupOptions{Paths: []string{src}})
			if sn.Summary.NewBytes != 0 {
				b.Fatalf("unchanged backup stored %d bytes", sn.Summary.NewBytes)
			}
		}
	})
}

// BenchmarkBackupSmallFiles is BenchmarkBackup on a tree of 4,000 small
// files in 400 directories (repotest.WriteSmallFileTree), where per-file
// and per-directory costs dominate: the unchanged case is what the
// concurrent directory walk and the cached tree locations are for.
//
//	go test ./repo/backup -run '^$' -bench BackupSmallFiles -benchtime 5x
func BenchmarkBackupSmallFiles(b *testing.B) {
	src := filepath.Join(b.TempDir(), "src")
	size := repotest.WriteSmallFileTree(b, src)
	b.Run("first", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			b.StopTimer()
			tr := repotest.New(b, repo.InitOptions{})
			b.StartTimer()
			backuptest.Backup(b, tr.Repository, backup.BackupOptions{Paths: []string{src}})
			b.StopTimer()
			os.RemoveAll(tr.Dir)
			b.StartTimer()
		}
	})
	b.Run("unchanged", func(b *testing.B) {
		tr := repotest.New(b, repo.InitOptions{})
		backuptest.Backup(b, tr.Repository, backup.BackupOptions{Paths: []string{src}})
		b.SetBytes(size)
		for b.Loop() {
			b.StopTimer()
			r := tr.Reopen(b) // a new process's repository: nothing cached
			b.StartTimer()
			sn := backuptest.Backup(b, r, backup.BackupOptions{Paths: []string{src}})
			if sn.Summary.UnchangedFiles != sn.Summary.Files {
				b.Fatalf("unchanged backup read %d files", sn.Summary.Files-sn.Summary.UnchangedFiles)
			}
		}
	})
}
