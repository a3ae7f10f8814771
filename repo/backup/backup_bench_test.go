package backup_test

import (
	"context"
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

// BenchmarkBackupSpaceUnchanged is what `memento backup --data-dir DIR
// --all` costs per run when nothing changed, on three spaces of an Engram
// data dir (WAL, warm, cold, hot): BackupSpace for each, in a repository
// opened anew each time as a new process would (its key derivation is
// repotest's, not argon2id's). The parent lends the WAL's end and digest,
// no file is read; what is left is the tier check, the catalog, the index,
// the parent's trees and the manifest. The three share one repository
// lock, as the command's spaces do (BackupOptions.Locked).
//
//	go test ./repo/backup -run '^$' -bench BackupSpaceUnchanged -benchtime 20x -benchmem
func BenchmarkBackupSpaceUnchanged(b *testing.B) {
	dd := filepath.Join(b.TempDir(), "engram")
	spaces := []string{"s1", "s2", "s3"}
	for _, sp := range spaces {
		repotest.WriteEngramSpace(b, dd, sp, 400, 16<<10, 100)
	}
	tr := repotest.New(b, repo.InitOptions{})
	ctx := context.Background()
	for _, sp := range spaces {
		if _, err := backup.BackupSpace(ctx, tr.Repository, backup.BackupOptions{DataDir: dd, Space: sp}, backup.SpaceOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	for b.Loop() {
		b.StopTimer()
		r := tr.Reopen(b)
		b.StartTimer()
		lock, err := r.Lock(ctx, false, "backup")
		if err != nil {
			b.Fatal(err)
		}
		for _, sp := range spaces {
			sn, err := backup.BackupSpace(lock.Context(), r, backup.BackupOptions{DataDir: dd, Space: sp, Locked: true}, backup.SpaceOptions{})
			if err != nil {
				b.Fatal(err)
			}
			if sn.Summary.UnchangedFiles != sn.Summary.Files || sn.Summary.NewBytes != 0 {
				b.Fatalf("space %s: unchanged backup read %d of %d files, stored %d bytes", sp,
					sn.Summary.Files-sn.Summary.UnchangedFiles, sn.Summary.Files, sn.Summary.NewBytes)
			}
		}
		if err := lock.Unlock(); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		r.Close()
		b.StartTimer()
	}
}
