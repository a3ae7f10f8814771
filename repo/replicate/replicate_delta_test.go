package replicate

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"memento/chunk"
	"memento/repo"
	"memento/repo/backup"
	"memento/repo/backup/backuptest"
	"memento/repo/repotest"
	"memento/repo/restore"
)

// TestReplicateDeltaBase: replication copies packs whole, so the base of
// a delta blob (format 4) comes along even when the only snapshot that
// listed it was removed from the source: the replica restores the later
// snapshot, whose warm file is stored as deltas of it, byte for byte.
func TestReplicateDeltaBase(t *testing.T) {
	ctx := context.Background()
	src := repotest.New(t, repo.InitOptions{})
	data := t.TempDir()
	rel := filepath.Join(data, "warm", "warm_tier.dat")
	v1 := repotest.WarmPages(3, 128<<10)
	v2 := bytes.Clone(v1)
	copy(v2[5*chunk.DeltaPageSize+8:6*chunk.DeltaPageSize], repotest.RandomBytes(4, chunk.DeltaPageSize-8))
	repotest.WriteFile(t, rel, v1, 0o644)
	sn1 := backuptest.Backup(t, src.Repository, backup.BackupOptions{Paths: []string{data}, Host: "h"})
	repotest.WriteFile(t, rel, v2, 0o644)
	sn2 := backuptest.Backup(t, src.Repository, backup.BackupOptions{Paths: []string{data}, Host: "h"})
	inner := filepath.Base(data) + "/warm/warm_tier.dat"
	c2 := src.NodeAt(t, sn2, inner).Content[0]
	base := src.NodeAt(t, sn1, inner).Content[0]
	l, err := src.Locate("", []chunk.ID{c2})
	if err != nil || l[c2].Flags != repo.FlagDelta {
		t.Fatalf("sn2's first chunk: %v flags %#x, want a delta", err, l[c2].Flags)
	}
	// Only the delta names the base now.
	if err := os.Remove(filepath.Join(src.Dir, filepath.FromSlash(repo.FileName(repo.DirSnapshots, sn1.ID)))); err != nil {
		t.Fatal(err)
	}
	dst := repotest.NewLocal(t, filepath.Join(t.TempDir(), "replica"))
	if _, err := Replicate(ctx, src.Backend, dst, ReplicateOptions{Verify: true}); err != nil {
		t.Fatal(err)
	}
	r, err := repo.Open(ctx, dst, repo.Options{Password: repotest.Password, CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if l, err := r.Locate("", []chunk.ID{base}); err != nil || l[base].Flags&repo.FlagDelta != 0 {
		t.Fatalf("replica: base %s: %v", base.Short(), err)
	}
	sn, err := r.FindSnapshot(ctx, sn2.ID.String())
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "r")
	if _, err := restore.Restore(ctx, r, sn, out, restore.RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(out, inner))
	if err != nil || !bytes.Equal(got, v2) {
		t.Fatalf("replica's restore of sn2: %v, equal %v", err, bytes.Equal(got, v2))
	}
}
