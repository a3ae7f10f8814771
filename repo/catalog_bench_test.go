package repo_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"memento/index"
	"memento/repo"
	"memento/repo/backup"
	"memento/repo/backup/backuptest"
	"memento/repo/repotest"
)

// BenchmarkLatestSnapshotCatalog measures what picking a backup's parent
// (LatestSnapshot) costs when the local catalog holds a year of hourly
// snapshots of three spaces (26,280 entries, each with the manifest a
// real backup wrote; only the newest is in the repository, which is all
// LatestSnapshot reads there): the catalog grows by one entry per space
// and backup, and every space's backup picks its parent.
//
//	go test -run '^$' -bench LatestSnapshotCatalog -benchtime 5x -benchmem ./repo/
func BenchmarkLatestSnapshotCatalog(b *testing.B) {
	tr := repotest.New(b, repo.InitOptions{})
	src := filepath.Join(b.TempDir(), "src")
	repotest.WriteFile(b, filepath.Join(src, "f"), []byte("one file"), 0o644)
	sn := backuptest.Backup(b, tr.Repository, backup.BackupOptions{Paths: []string{src}})
	raw, err := json.Marshal(sn.Manifest)
	if err != nil {
		b.Fatal(err)
	}
	const perSpace = 24 * 365
	var entries []index.SnapshotEntry
	for i := range 3 * perSpace {
		space := fmt.Sprintf("space-%c", 'a'+i%3)
		if i%3 == 0 {
			space = "" // the real snapshot's "space": the path backups
		}
		entries = append(entries, index.SnapshotEntry{ID: fmt.Sprintf("%064x", i+1), Time: sn.Time.Add(-time.Duration(i+1) * time.Hour),
			Space: space, Host: sn.Host, Summary: raw})
	}
	if err := tr.Index().PutSnapshots(entries); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	for b.Loop() {
		got, err := tr.LatestSnapshot(ctx, "")
		if err != nil || got.ID != sn.ID {
			b.Fatalf("latest: %v, %v", got, err)
		}
	}
}
