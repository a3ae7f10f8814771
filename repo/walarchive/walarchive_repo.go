package walarchive

import (
	"context"
	"log/slog"

	"github.com/restic/chunker"

	"memento/chunk"
	"memento/index"
	"memento/repo"
)

// Repository is the slice of the storage core the WAL archive needs (a
// *repo.Repository satisfies it): the space's chunk key, chunker polynomial
// and chunking parameters to cut segments as a backup does, the blobs already
// stored, a packer and index files for new chunks (and pack reconciliation
// after an interrupted run), the wal/ record files it saves and loads, the
// backend and index to list and locate them, and the snapshots whose WAL
// position bounds the archive (all of them, or one space's: SnapshotsOf
// decodes only those). Tests may pass a small fake.
type Repository interface {
	Backend() repo.Backend
	Index() *index.Index
	Config() repo.Config
	ChunkKey(space string) chunk.Key
	Polynomial() chunker.Pol
	KnownBlobs(ctx context.Context, space string) (map[chunk.ID]struct{}, error)
	NewPacker(ctx context.Context, space string) *repo.Packer
	SaveIndexFile(ctx context.Context, packs []index.PackInfo) (merge func() error, err error)
	ReconcilePacks(ctx context.Context) (uint64, error)
	SaveFile(ctx context.Context, dir string, kind string, v any) ([32]byte, error)
	StageFile(ctx context.Context, dir string, kind string, v any) (*repo.StagedFile, error)
	LoadFile(ctx context.Context, name string, kind string, v any) error
	Snapshots(ctx context.Context) ([]*repo.Snapshot, error)
	SnapshotsOf(ctx context.Context, space string) ([]*repo.Snapshot, error)
	Logger() *slog.Logger
}

var _ Repository = (*repo.Repository)(nil)

// Records is what reading the archive's record files takes (LoadLine,
// LoadWALArchive, LoadHistories, LoadSnapshotTimeline, SpaceLines, LineDir
// ...): the backend to list their directories, the space's chunk key that
// names them, and the one verified read of a file. A Repository is one.
type Records interface {
	Backend() repo.Backend
	ChunkKey(space string) chunk.Key
	LoadFile(ctx context.Context, name string, kind string, v any) error
}

// Reader is what surveying the archive without writing takes: its records,
// the local index that locates segment chunks (FindDamage, ArchiveSpaces)
// and the snapshots whose WAL position bounds it (ArchiveSpaces reads all of
// them, SnapshotWALEnd one space's). A Repository is one.
type Reader interface {
	Records
	Index() *index.Index
	Snapshots(ctx context.Context) ([]*repo.Snapshot, error)
	SnapshotsOf(ctx context.Context, space string) ([]*repo.Snapshot, error)
}
