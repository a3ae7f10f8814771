package repo

import (
	"context"
	"errors"
	"fmt"
	"io/fs"

	"memento/chunk"
)

// ListSnapshotIDs lists the snapshot manifests present in the repository
// itself (not the local catalog), so that verification also sees manifests
// the catalog skipped because they do not verify.
func (r *Repository) ListSnapshotIDs(ctx context.Context) ([]chunk.ID, error) {
	var out []chunk.ID
	err := r.Backend().List(ctx, DirSnapshots, func(name string, size int64) error {
		out = append(out, chunk.ID(NameHash(name)))
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("list snapshots: %w", err)
	}
	return out, nil
}
