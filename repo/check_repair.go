package repo

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"sort"

	"memento/index"
)

// RepairReport says what `check --repair` rebuilt and marked.
type RepairReport struct {
	Packs        int      `json:"packs"`         // packs indexed from their headers
	Blobs        int      `json:"blobs"`         // blobs indexed
	Unreadable   []string `json:"unreadable"`    // packs whose header could not be read (left in place)
	IndexWritten int      `json:"index_written"` // new index files
	IndexRemoved int      `json:"index_removed"` // old index files replaced
	Marked       []string `json:"marked"`        // snapshots newly marked damaged
}

// indexBatchBlobs bounds one repository index file (about 150 bytes of JSON
// per blob, well under maxMetadataFile).
const indexBatchBlobs = 200000

// repairIndex rebuilds the local index from the pack headers (RebuildIndex)
// and replaces the repository's index files by new ones written from the
// same headers, so that every host, including one with an empty cache, sees
// exactly the packs that exist: a damaged index file no longer blocks
// opening the repository, a lost one no longer hides its packs, and a pack
// that is gone is no longer pointed to. Packs are never deleted.
func (r *Repository) repairIndex(ctx context.Context, headers map[[32]byte]index.PackInfo) (*RepairReport, error) {
	res, err := r.RebuildIndex(ctx)
	if err != nil {
		return nil, fmt.Errorf("rebuild index: %w", err)
	}
	rep := &RepairReport{Packs: res.Packs, Blobs: res.Blobs, Unreadable: res.Damaged}
	var old []string
	if err := r.be.List(ctx, dirIndex, func(name string, size int64) error {
		old = append(old, name)
		return nil
	}); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("list index files: %w", err)
	}
	infos := make([]index.PackInfo, 0, len(headers))
	for _, pi := range headers {
		infos = append(infos, pi)
	}
	sort.Slice(infos, func(i, j int) bool { return shortHex(infos[i].ID) < shortHex(infos[j].ID) })
	written := map[string]bool{}
	for len(infos) > 0 {
		n, blobs := 0, 0
		for n < len(infos) && (n == 0 || blobs+len(infos[n].Blobs) <= indexBatchBlobs) {
			blobs += len(infos[n].Blobs)
			n++
		}
		id, err := r.saveFile(ctx, dirIndex, kindIndex, toIndexFile(infos[:n]))
		if err != nil {
			return rep, fmt.Errorf("write index file: %w", err)
		}
		name := fileName(dirIndex, id)
		written[name] = true
		if err := r.ix.AddFile(name, nil); err != nil { // its packs are in the cache already
			return rep, err
		}
		rep.IndexWritten++
		infos = infos[n:]
	}
	for _, name := range old {
		if written[name] {
			continue
		}
		if err := r.be.Delete(ctx, name); err != nil {
			return rep, fmt.Errorf("remove old index file %s: %w", name, err)
		}
		rep.IndexRemoved++
	}
	return rep, nil
}
