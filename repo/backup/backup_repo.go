package backup

import (
	"context"
	"log/slog"

	"github.com/restic/chunker"

	"memento/chunk"
	"memento/index"
	"memento/repo"
)

// Repository is the slice of the storage core a backup needs (a
// *repo.Repository satisfies it): the lock it runs under, the snapshots it
// picks a parent from and the parent's trees, the blobs already stored (to
// dedup against), the space's chunk key and chunker polynomial, a packer to
// write new packs, and the index file and signed manifest it saves at the
// end. Tests may pass a small fake.
type Repository interface {
	Lock(ctx context.Context, exclusive bool, command string) (*repo.Lock, error)
	SnapshotsOf(ctx context.Context, space string) ([]*repo.Snapshot, error)
	LoadTree(ctx context.Context, space string, id chunk.ID) (*repo.Tree, error)
	LoadTrees(ctx context.Context, space string, ids []chunk.ID) map[chunk.ID]*repo.Tree
	KnownBlobs(ctx context.Context, space string) (map[chunk.ID]struct{}, error)
	ChunkKey(space string) chunk.Key
	Polynomial() chunker.Pol
	Config() repo.Config
	NewPacker(ctx context.Context, space string) *repo.Packer
	SaveIndex(ctx context.Context, packs []index.PackInfo) error
	SaveSnapshot(ctx context.Context, m *repo.Manifest) (*repo.Snapshot, error)
	Logger() *slog.Logger
}

var _ Repository = (*repo.Repository)(nil)
