package restore_test

import (
	"context"
	"errors"
	"os"
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

// The restore halves of repo's corruption tests (repo/corrupt_test.go keeps
// what the storage core itself reports): damaged data is refused, naming
// where, and nothing is written.

// corruptFixture is a repository with one snapshot of src/{victim,other}.
type corruptFixture struct {
	tr     *repotest.Repo
	sn     *repo.Snapshot
	victim chunk.ID // first chunk of src/victim
	pack   string   // path of the pack holding it
	loc    struct{ off, length int64 }
}

func newCorruptFixture(t *testing.T, insecure bool) *corruptFixture {
	t.Helper()
	tr := repotest.New(t, repo.InitOptions{Insecure: insecure})
	src := filepath.Join(t.TempDir(), "src")
	repotest.WriteFile(t, filepath.Join(src, "victim"), repotest.RandomBytes(5, 1<<20), 0o644)
	repotest.WriteFile(t, filepath.Join(src, "other"), []byte("unharmed"), 0o644)
	sn := backuptest.Backup(t, tr.Repository, backup.BackupOptions{Paths: []string{src}})
	n := tr.NodeAt(t, sn, "src/victim")
	locs, err := tr.Locate("", n.Content[:1])
	if err != nil {
		t.Fatal(err)
	}
	loc := locs[n.Content[0]]
	fx := &corruptFixture{tr: tr, sn: sn, victim: n.Content[0], pack: filepath.Join(tr.Dir, filepath.FromSlash(repo.PackName(loc.Pack)))}
	fx.loc.off, fx.loc.length = int64(loc.Offset), int64(loc.Length)
	return fx
}

// flipByte inverts one byte of a repository file in place.
func flipByte(t *testing.T, p string, off int64) {
	t.Helper()
	chmod(t, p, 0o600)
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x55
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// wantRestoreRefused restores sn and requires a CorruptError mentioning every
// string in want, and that neither the target nor a temporary was left behind.
func wantRestoreRefused(t *testing.T, r *repo.Repository, sn *repo.Snapshot, want ...string) error {
	t.Helper()
	parent := t.TempDir()
	target := filepath.Join(parent, "target")
	_, err := restore.Restore(context.Background(), r, sn, target, restore.RestoreOptions{})
	if err == nil {
		t.Fatal("restore of damaged data succeeded")
	}
	var ce *repo.CorruptError
	if !errors.As(err, &ce) || !errors.Is(err, repo.ErrCorrupt) {
		t.Fatalf("restore error is not a CorruptError: %v", err)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("restore error %q does not mention %q", err, w)
		}
	}
	if _, serr := os.Lstat(target); !errors.Is(serr, os.ErrNotExist) {
		t.Errorf("restore left the target behind: %v", serr)
	}
	repotest.NoTempLeft(t, parent)
	return err
}

// TestRestoreRefusesFlippedByteInPack (the restore half of repo's
// TestFlippedByteInPack): one flipped bit in a data blob makes Restore
// fail, naming the pack, the file and the snapshot, and nothing is written.
func TestRestoreRefusesFlippedByteInPack(t *testing.T) {
	for _, mode := range []struct {
		name     string
		insecure bool
	}{{"encrypted", false}, {"insecure", true}} {
		t.Run(mode.name, func(t *testing.T) {
			fx := newCorruptFixture(t, mode.insecure)
			packShort := filepath.Base(fx.pack)[:8]
			flipByte(t, fx.pack, fx.loc.off+fx.loc.length/2)
			wantRestoreRefused(t, fx.tr.Repository, fx.sn, "pack "+packShort, "file src/victim", "snapshot "+fx.sn.ShortID())
		})
	}
}

// TestRestoreRefusesTruncatedPack (the restore half of repo's
// TestTruncatedPack): a pack cut short is reported as corruption by restore,
// naming the pack.
func TestRestoreRefusesTruncatedPack(t *testing.T) {
	fx := newCorruptFixture(t, false)
	fi := lstat(t, fx.pack)
	chmod(t, fx.pack, 0o600)
	if err := os.Truncate(fx.pack, fi.Size()/2); err != nil {
		t.Fatal(err)
	}
	packShort := filepath.Base(fx.pack)[:8]
	// Which blob of victim is the first beyond the cut depends on the layout;
	// the error must name the pack and the file either way.
	wantRestoreRefused(t, fx.tr.Repository, fx.sn, "pack "+packShort)
}
