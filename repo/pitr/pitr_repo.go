package pitr

import (
	"context"

	"memento/chunk"
	"memento/repo"
)

// Repository is the slice of the storage core pitr's tree walks need (a
// *repo.Repository satisfies it): the snapshots, to tell whether a space has
// an Engram snapshot, and the trees, to find a space snapshot's space
// directory and its wal/ (SpaceTree). The Planner's methods (Plan,
// PITRRanges) still take a *repo.Repository: they hand it to the FetchFunc,
// whose function type restore.FetchOrdered matches exactly, so it cannot be
// narrowed without changing FetchFunc's signature and its callers.
type Repository interface {
	Snapshots(ctx context.Context) ([]*repo.Snapshot, error)
	LoadTree(ctx context.Context, space string, id chunk.ID) (*repo.Tree, error)
}

var _ Repository = (*repo.Repository)(nil)
