package maintenance

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"memento/repo"
	"memento/repo/backup"
	"memento/repo/backup/backuptest"
	"memento/repo/repotest"
	"memento/repo/restore/restoretest"
)

func prune(t testing.TB, r *repo.Repository, opts PruneOptions) *PruneResult {
	t.Helper()
	res, err := Prune(context.Background(), r, opts)
	if err != nil {
		t.Fatalf("prune: %v", err)
	}
	return res
}

func forgetIDs(t testing.TB, r *repo.Repository, sns ...*repo.Snapshot) {
	t.Helper()
	var ids []string
	for _, sn := range sns {
		ids = append(ids, sn.ID.String())
	}
	if _, err := Forget(context.Background(), r, ForgetOptions{IDs: ids}); err != nil {
		t.Fatalf("forget: %v", err)
	}
}

func mustCheck(t testing.TB, r *repo.Repository, readData bool) *CheckReport {
	t.Helper()
	rep, err := Check(context.Background(), r, CheckOptions{ReadData: readData})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range rep.Findings {
		if f.Severity == SevError || strings.Contains(f.Message, "not listed in any index file") {
			t.Fatalf("check: %s: %s: %s", f.Severity, f.What, f.Message)
		}
	}
	return rep
}

// Prune with the table of MaxUnused: a snapshot sharing half its data with
// a forgotten one leaves packs that are half unused.
func TestPruneMaxUnused(t *testing.T) {
	cases := []struct {
		name         string
		maxUnused    float64
		wantRepacked bool
	}{
		{"repack above 10%", 0.10, true},
		{"never repack", 1, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tr := repotest.New(t, repo.InitOptions{})
			src := filepath.Join(t.TempDir(), "src")
			// Small files: both snapshots' data lands in one pack each.
			repotest.WriteFile(t, filepath.Join(src, "keep"), repotest.RandomBytes(1, 600<<10), 0o644)
			repotest.WriteFile(t, filepath.Join(src, "gone"), repotest.RandomBytes(2, 600<<10), 0o644)
			old := backuptest.Backup(t, tr.Repository, backup.BackupOptions{Paths: []string{src}})
			if err := os.Remove(filepath.Join(src, "gone")); err != nil {
				t.Fatal(err)
			}
			repotest.WriteFile(t, filepath.Join(src, "new"), repotest.RandomBytes(3, 300<<10), 0o644)
			cur := backuptest.Backup(t, tr.Repository, backup.BackupOptions{Paths: []string{src}})
			want := repotest.DigestTree(t, src)
			forgetIDs(t, tr.Repository, old)

			dry := prune(t, tr.Repository, PruneOptions{DryRun: true, MaxUnused: c.maxUnused})
			res := prune(t, tr.Repository, PruneOptions{MaxUnused: c.maxUnused})
			// The dry run cannot know the new packs' header sizes.
			if res.PacksRepacked != dry.PacksRepacked || res.PacksDeleted != dry.PacksDeleted || res.BytesRepacked != dry.BytesRepacked ||
				res.PacksWritten != dry.PacksWritten || max(res.BytesFreed-dry.BytesFreed, dry.BytesFreed-res.BytesFreed) > 4096 {
				t.Fatalf("dry run %+v, prune %+v", dry, res)
			}
			if (res.PacksRepacked > 0) != c.wantRepacked || res.PacksDeleted != 0 {
				t.Fatalf("max unused %.2f: %+v", c.maxUnused, res)
			}
			if c.wantRepacked && (res.BytesFreed < 500<<10 || res.UnusedLeft != 0) {
				t.Fatalf("repack freed %d bytes, left %d unused", res.BytesFreed, res.UnusedLeft)
			}
			if !c.wantRepacked && (res.BytesFreed != 0 || res.UnusedLeft < 600<<10) {
				t.Fatalf("without repacking: freed %d, %d unused left", res.BytesFreed, res.UnusedLeft)
			}
			repotest.CompareTrees(t, want, repotest.DigestTree(t, filepath.Join(restoretest.Restore(t, tr.Repository, cur), "src")))
			mustCheck(t, tr.Repository, true)
			// A fresh host (empty cache) restores too: the index files
			// describe what is left.
			other := &repotest.Repo{Dir: tr.Dir, Cache: filepath.Join(t.TempDir(), "c2"), Backend: tr.Backend}
			other.Repository = other.Reopen(t)
			repotest.CompareTrees(t, want, repotest.DigestTree(t, filepath.Join(restoretest.Restore(t, other.Repository, cur), "src")))
		})
	}
}

// A snapshot whose data is gone makes prune refuse until check --repair has
// marked it; then prune keeps what is left of it and frees the rest.
func TestPruneDamagedSnapshot(t *testing.T) {
	tr := repotest.New(t, repo.InitOptions{})
	a := filepath.Join(t.TempDir(), "a")
	b := filepath.Join(t.TempDir(), "b")
	repotest.WriteFile(t, filepath.Join(a, "f"), repotest.RandomBytes(4, 200<<10), 0o644)
	repotest.WriteFile(t, filepath.Join(b, "g"), repotest.RandomBytes(5, 200<<10), 0o644)
	snA := backuptest.Backup(t, tr.Repository, backup.BackupOptions{Paths: []string{a}})
	packsA := tr.PackFiles(t)
	snB := backuptest.Backup(t, tr.Repository, backup.BackupOptions{Paths: []string{b}})
	wantB := repotest.DigestTree(t, b)
	for _, p := range packsA {
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
	}
	_, err := Prune(context.Background(), tr.Repository, PruneOptions{MaxUnused: DefaultMaxUnused})
	if !errors.Is(err, ErrPruneUnsafe) || !strings.Contains(err.Error(), "missing from the repository; run 'memento check --repair' first") {
		t.Fatalf("prune over a missing pack: %v", err)
	}
	if _, err := Check(context.Background(), tr.Repository, CheckOptions{Repair: true}); err != nil {
		t.Fatal(err)
	}
	res := prune(t, tr.Repository, PruneOptions{MaxUnused: DefaultMaxUnused})
	if res.Snapshots != 2 {
		t.Fatalf("prune: %+v", res)
	}
	repotest.CompareTrees(t, wantB, repotest.DigestTree(t, filepath.Join(restoretest.Restore(t, tr.Repository, snB), "b")))
	// The damaged snapshot is kept by a policy unless asked.
	fr, err := Forget(context.Background(), tr.Repository, ForgetOptions{All: true, Policy: RetentionPolicy{Last: 1}})
	if err != nil {
		t.Fatal(err)
	}
	if len(fr.Removed) != 0 {
		t.Fatalf("forget removed %v", fr.Removed)
	}
	fr, err = Forget(context.Background(), tr.Repository, ForgetOptions{All: true, Policy: RetentionPolicy{Last: 1}, ForgetDamaged: true, AllowEmpty: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(fr.Removed) != 1 || fr.Removed[0] != snA.ID.String() {
		t.Fatalf("forget --forget-damaged removed %v, want %s", fr.Removed, snA.ShortID())
	}
	res = prune(t, tr.Repository, PruneOptions{MaxUnused: DefaultMaxUnused})
	if res.DamageMarkers != 1 {
		t.Fatalf("prune left the damage marker of a forgotten snapshot: %+v", res)
	}
	mustCheck(t, tr.Repository, true)
	repotest.CompareTrees(t, wantB, repotest.DigestTree(t, filepath.Join(restoretest.Restore(t, tr.Repository, snB), "b")))
}

// Packs no index file lists but a snapshot uses (index files lost, the
// cache rebuilt from pack headers) are kept and described in a new index
// file, so a host with an empty cache finds them again.
func TestPruneIndexesUsedUnindexedPacks(t *testing.T) {
	tr := repotest.New(t, repo.InitOptions{})
	src := filepath.Join(t.TempDir(), "src")
	repotest.WriteFile(t, filepath.Join(src, "f"), repotest.RandomBytes(6, 300<<10), 0o644)
	sn := backuptest.Backup(t, tr.Repository, backup.BackupOptions{Paths: []string{src}})
	want := repotest.DigestTree(t, src)
	idx, _ := filepath.Glob(filepath.Join(tr.Dir, repo.DirIndex, "*"))
	for _, p := range idx {
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := tr.RebuildIndex(context.Background()); err != nil {
		t.Fatal(err)
	}
	res := prune(t, tr.Repository, PruneOptions{MaxUnused: DefaultMaxUnused})
	if res.IndexFilesWritten != 1 || res.PacksDeleted != 0 || res.PacksKept != len(tr.PackFiles(t)) {
		t.Fatalf("prune: %+v", res)
	}
	mustCheck(t, tr.Repository, false)
	other := &repotest.Repo{Dir: tr.Dir, Cache: filepath.Join(t.TempDir(), "c2"), Backend: tr.Backend}
	other.Repository = other.Reopen(t)
	repotest.CompareTrees(t, want, repotest.DigestTree(t, filepath.Join(restoretest.Restore(t, other.Repository, sn), "src")))
}

// Two backups that did not see each other stored the same chunks twice;
// prune keeps one copy and deletes the other pack.
func TestPruneDuplicatePacks(t *testing.T) {
	tr := repotest.New(t, repo.InitOptions{})
	src := filepath.Join(t.TempDir(), "src")
	repotest.WriteFile(t, filepath.Join(src, "f"), repotest.RandomBytes(7, 1<<20), 0o644)
	other := &repotest.Repo{Dir: tr.Dir, Cache: filepath.Join(t.TempDir(), "cache2"), Backend: tr.Backend}
	other.Repository = other.Reopen(t)
	sn := backuptest.Backup(t, tr.Repository, backup.BackupOptions{Paths: []string{src}})
	backuptest.Backup(t, other.Repository, backup.BackupOptions{Paths: []string{src}})
	before := len(tr.PackFiles(t))
	res := prune(t, tr.Repository, PruneOptions{MaxUnused: DefaultMaxUnused})
	if res.PacksDeleted == 0 || len(tr.PackFiles(t)) >= before {
		t.Fatalf("duplicates not pruned: %d packs before, %+v", before, res)
	}
	mustCheck(t, tr.Repository, true)
	repotest.CompareTrees(t, repotest.DigestTree(t, src), repotest.DigestTree(t, filepath.Join(restoretest.Restore(t, tr.Repository, sn), "src")))
	// The other handle's cache listed the deleted pack; its next lock
	// notices the index files changed and reloads.
	repotest.CompareTrees(t, repotest.DigestTree(t, src), repotest.DigestTree(t, filepath.Join(restoretest.Restore(t, other.Repository, sn), "src")))
}

// Prune needs the repository to itself.
func TestPruneRefusesWhenLocked(t *testing.T) {
	tr := repotest.New(t, repo.InitOptions{})
	l, err := tr.Lock(context.Background(), false, "backup")
	if err != nil {
		t.Fatal(err)
	}
	_, err = Prune(context.Background(), tr.Repository, PruneOptions{})
	if !errors.Is(err, repo.ErrLocked) || !strings.Contains(err.Error(), "shared lock of 'backup' by ") || !strings.Contains(err.Error(), "run 'memento unlock'") {
		t.Fatalf("prune beside a shared lock: %v", err)
	}
	if _, err := Prune(context.Background(), tr.Repository, PruneOptions{DryRun: true}); err != nil {
		t.Fatalf("dry run beside a shared lock: %v", err)
	}
	if err := l.Unlock(); err != nil {
		t.Fatal(err)
	}
	prune(t, tr.Repository, PruneOptions{})
}
