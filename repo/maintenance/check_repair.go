package maintenance

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"slices"

	"memento/chunk"
	"memento/index"
	"memento/repo"
)

// RepairReport says what `check --repair` rebuilt and marked.
type RepairReport struct {
	Packs        int      `json:"packs"`         // packs indexed from their headers
	Blobs        int      `json:"blobs"`         // blobs indexed
	Unreadable   []string `json:"unreadable"`    // packs whose header could not be read (left in place)
	IndexWritten int      `json:"index_written"` // new index files
	IndexRemoved int      `json:"index_removed"` // old index files replaced
	Marked       []string `json:"marked"`        // snapshots newly marked damaged
	LeftOut      int      `json:"left_out"`      // damaged blobs left out of the index (stored again by the next backup)
}

// repairIndex rebuilds the local index from the pack headers (RebuildIndex)
// and replaces the repository's index files by new ones written from the
// same headers, so that every host, including one with an empty cache, sees
// exactly the packs that exist: a damaged index file no longer blocks
// opening the repository, a lost one no longer hides its packs, and a pack
// that is gone is no longer pointed to. Blobs that check --read-data found
// damaged (badIn, by pack) are left out of the new index files: a blob left
// with no readable copy is then unknown to every host, so the next backup
// stores its data again instead of deduplicating against the damaged copy
// (and a snapshot naming it becomes restorable again once it has). Packs are
// never deleted.
func repairIndex(ctx context.Context, r checkRepo, headers map[[32]byte]index.PackInfo, badIn map[[32]byte]map[chunk.ID]bool) (*RepairReport, error) {
	res, err := r.RebuildIndex(ctx)
	if err != nil {
		return nil, fmt.Errorf("rebuild index: %w", err)
	}
	rep := &RepairReport{Packs: res.Packs, Blobs: res.Blobs, Unreadable: res.Damaged}
	var old []string
	if err := r.Backend().List(ctx, repo.DirIndex, func(name string, size int64) error {
		old = append(old, name)
		return nil
	}); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("list index files: %w", err)
	}
	infos := make([]index.PackInfo, 0, len(headers))
	for _, pi := range headers {
		if bad := badIn[pi.ID]; len(bad) > 0 {
			pi.Blobs = slices.DeleteFunc(slices.Clone(pi.Blobs), func(b index.BlobInfo) bool { return bad[b.ID] })
			rep.LeftOut += len(bad)
		}
		infos = append(infos, pi)
	}
	written := map[string]bool{}
	if err := r.WriteIndexFiles(ctx, infos, func(name string) error {
		written[name] = true
		rep.IndexWritten++
		return nil
	}); err != nil {
		return rep, err
	}
	for _, name := range old {
		if written[name] {
			continue
		}
		if err := r.Backend().Delete(ctx, name); err != nil {
			return rep, fmt.Errorf("remove old index file %s: %w", name, err)
		}
		rep.IndexRemoved++
	}
	// The local cache was rebuilt from the old index files too (missing
	// packs, damaged blobs): load it again from exactly the files written.
	if err := r.ResetIndex(); err != nil {
		return rep, err
	}
	if err := r.Sync(ctx); err != nil {
		return rep, err
	}
	return rep, nil
}
