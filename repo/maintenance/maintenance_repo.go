package maintenance

import (
	"context"
	"time"

	"memento/chunk"
	"memento/index"
	"memento/repo"
	"memento/repo/verify"
)

// Repository is the slice of the storage core maintenance needs (a
// *repo.Repository satisfies it). It embeds verify.Repository, which check
// hands to verify.NewVerifier for its L1 walk and which carries what the
// walarchive functions it calls need (the WAL archives it checks and
// prunes). Of its own: the snapshot IDs and references it resolves (forget),
// the audit log it appends to and reads (forget, check), the locks it lists
// (check, a prune refused), the index files and pack headers it reads and the
// index it writes, rebuilds, resets and re-syncs (prune, check --repair),
// the cached locations it drops after a prune, and the manifests
// it writes (tag).
type Repository interface {
	verify.Repository
	ListSnapshotIDs(ctx context.Context) ([]chunk.ID, error)
	FindSnapshot(ctx context.Context, ref string) (*repo.Snapshot, error)
	AppendAudit(ctx context.Context, rec repo.AuditRecord) (string, error)
	AuditLog(ctx context.Context, since time.Time) ([]repo.AuditRecord, []error, error)
	Locks(ctx context.Context) ([]repo.LockStatus, error)
	LoadIndexFiles(ctx context.Context, names []string, tolerant bool) (files []index.File, damaged []string, err error)
	ReadPackHeader(ctx context.Context, id [32]byte, size int64) (index.PackInfo, error)
	WriteIndexFiles(ctx context.Context, infos []index.PackInfo, done func(name string) error) error
	RebuildIndex(ctx context.Context) (*repo.RebuildResult, error)
	ResetIndex() error
	Sync(ctx context.Context) error
	ForgetLocations()
	SaveSnapshot(ctx context.Context, m *repo.Manifest) (*repo.Snapshot, error)
	LockManifests(ctx context.Context, command string) (*repo.Lock, error)
}

var _ Repository = (*repo.Repository)(nil)
