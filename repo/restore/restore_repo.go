package restore

import (
	"context"
	"log/slog"

	"memento/chunk"
	"memento/index"
	"memento/repo"
	"memento/repo/pitr"
	"memento/repo/walarchive"
)

// Repository is the slice of the storage core a snapshot restore needs (a
// *repo.Repository satisfies it): the shared lock it runs under, the
// snapshot's trees (and the snapshots, through pitr.SpaceTree, for a space
// snapshot), where the file chunks live and the one blob read path that
// fetches them (and the frames of grouped small files, group.go), the space's chunk key (to recognise runs of zeros) and the
// logger. Fetcher binds a pitr.FetchFunc to one; RestorePointInTime takes
// the wider PITRRepository.
type Repository interface {
	pitr.Trees            // SnapshotsOf, LoadTree
	walarchive.Repository // the lines of history a restore continues (timelines)
	Lock(ctx context.Context, exclusive bool, command string) (*repo.Lock, error)
	Locate(space string, ids []chunk.ID) (map[chunk.ID]index.Location, error)
	StreamBlobs(ctx context.Context, space string, t repo.BlobType, ids []chunk.ID, opts repo.StreamOptions, fn func(repo.StreamBlob) error) error
	MemberFrames(ctx context.Context, space string, ids []chunk.ID, locs []index.Location) ([]chunk.Member, []error)
	ChunkKey(space string) chunk.Key
	Logger() *slog.Logger
}

var _ Repository = (*repo.Repository)(nil)

// PITRRepository is what a point-in-time restore needs (a *repo.Repository
// satisfies it): a snapshot restore's Repository, what the pitr.Planner
// reads to choose the snapshot and the WAL chain (pitr.Repository), and the
// snapshot's manifest read again, verified, from its file.
type PITRRepository interface {
	Repository
	pitr.Repository
	LoadSnapshotFile(ctx context.Context, id chunk.ID) (*repo.Snapshot, error)
	// Config gives the state digest kind of a snapshot that records none.
	Config() repo.Config
}

var _ PITRRepository = (*repo.Repository)(nil)
