package repo

// Bridges of the restore/pitr split (issue 13): what stays in package repo
// (the files of other features) still needs from the files that moved to
// repo/restore and repo/pitr. The integrator replaces them with the real
// packages once those files have moved too.

import (
	"context"
	"fmt"
	"os"

	"memento/chunk"
)

// spaceSubdirs are the entries of an Engram space directory that must be
// directories when present (docs/engram-format.md). A copy of
// restore.spaceSubdirs for backup.go and engram_stage.go.
var spaceSubdirs = []string{"cold", "hot", "wal", "warm"}

// displayRel is a copy of restore's, for verify_manifest.go.
func displayRel(rel string) string {
	if rel == "" {
		return "/"
	}
	return rel
}

// syncPath fsyncs the file or directory p (for a directory: the names
// created, renamed or removed in it). A copy of restore's, for
// wal_compact.go.
func syncPath(p string) error {
	f, err := os.Open(p)
	if err == nil {
		err = f.Sync()
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		return fmt.Errorf("sync %s to disk: %w", p, err)
	}
	return nil
}

// RestoreBridgeResult is what RestoreBridge reports of a restore (the
// fields of restore.RestoreResult that verify_recovery.go reads).
type RestoreBridgeResult struct {
	Files, Dirs, Bytes uint64
	Seconds            float64
}

// RestoreBridge is restore.Restore, for verify_recovery.go and the tests of
// package repo, which cannot import repo/restore (it imports repo). Package
// restore sets it when it is initialised; a program that restores through
// it imports repo/restore (repo's tests do so in bridge_restore_test.go).
var RestoreBridge func(ctx context.Context, r *Repository, sn *Snapshot, target string, prog *Progress) (*RestoreBridgeResult, error)

// WALDamageBridge is walDamage (wal_health.go), for pitr.
func (r *Repository) WALDamageBridge(space string, arch *WALArchive, packExists func([32]byte) bool, bad map[chunk.ID]string) ([]WALDamage, error) {
	return r.walDamage(space, arch, packExists, bad)
}

// DropDamagedBridge is dropDamaged (wal_health.go), for pitr.
func (w *WALArchive) DropDamagedBridge(dmg []WALDamage) { w.dropDamaged(dmg) }

// RunMaxGapBridge is runMaxGap (pack_scan.go), for restore's TestPlanFetch.
const RunMaxGapBridge = runMaxGap
