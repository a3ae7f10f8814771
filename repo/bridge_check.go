package repo

// Bridges for repo/maintenance's check: exported thin wrappers around private
// symbols of the verify and WAL archive files, until those move to their own
// packages (the integrator replaces them by the real exports).

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"memento/chunk"
)

// VerifierBridge wraps verify's private verifier.
type VerifierBridge struct{ v *verifier }

// NewVerifierBridge wraps newVerifier.
func (r *Repository) NewVerifierBridge(ctx context.Context, opts VerifyOptions) (*VerifierBridge, error) {
	v, err := r.newVerifier(ctx, opts)
	if err != nil {
		return nil, err
	}
	return &VerifierBridge{v}, nil
}

// WalkFileBridge is verify's walkFile with exported fields.
type WalkFileBridge struct {
	Rel  string
	Node *Node
}

// SnapWalkBridge is the part of verify's snapWalk that check reads.
type SnapWalkBridge struct {
	Files   []WalkFileBridge
	Missing map[chunk.ID]bool
	Broken  map[string]bool
	BadTree bool
}

// ManifestBridge wraps (*verifier).manifest (L1 of verify).
func (b *VerifierBridge) ManifestBridge(ctx context.Context, sn *Snapshot, vd *Verdict) (*SnapWalkBridge, error) {
	w, err := b.v.manifest(ctx, sn, vd)
	if err != nil {
		return nil, err
	}
	out := &SnapWalkBridge{Missing: w.missing, Broken: w.broken, BadTree: w.badTree}
	for _, f := range w.files {
		out.Files = append(out.Files, WalkFileBridge{Rel: f.rel, Node: f.node})
	}
	return out, nil
}

// DirWALBridge is dirWAL, the WAL archive's top-level directory.
const DirWALBridge = dirWAL

// WALArchiveSpacesBridge wraps walArchiveSpaces.
func (r *Repository) WALArchiveSpacesBridge(ctx context.Context) ([]string, error) {
	return r.walArchiveSpaces(ctx)
}

// WALDamageBridge wraps walDamage.
func (r *Repository) WALDamageBridge(space string, arch *WALArchive, packExists func([32]byte) bool, bad map[chunk.ID]string) ([]WALDamage, error) {
	return r.walDamage(space, arch, packExists, bad)
}

// SnapshotWALEndBridge wraps snapshotWALEnd.
func (r *Repository) SnapshotWALEndBridge(ctx context.Context, space string) (uint64, error) {
	return r.snapshotWALEnd(ctx, space)
}

// FileSeqBridge returns the archive's private fileSeq: the highest wal/ file
// number merged.
func (w *WALArchive) FileSeqBridge() uint64 { return w.fileSeq }

// Until forget.go and prune.go move to repo/maintenance too, they read the
// damage markers through this copy of maintenance's DamageRecord and
// DamagedSnapshots (check_damaged.go); the integrator deletes it and points
// them at maintenance.DamageRecord and maintenance.DamagedSnapshots(ctx, r).

// DamageRecord is a copy of maintenance.DamageRecord (bridge).
type DamageRecord struct {
	Version       int       `json:"version"`
	Time          time.Time `json:"time"`
	Host          string    `json:"host"`
	Snapshot      string    `json:"snapshot"`
	Space         string    `json:"space,omitempty"`
	Reason        string    `json:"reason"`
	MissingChunks int       `json:"missing_chunks"`
	DamagedChunks int       `json:"damaged_chunks"`
	TotalFiles    int       `json:"total_files"`
	IntactFiles   int       `json:"intact_files"`
	LostFiles     []string  `json:"lost_files"`
	LostDirs      int       `json:"lost_dirs"`
	LostBytes     uint64    `json:"lost_bytes"`
	File          string    `json:"file,omitempty"`
}

// DamagedSnapshots is a copy of maintenance.DamagedSnapshots (bridge).
func (r *Repository) DamagedSnapshots(ctx context.Context) (map[string]DamageRecord, error) {
	const dirDamaged, kindDamaged = "damaged", "damaged"
	out := map[string]DamageRecord{}
	err := r.Backend().List(ctx, dirDamaged, func(name string, size int64) error {
		var d DamageRecord
		if err := r.LoadFile(ctx, name, kindDamaged, &d); err != nil {
			if errors.Is(err, ErrCorrupt) || errors.Is(err, fs.ErrNotExist) {
				r.Logger().Warn("unreadable damage marker", "file", name, "err", err)
				return nil
			}
			return err
		}
		d.File = name
		if old, ok := out[d.Snapshot]; !ok || d.Time.Before(old.Time) {
			out[d.Snapshot] = d
		}
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("list damage markers: %w", err)
	}
	return out, nil
}

// SaveWALFileBridge wraps saveWALFile (for maintenance's check tests).
func (r *Repository) SaveWALFileBridge(ctx context.Context, w *WALArchive, host string, recs []WALSegmentRecord) error {
	return r.saveWALFile(ctx, w, host, recs)
}
