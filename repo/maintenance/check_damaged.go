package maintenance

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"memento/repo"
)

// A snapshot whose data is really gone is not deleted by `check --repair`:
// it is marked, with an immutable file damaged/<hash> (saveFile, kind
// "damaged") naming the snapshot and listing what cannot be restored. The
// manifest stays, so what is left of it can still be inspected, and removing
// it is the operator's decision (forget/prune). Later checks report a marked
// snapshot as a known, warning-level problem.
const (
	dirDamaged  = "damaged"
	kindDamaged = "damaged"
)

// DamageRecord says which snapshot is damaged, why, and what is lost.
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
	IntactFiles   int       `json:"intact_files"` // -1 when a lost tree hides how many files there were
	LostFiles     []string  `json:"lost_files"`   // files, and directories whose tree is gone (ending in "/ (...)")
	LostDirs      int       `json:"lost_dirs"`
	LostBytes     uint64    `json:"lost_bytes"`
	File          string    `json:"file,omitempty"` // where the marker is stored
}

// maxLostFiles bounds the list kept in a marker (the count is always exact).
const maxLostFiles = 10000

func markDamaged(ctx context.Context, r damageMarker, d *DamageRecord) (string, error) {
	d.Version, d.Time = 1, time.Now().UTC()
	d.Host, _ = os.Hostname()
	rec := *d
	if len(rec.LostFiles) > maxLostFiles {
		rec.LostFiles = append(rec.LostFiles[:maxLostFiles:maxLostFiles], fmt.Sprintf("... and %d more", len(rec.LostFiles)-maxLostFiles))
	}
	rec.File = ""
	id, err := r.SaveFile(ctx, dirDamaged, kindDamaged, rec)
	if err != nil {
		return "", err
	}
	return repo.FileName(dirDamaged, id), nil
}

// DamagedSnapshots returns the damage markers by snapshot ID (the oldest
// marker of each snapshot).
func DamagedSnapshots(ctx context.Context, r damageRepo) (map[string]DamageRecord, error) {
	out := map[string]DamageRecord{}
	err := r.Backend().List(ctx, dirDamaged, func(name string, size int64) error {
		var d DamageRecord
		if err := r.LoadFile(ctx, name, kindDamaged, &d); err != nil {
			if errors.Is(err, repo.ErrCorrupt) || errors.Is(err, fs.ErrNotExist) {
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
