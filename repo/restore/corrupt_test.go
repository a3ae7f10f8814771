package restore_test

import (
	"os"
	"path/filepath"
	"testing"

	"memento/repo/backup/backuptest"
	"memento/repo/repotest"
	"memento/repo/restore"
)

// The restore halves of repo's corruption tests (repo/corrupt_test.go keeps
// what the storage core itself reports): damaged data is refused, naming
// where, and nothing is written.

// TestRestoreRefusesFlippedByteInPack (the restore half of repo's
// TestFlippedByteInPack): one flipped bit in a data blob makes Restore
// fail, naming the pack, the file and the snapshot, and nothing is written.
func TestRestoreRefusesFlippedByteInPack(t *testing.T) {
	for _, mode := range []struct {
		name     string
		insecure bool
	}{{"encrypted", false}, {"insecure", true}} {
		t.Run(mode.name, func(t *testing.T) {
			fx := backuptest.NewCorruptFixture(t, mode.insecure)
			packShort := filepath.Base(fx.Pack)[:8]
			repotest.FlipByte(t, fx.Pack, fx.Off+fx.Length/2)
			restore.WantRestoreRefused(t, fx.Repo.Repository, fx.Snapshot, "pack "+packShort, "file src/victim", "snapshot "+fx.Snapshot.ShortID())
		})
	}
}

// TestRestoreRefusesTruncatedPack (the restore half of repo's
// TestTruncatedPack): a pack cut short is reported as corruption by restore,
// naming the pack.
func TestRestoreRefusesTruncatedPack(t *testing.T) {
	fx := backuptest.NewCorruptFixture(t, false)
	fi := repotest.Lstat(t, fx.Pack)
	repotest.Chmod(t, fx.Pack, 0o600)
	if err := os.Truncate(fx.Pack, fi.Size()/2); err != nil {
		t.Fatal(err)
	}
	packShort := filepath.Base(fx.Pack)[:8]
	// Which blob of victim is the first beyond the cut depends on the layout;
	// the error must name the pack and the file either way.
	restore.WantRestoreRefused(t, fx.Repo.Repository, fx.Snapshot, "pack "+packShort)
}
