package replicate

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"memento/chunk"
	"memento/repo"
	"memento/repo/backup"
	"memento/repo/backup/backuptest"
	"memento/repo/repotest"
	"memento/repo/restore"
)

// TestReplicateGroupedFiles: a format-6 repository whose small files are
// members of group blobs replicates whole (packs are copied as they are):
// the replica is of format 6, lists members, and restores the snapshot
// byte for byte, each member read through its group.
func TestReplicateGroupedFiles(t *testing.T) {
	ctx := context.Background()
	src := repotest.New(t, repo.InitOptions{})
	data := t.TempDir()
	for i := range 40 {
		text := strings.Repeat(fmt.Sprintf("def f%d(x):\n    return x * %d\n", i, i), 10+i*3)
		repotest.WriteFile(t, filepath.Join(data, fmt.Sprintf("d%d", i%4), fmt.Sprintf("m%d.py", i)), []byte(text), 0o644)
	}
	sn := backuptest.Backup(t, src.Repository, backup.BackupOptions{Paths: []string{data}, Host: "h"})
	first := src.NodeAt(t, sn, filepath.Base(data)+"/d1/m1.py").Content[0]
	if l, err := src.Locate("", []chunk.ID{first}); err != nil || l[first].Flags != repo.FlagMember {
		t.Fatalf("source: d1/m1.py's chunk: %v flags %#x, want a member", err, l[first].Flags)
	}
	dst := repotest.NewLocal(t, filepath.Join(t.TempDir(), "replica"))
	if _, err := Replicate(ctx, src.Backend, dst, ReplicateOptions{Verify: true}); err != nil {
		t.Fatal(err)
	}
	r, err := repo.Open(ctx, dst, repo.Options{Password: repotest.Password, CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if !r.Config().GroupedFiles() {
		t.Fatalf("replica of format %d", r.Config().Version)
	}
	if l, err := r.Locate("", []chunk.ID{first}); err != nil || l[first].Flags != repo.FlagMember {
		t.Fatalf("replica: d1/m1.py's chunk: %v flags %#x, want a member", err, l[first].Flags)
	}
	rsn, err := r.FindSnapshot(ctx, sn.ID.String())
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "r")
	if _, err := restore.Restore(ctx, r, rsn, out, restore.RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	repotest.CompareTrees(t, repotest.DigestTree(t, data), repotest.DigestTree(t, filepath.Join(out, filepath.Base(data))))
}
