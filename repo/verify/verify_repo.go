package verify

import (
	"context"

	"memento/chunk"
	"memento/index"
	"memento/repo"
	"memento/repo/restore"
	"memento/repo/walarchive"
)

// Each level reads the storage core through the smallest interface it
// needs, so that each can run against a small fake:
//
//   - manifestRepo, L1 (NewVerifier, Manifest): the backend to list the packs
//     that exist, the local index to locate chunks and compare pack sizes
//     with, and the trees it walks;
//   - blobStreamer, L2 and the reading half of L3: the one blob read path,
//     without fallback, that reads every chunk;
//   - walRepo, the archived WAL that extends a snapshot (L2 and up): its
//     timeline's records (walarchive.Records), the index that locates its
//     segments' chunks, their read, and the stat of a pack written since;
//   - restoreFunc, L4: a snapshot restore (restore.Restore bound to the
//     repository, as restic's fileRestorer is handed its loader).
type (
	manifestRepo interface {
		Backend() repo.Backend
		Index() *index.Index
		LoadTree(ctx context.Context, space string, id chunk.ID) (*repo.Tree, error)
	}
	blobStreamer interface {
		StreamBlobs(ctx context.Context, space string, t repo.BlobType, ids []chunk.ID, opts repo.StreamOptions, fn func(repo.StreamBlob) error) error
	}
	walRepo interface {
		walarchive.Records
		blobStreamer
		Index() *index.Index
	}
	restoreFunc func(ctx context.Context, sn *repo.Snapshot, target string, opts restore.RestoreOptions) (*restore.RestoreResult, error)
)

// Repository is what VerifySnapshots needs to run every level (a
// *repo.Repository satisfies it): the shared lock it runs under, each
// snapshot's file read again and its signature checked, what L1-L3 and the
// WAL archive read (above), and the snapshot restore L4 runs
// (restore.Repository).
type Repository interface {
	manifestRepo
	walRepo
	restore.Repository
	Lock(ctx context.Context, exclusive bool, command string) (*repo.Lock, error)
	LoadSnapshotFile(ctx context.Context, id chunk.ID) (*repo.Snapshot, error)
}

var _ Repository = (*repo.Repository)(nil)
