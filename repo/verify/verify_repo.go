package verify

import (
	"context"

	"memento/chunk"
	"memento/repo"
	"memento/repo/restore"
	"memento/repo/walarchive"
)

// Repository is the slice of the storage core verification needs (a
// *repo.Repository satisfies it). Of its own: the shared lock it runs
// under, the backend to list the packs that exist and the local index to
// compare their sizes with (L1), the snapshot files and trees it walks (L1),
// and the one blob read path, without fallback, that reads every blob (L2)
// and archived WAL segment (L3). It embeds what it hands on: the WAL archive
// records it loads (walarchive.LoadWALArchive, L3) and the restore it runs
// (restore.Restore, L4).
type Repository interface {
	restore.Repository
	walarchive.Repository
	Lock(ctx context.Context, exclusive bool, command string) (*repo.Lock, error)
	LoadSnapshotFile(ctx context.Context, id chunk.ID) (*repo.Snapshot, error)
}

var _ Repository = (*repo.Repository)(nil)
