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
	Packs     int      `json:"packs"`
	Blobs     int      `json:"blobs"`
	Snapshots int      `json:"snapshots"`
	Damaged   []string `json:"damaged"` // packs whose header could not be read
}

// RebuildIndex recreates the local index from the pack headers themselves
// (not from the repository's index files, which may be the thing that is
// missing) and from the snapshot manifests.
func (r *Repository) RebuildIndex(ctx context.Context) (*RebuildResult, error) {
	if err := r.ix.Reset(); err != nil {
		return nil, fmt.Errorf("local index %s: %w", r.ix.Path(), err)
	}
	if err := r.ix.Bind(r.cfg.ID); err != nil {
		return nil, err
	}
	r.forgetLocations()
	type pk struct {
		id   [32]byte
		size int64
	}
	var packs []pk
	err := r.be.List(ctx, dirData, func(name string, size int64) error {
		packs = append(packs, pk{nameHash(name), size})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list packs: %w", err)
	}
	res := &RebuildResult{}
	var mu sync.Mutex
	var infos []index.PackInfo
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for _, p := range packs {
		g.Go(func() error {
			pi, err := r.readPackHeader(gctx, p.id, p.size)
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
			res.Blobs += len(pi.Blobs)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	res.Packs = len(infos)
	if err := r.ix.AddFile("rebuild@"+time.Now().UTC().Format(time.RFC3339Nano), infos); err != nil {
		return nil, err
	}
	// The repository's index files describe the same packs; mark them merged.
	err = r.be.List(ctx, dirIndex, func(name string, size int64) error {
		return r.ix.AddFile(name, nil)
	})
	if err != nil {
		return nil, fmt.Errorf("list index files: %w", err)
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
