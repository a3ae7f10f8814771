package maintenance

import (
	"context"
	"log/slog"
	"time"

	"memento/chunk"
	"memento/index"
	"memento/repo"
	"memento/repo/walarchive"
)

// Each operation reads and writes the storage core through the smallest
// interface it needs (a *repo.Repository satisfies each), so that each can
// run against a small fake:
//
//   - damageRepo, DamagedSnapshots: the damage marks it lists and reads;
//   - damageMarker, the mark check and tag write: saving a file;
//   - blobStreamer, the pack reads of prune's repack and check's data read;
//   - forgetRepo, Forget: the manifest lock, the snapshots it resolves and
//     groups, the damage marks and audit log it reads, the audit record it
//     appends, the manifests it deletes and the index entries it drops;
//   - tagRepo, Retag: the manifest lock, the snapshots it resolves, the damage marks
//     it reads and rewrites, and the manifests it replaces (with an audit
//     record), deleting the old;
//   - pruneRepo, Prune: the locks it takes (shared for phase 1, exclusive
//     for phase 2) and lists, the snapshots, index
//     files and pack headers it takes inventory of, the trees it marks, the
//     WAL archive records it keeps or rewrites (walarchive.Records), the
//     packs it repacks, the index it writes and re-syncs, and the files and
//     cached locations it deletes;
//   - checkRepo, Check: the lock and the locks it lists, the files, index
//     files and pack headers it checks, the snapshots it walks at L1
//     (verify.NewVerifier), the WAL archives it surveys (walarchive.Reader),
//     the packs it reads, the damage it marks, the audit log, and the index
//     it rebuilds, resets and re-syncs (repair).
type (
	damageRepo interface {
		Backend() repo.Backend
		LoadFile(ctx context.Context, name string, kind string, v any) error
		Logger() *slog.Logger
	}
	damageMarker interface {
		SaveFile(ctx context.Context, dir string, kind string, v any) ([32]byte, error)
	}
	// deltaReader reads the bases of delta blobs (format 4) from their frames.
	deltaReader interface {
		RefTargets(ctx context.Context, space string, ids []chunk.ID, locs []index.Location) ([]chunk.ID, []error)
	}
	blobStreamer interface {
		StreamBlobs(ctx context.Context, space string, t repo.BlobType, ids []chunk.ID, opts repo.StreamOptions, fn func(repo.StreamBlob) error) error
	}
	forgetRepo interface {
		damageRepo
		LockManifests(ctx context.Context, command string) (*repo.Lock, error)
		Snapshots(ctx context.Context) ([]*repo.Snapshot, error)
		FindSnapshot(ctx context.Context, ref string) (*repo.Snapshot, error)
		AuditLog(ctx context.Context, since time.Time) ([]repo.AuditRecord, []error, error)
		AppendAudit(ctx context.Context, rec repo.AuditRecord) (string, error)
		Index() *index.Index
		Sync(ctx context.Context) error
	}
	tagRepo interface {
		damageRepo
		damageMarker
		LockManifests(ctx context.Context, command string) (*repo.Lock, error)
		Snapshots(ctx context.Context) ([]*repo.Snapshot, error)
		FindSnapshot(ctx context.Context, ref string) (*repo.Snapshot, error)
		SaveSnapshot(ctx context.Context, m *repo.Manifest) (*repo.Snapshot, error)
		AppendAudit(ctx context.Context, rec repo.AuditRecord) (string, error)
		Index() *index.Index
	}
	pruneRepo interface {
		damageRepo
		damageMarker
		blobStreamer
		walarchive.Records
		deltaReader
		Lock(ctx context.Context, exclusive bool, command string) (*repo.Lock, error)
		LockPrune(ctx context.Context, command string) (*repo.Lock, error)
		LockExclusiveOver(ctx context.Context, command string, held ...*repo.Lock) (*repo.Lock, error)
		Locks(ctx context.Context) ([]repo.LockStatus, error)
		Config() repo.Config
		ChunkKey(space string) chunk.Key
		ListSnapshotIDs(ctx context.Context) ([]chunk.ID, error)
		LoadSnapshotFile(ctx context.Context, id chunk.ID) (*repo.Snapshot, error)
		LoadIndexFiles(ctx context.Context, names []string, tolerant bool) (files []index.File, damaged []string, err error)
		ReadPackHeader(ctx context.Context, id [32]byte, size int64) (index.PackInfo, error)
		NewPacker(ctx context.Context, space string) *repo.Packer
		WriteIndexFiles(ctx context.Context, infos []index.PackInfo, done func(name string) error) error
		Index() *index.Index
		ResetIndex() error
		Sync(ctx context.Context) error
		ForgetLocations()
	}
	checkRepo interface {
		damageRepo
		damageMarker
		blobStreamer
		walarchive.Reader
		deltaReader
		Lock(ctx context.Context, exclusive bool, command string) (*repo.Lock, error)
		Locks(ctx context.Context) ([]repo.LockStatus, error)
		AuditLog(ctx context.Context, since time.Time) ([]repo.AuditRecord, []error, error)
		ListSnapshotIDs(ctx context.Context) ([]chunk.ID, error)
		LoadSnapshotFile(ctx context.Context, id chunk.ID) (*repo.Snapshot, error)
		LoadTree(ctx context.Context, space string, id chunk.ID) (*repo.Tree, error)
		ReadPackHeader(ctx context.Context, id [32]byte, size int64) (index.PackInfo, error)
		WriteIndexFiles(ctx context.Context, infos []index.PackInfo, done func(name string) error) error
		RebuildIndex(ctx context.Context) (*repo.RebuildResult, error)
		ResetIndex() error
		Sync(ctx context.Context) error
	}
)

// Repository is everything the maintenance operations need together (a
// *repo.Repository satisfies it); each operation takes only its own slice
// (above).
type Repository interface {
	forgetRepo
	tagRepo
	pruneRepo
	checkRepo
}

var _ Repository = (*repo.Repository)(nil)
