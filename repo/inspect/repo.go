package inspect

import (
	"context"

	"memento/chunk"
	"memento/index"
	"memento/repo"
)

// Repository is the slice of the storage core inspect reads (a
// *repo.Repository satisfies it): snapshot trees, where blobs live and how
// large they are stored (Stats), and the one blob read path (Dump).
type Repository interface {
	LoadTree(ctx context.Context, space string, id chunk.ID) (*repo.Tree, error)
	Locate(space string, ids []chunk.ID) (map[chunk.ID]index.Location, error)
	StreamBlobs(ctx context.Context, space string, t repo.BlobType, ids []chunk.ID, opts repo.StreamOptions, fn func(repo.StreamBlob) error) error
	RefTargets(ctx context.Context, space string, ids []chunk.ID, locs []index.Location) ([]chunk.ID, []error)
}

var _ Repository = (*repo.Repository)(nil)
