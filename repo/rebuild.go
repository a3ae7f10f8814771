package repo

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"memento/index"
)

// RebuildResult reports what `index rebuild` found.
type RebuildResult struct {
	Packs       int      `json:"packs"`
	FromHeaders int      `json:"from_headers"` // packs no index file described, read from their own headers
	Blobs       int      `json:"blobs"`
	Snapshots   int      `json:"snapshots"`
	Damaged     []string `json:"damaged"` // packs whose header could not be read
}

// RebuildIndex recreates the local index from the pack headers themselves
// (not from the repository's index files, which may be the thing that is
// missing) and from the snapshot manifests.
func (r *Repository) RebuildIndex(ctx context.Context) (*RebuildResult, error) {
	ix, err := index.Recreate(r.ix.Path())
	if err != nil {
		return nil, fmt.Errorf("local index %s: %w", r.ix.Path(), err)
	}
	if err := ix.Bind(r.cfg.ID); err != nil {
		return nil, err
	}
	r.ix = ix
	r.ForgetLocations()
	res := &RebuildResult{}

	// First the repository's index files that still read correctly...
	var names []string
	if err := r.be.List(ctx, DirIndex, func(name string, size int64) error {
		names = append(names, name)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("list index files: %w", err)
	}
	files, damaged, err := r.LoadIndexFiles(ctx, names, true)
	if err != nil {
		return nil, err
	}
	res.Damaged = append(res.Damaged, damaged...)
	if err := r.ix.AddFiles(files); err != nil {
		return nil, err
	}
	covered := map[[32]byte]bool{}
	for _, f := range files {
		for _, p := range f.Packs {
			covered[p.ID] = true
		}
	}
	// ...then every pack no index file describes, from its own header.
	type pk struct {
		id   [32]byte
		size int64
	}
	var packs []pk
	err = r.be.List(ctx, DirData, func(name string, size int64) error {
		id := NameHash(name)
		if !covered[id] {
			packs = append(packs, pk{id, size})
		}
		res.Packs++
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list packs: %w", err)
	}
	var mu sync.Mutex
	var infos []index.PackInfo
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(packHeaderReads)
	for _, p := range packs {
		g.Go(func() error {
			pi, err := r.ReadPackHeader(gctx, p.id, p.size)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if errors.Is(err, ErrCorrupt) || errors.Is(err, ErrFormat) {
					res.Damaged = append(res.Damaged, err.Error())
					r.log.Warn("pack skipped", "err", err)
					return nil
				}
				return err
			}
			infos = append(infos, pi)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	res.FromHeaders = len(infos)
	if len(infos) > 0 {
		if err := r.ix.AddFile("rebuild@"+time.Now().UTC().Format(time.RFC3339Nano), infos); err != nil {
			return nil, err
		}
	}
	for _, sp := range mustSpaces(r.ix) {
		n, _ := r.ix.BlobCount(sp)
		res.Blobs += n
	}
	if err := r.syncSnapshots(ctx); err != nil {
		return nil, err
	}
	sns, err := r.ix.Snapshots()
	if err != nil {
		return nil, err
	}
	res.Snapshots = len(sns)
	return res, nil
}

func mustSpaces(ix *index.Index) []string {
	s, _ := ix.Spaces()
	return s
}

// packHeaderReads is how many pack headers a rebuild reads at once. Each is
// one small ranged read at the end of a pack, so the work is bound by the
// storage's latency (an S3 round trip), not by bandwidth or CPU: eight
// overlap that latency, as many as the S3 backend's default connections
// (more would only queue for a connection), and are no burden on a local
// disk.
const packHeaderReads = 8
