package maintenance

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"memento/repo"
)

func (tr *testRepo) prune(t testing.TB, opts PruneOptions) *PruneResult {
	t.Helper()
	res, err := Prune(context.Background(), tr.Repository, opts)
	if err != nil {
		t.Fatalf("prune: %v", err)
	}
	return res
}

func (tr *testRepo) forgetIDs(t testing.TB, sns ...*repo.Snapshot) {
	t.Helper()
	var ids []string
	for _, sn := range sns {
		ids = append(ids, sn.ID.String())
	}
	if _, err := Forget(context.Background(), tr.Repository, ForgetOptions{IDs: ids}); err != nil {
		t.Fatalf("forget: %v", err)
	}
}

func (tr *testRepo) mustCheck(t testing.TB, readData bool) *repo.CheckReport {
	t.Helper()
	rep, err := tr.Check(context.Background(), repo.CheckOptions{ReadData: readData})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range rep.Findings {
		if f.Severity == repo.SevError || strings.Contains(f.Message, "not listed in any index file") {
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
			tr := newTestRepo(t, repo.InitOptions{})
			src := filepath.Join(t.TempDir(), "src")
			// Small files: both snapshots' data lands in one pack each.
			writeFile(t, filepath.Join(src, "keep"), randomBytes(1, 600<<10), 0o644)
			writeFile(t, filepath.Join(src, "gone"), randomBytes(2, 600<<10), 0o644)
			old := tr.backup(t, repo.BackupOptions{Paths: []string{src}})
			if err := os.Remove(filepath.Join(src, "gone")); err != nil {
				t.Fatal(err)
			}
			writeFile(t, filepath.Join(src, "new"), randomBytes(3, 300<<10), 0o644)
			cur := tr.backup(t, repo.BackupOptions{Paths: []string{src}})
			want := digestTree(t, src)
			tr.forgetIDs(t, old)

			dry := tr.prune(t, PruneOptions{DryRun: true, MaxUnused: c.maxUnused})
			res := tr.prune(t, PruneOptions{MaxUnused: c.maxUnused})
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
			compareTrees(t, want, digestTree(t, filepath.Join(tr.restore(t, cur), "src")))
			tr.mustCheck(t, true)
			// A fresh host (empty cache) restores too: the index files
			// describe what is left.
			other := &testRepo{dir: tr.dir, cache: filepath.Join(t.TempDir(), "c2"), be: tr.be}
			other.Repository = other.reopen(t)
			compareTrees(t, want, digestTree(t, filepath.Join(other.restore(t, cur), "src")))
		})
	}
}

// A snapshot whose data is gone makes prune refuse until check --repair has
// marked it; then prune keeps what is left of it and frees the rest.
func TestPruneDamagedSnapshot(t *testing.T) {
	tr := newTestRepo(t, repo.InitOptions{})
	a := filepath.Join(t.TempDir(), "a")
	b := filepath.Join(t.TempDir(), "b")
	writeFile(t, filepath.Join(a, "f"), randomBytes(4, 200<<10), 0o644)
	writeFile(t, filepath.Join(b, "g"), randomBytes(5, 200<<10), 0o644)
	snA := tr.backup(t, repo.BackupOptions{Paths: []string{a}})
	packsA := tr.packFiles(t)
	snB := tr.backup(t, repo.BackupOptions{Paths: []string{b}})
	wantB := digestTree(t, b)
	for _, p := range packsA {
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
	}
	_, err := Prune(context.Background(), tr.Repository, PruneOptions{MaxUnused: DefaultMaxUnused})
	if !errors.Is(err, ErrPruneUnsafe) || !strings.Contains(err.Error(), "missing from the repository; run 'memento check --repair' first") {
		t.Fatalf("prune over a missing pack: %v", err)
	}
	if _, err := tr.Check(context.Background(), repo.CheckOptions{Repair: true}); err != nil {
		t.Fatal(err)
	}
	res := tr.prune(t, PruneOptions{MaxUnused: DefaultMaxUnused})
	if res.Snapshots != 2 {
		t.Fatalf("prune: %+v", res)
	}
	compareTrees(t, wantB, digestTree(t, filepath.Join(tr.restore(t, snB), "b")))
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
	res = tr.prune(t, PruneOptions{MaxUnused: DefaultMaxUnused})
	if res.DamageMarkers != 1 {
		t.Fatalf("prune left the damage marker of a forgotten snapshot: %+v", res)
	}
	tr.mustCheck(t, true)
	compareTrees(t, wantB, digestTree(t, filepath.Join(tr.restore(t, snB), "b")))
}

// Packs no index file lists but a snapshot uses (index files lost, the
// cache rebuilt from pack headers) are kept and described in a new index
// file, so a host with an empty cache finds them again.
func TestPruneIndexesUsedUnindexedPacks(t *testing.T) {
	tr := newTestRepo(t, repo.InitOptions{})
	src := filepath.Join(t.TempDir(), "src")
	writeFile(t, filepath.Join(src, "f"), randomBytes(6, 300<<10), 0o644)
	sn := tr.backup(t, repo.BackupOptions{Paths: []string{src}})
	want := digestTree(t, src)
	idx, _ := filepath.Glob(filepath.Join(tr.dir, repo.DirIndex, "*"))
	for _, p := range idx {
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := tr.RebuildIndex(context.Background()); err != nil {
		t.Fatal(err)
	}
	res := tr.prune(t, PruneOptions{MaxUnused: DefaultMaxUnused})
	if res.IndexFilesWritten != 1 || res.PacksDeleted != 0 || res.PacksKept != len(tr.packFiles(t)) {
		t.Fatalf("prune: %+v", res)
	}
	tr.mustCheck(t, false)
	other := &testRepo{dir: tr.dir, cache: filepath.Join(t.TempDir(), "c2"), be: tr.be}
	other.Repository = other.reopen(t)
	compareTrees(t, want, digestTree(t, filepath.Join(other.restore(t, sn), "src")))
}

// Two backups that did not see each other stored the same chunks twice;
// prune keeps one copy and deletes the other pack.
func TestPruneDuplicatePacks(t *testing.T) {
	tr := newTestRepo(t, repo.InitOptions{})
	src := filepath.Join(t.TempDir(), "src")
	writeFile(t, filepath.Join(src, "f"), randomBytes(7, 1<<20), 0o644)
	other := &testRepo{dir: tr.dir, cache: filepath.Join(t.TempDir(), "cache2"), be: tr.be}
	other.Repository = other.reopen(t)
	sn := tr.backup(t, repo.BackupOptions{Paths: []string{src}})
	other.backup(t, repo.BackupOptions{Paths: []string{src}})
	before := len(tr.packFiles(t))
	res := tr.prune(t, PruneOptions{MaxUnused: DefaultMaxUnused})
	if res.PacksDeleted == 0 || len(tr.packFiles(t)) >= before {
		t.Fatalf("duplicates not pruned: %d packs before, %+v", before, res)
	}
	tr.mustCheck(t, true)
	compareTrees(t, digestTree(t, src), digestTree(t, filepath.Join(tr.restore(t, sn), "src")))
	// The other handle's cache listed the deleted pack; its next lock
	// notices the index files changed and reloads.
	compareTrees(t, digestTree(t, src), digestTree(t, filepath.Join(other.restore(t, sn), "src")))
}

// Prune needs the repository to itself.
func TestPruneRefusesWhenLocked(t *testing.T) {
	tr := newTestRepo(t, repo.InitOptions{})
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
	tr.prune(t, PruneOptions{})
}
