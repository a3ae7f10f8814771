package maintenance

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"memento/repo"
	"memento/repo/backup"
	"memento/repo/backup/backuptest"
	"memento/repo/repotest"
	"memento/repo/restore"
	"memento/repo/verify"
	"memento/repo/verify/verifytest"
)

func TestCheckIntactRepositoryIsClean(t *testing.T) {
	fx := backuptest.NewSpaceFixture(t, 128<<10)
	for _, readData := range []bool{false, true} {
		rep, err := Check(context.Background(), fx.Repo.Repository, CheckOptions{ReadData: readData})
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Findings) != 0 || rep.Errors() != 0 {
			t.Fatalf("read-data %v: findings on an intact repository: %+v", readData, rep.Findings)
		}
		if rep.Figures["snapshots"] != 2 || rep.Figures["snapshots_intact"] != 2 || rep.Figures["packs"] < 2 {
			t.Errorf("figures %v", rep.Figures)
		}
		if readData && rep.Figures["bytes_read"] == 0 {
			t.Error("--read-data read nothing")
		}
	}
}

// The scenario of the issue: the local bbolt index and one pack are lost.
// check --repair rebuilds the index from the remaining packs, marks the
// snapshot that needed the pack as damaged (listing what is lost), and
// everything else restores byte for byte.
func TestCheckRepairAfterLosingIndexAndPack(t *testing.T) {
	ctx := context.Background()
	tr := repotest.New(t, repo.InitOptions{PackSize: 64 << 10})
	srcA := filepath.Join(t.TempDir(), "a")
	repotest.WriteFile(t, filepath.Join(srcA, "victim"), repotest.RandomBytes(21, 500<<10), 0o644)
	repotest.WriteFile(t, filepath.Join(srcA, "fine"), []byte("this file survives"), 0o644)
	srcB := filepath.Join(t.TempDir(), "b")
	repotest.WriteFile(t, filepath.Join(srcB, "other"), repotest.RandomBytes(22, 400<<10), 0o644)
	snA := backuptest.Backup(t, tr.Repository, backup.BackupOptions{Paths: []string{srcA}})
	snB := backuptest.Backup(t, tr.Repository, backup.BackupOptions{Paths: []string{srcB}})
	wantB := repotest.DigestTree(t, srcB)

	n := tr.NodeAt(t, snA, "a/victim")
	locs, err := tr.Locate("", n.Content[:1])
	if err != nil {
		t.Fatal(err)
	}
	lost := locs[n.Content[0]].Pack
	// Which files need the lost pack depends on how the packer grouped the
	// chunks; the victim always does.
	var wantLost []string
	for _, rel := range []string{"a/fine", "a/victim"} {
		fn := tr.NodeAt(t, snA, rel)
		fl, err := tr.Locate("", fn.Content)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range fl {
			if l.Pack == lost {
				wantLost = append(wantLost, rel)
				break
			}
		}
	}
	if err := os.Remove(filepath.Join(tr.Dir, filepath.FromSlash(repo.PackName(lost)))); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(tr.Cache); err != nil { // the bbolt index
		t.Fatal(err)
	}

	r, err := repo.Open(ctx, tr.Backend, repo.Options{Password: repotest.Password, CacheDir: tr.Cache})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	rep, err := Check(ctx, r, CheckOptions{Repair: true})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Repair == nil || rep.Repair.IndexWritten == 0 || rep.Repair.IndexRemoved == 0 || len(rep.Repair.Unreadable) != 0 {
		t.Fatalf("repair report %+v", rep.Repair)
	}
	if len(rep.Damaged) != 1 || rep.Damaged[0].Snapshot != snA.ID.String() || !slices.Equal(rep.Damaged[0].LostFiles, wantLost) ||
		rep.Damaged[0].IntactFiles != 2-len(wantLost) || rep.Damaged[0].File == "" || rep.Damaged[0].LostBytes < 500<<10 {
		t.Fatalf("damaged %+v", rep.Damaged)
	}
	if !slices.Equal(rep.Repair.Marked, []string{snA.ID.String()}) {
		t.Errorf("marked %v", rep.Repair.Marked)
	}
	// Everything else is recovered: B restores byte for byte, and A's
	// damage is refused loudly, never restored wrong.
	sb, err := r.FindSnapshot(ctx, snB.ID.String())
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "rb")
	if _, err := restore.Restore(ctx, r, sb, dst, restore.RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	repotest.CompareTrees(t, wantB, repotest.DigestTree(t, filepath.Join(dst, "b")))
	sa, err := r.FindSnapshot(ctx, snA.ID.String())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := restore.Restore(ctx, r, sa, filepath.Join(t.TempDir(), "ra"), restore.RestoreOptions{}); err == nil {
		t.Fatal("restored a snapshot whose pack is gone")
	}
	// A second check knows the damage (warning) and finds nothing new; a
	// fresh host opens the repository with the rewritten index files.
	rep, err = Check(ctx, r, CheckOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Errors() != 0 || len(rep.Damaged) != 1 || rep.Damaged[0].File == "" {
		t.Fatalf("check after repair: %+v", rep.Findings)
	}
	marks, err := DamagedSnapshots(ctx, r)
	if err != nil || len(marks) != 1 || !slices.Equal(marks[snA.ID.String()].LostFiles, wantLost) {
		t.Fatalf("markers %+v, %v", marks, err)
	}
	r2, err := repo.Open(ctx, tr.Backend, repo.Options{Password: repotest.Password, CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	verifytest.WantPass(t, verifytest.IDs(t, r2, verify.L2, snB.ID)...)
	verifytest.WantFinding(t, verifytest.IDs(t, r2, verify.L1, snA.ID)[0], verify.L1, "a/victim")
}

// A damaged index file does not stop Open, even on a host with an empty
// cache (its packs are merely unknown); check reports it and --repair
// replaces it.
func TestCheckRepairReplacesDamagedIndexFile(t *testing.T) {
	ctx := context.Background()
	fx := backuptest.NewSpaceFixture(t, 0)
	tr := fx.Repo
	ixs := repotest.RepoFiles(t, tr.Dir, repo.DirIndex)
	p := filepath.Join(tr.Dir, ixs[0])
	b, _ := os.ReadFile(p)
	b[len(b)/2] ^= 0x40
	os.Chmod(p, 0o644)
	os.WriteFile(p, b, 0o644)
	cache := t.TempDir()
	r, err := repo.Open(ctx, tr.Backend, repo.Options{Password: repotest.Password, CacheDir: cache, Logger: repotest.QuietLogger()})
	if err != nil {
		t.Fatalf("open with a damaged index file: %v", err)
	}
	rep, err := Check(ctx, r, CheckOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Errors() == 0 || !strings.Contains(rep.Findings[0].Message, "content does not match its name") {
		t.Fatalf("findings %+v", rep.Findings)
	}
	if rep, err = Check(ctx, r, CheckOptions{Repair: true}); err != nil {
		t.Fatal(err)
	}
	if len(rep.Damaged) != 0 {
		t.Fatalf("repair marked intact snapshots: %+v", rep.Damaged)
	}
	r2, err := repo.Open(ctx, tr.Backend, repo.Options{Password: repotest.Password, CacheDir: t.TempDir()})
	if err != nil {
		t.Fatalf("open after repair: %v", err)
	}
	verifytest.WantPass(t, verifytest.IDs(t, r2, verify.L3, fx.Space.ID, fx.Paths.ID)...)
	if rep, err = Check(ctx, r2, CheckOptions{ReadData: true}); err != nil || len(rep.Findings) != 0 {
		t.Fatalf("check after repair: %+v, %v", rep, err)
	}
}

func TestCheckReportsVanishedSnapshotAndStaleLock(t *testing.T) {
	ctx := context.Background()
	fx := backuptest.NewSpaceFixture(t, 0)
	tr := fx.Repo
	for _, sn := range []*repo.Snapshot{fx.Space, fx.Paths} {
		if _, err := tr.AppendAudit(ctx, repo.AuditRecord{Command: "backup", Snapshot: sn.ID.String()}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := tr.AppendAudit(ctx, repo.AuditRecord{Command: "prune", Snapshot: fx.Space.ID.String()}); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(tr.Dir, filepath.FromSlash(repo.FileName(repo.DirSnapshots, fx.Space.ID))))
	os.Remove(filepath.Join(tr.Dir, filepath.FromSlash(repo.FileName(repo.DirSnapshots, fx.Paths.ID))))
	writeTestLock(t, tr, lockInfo{Version: 1, Host: "elsewhere", PID: 1, Time: time.Now().Add(-time.Hour)}, time.Hour) // stale by the storage's clock
	rep, err := Check(ctx, tr.Repository, CheckOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var vanished, stale int
	for _, f := range rep.Findings {
		if strings.Contains(f.Message, "its manifest is gone and no prune, forget or tag removed it") {
			vanished++
			if f.What != "snapshot "+fx.Paths.ShortID() || f.Severity != SevError {
				t.Errorf("vanished: %+v", f)
			}
		}
		if strings.Contains(f.Message, "stale") && f.Severity == SevWarning {
			stale++
		}
	}
	if vanished != 1 || stale != 1 {
		t.Fatalf("vanished %d, stale %d in %+v", vanished, stale, rep.Findings)
	}
}
