package restore

import (
	"context"

	"memento/repo"
)

// init sets repo.RestoreBridge (repo/bridge_restore.go), through which the
// files and tests still in package repo restore. The integrator removes both
// once they have moved above this package.
func init() {
	repo.RestoreBridge = func(ctx context.Context, r *repo.Repository, sn *repo.Snapshot, target string, prog *repo.Progress) (*repo.RestoreBridgeResult, error) {
		res, err := Restore(ctx, r, sn, target, RestoreOptions{Progress: prog})
		if err != nil {
			return nil, err
		}
		return &repo.RestoreBridgeResult{Files: res.Files, Dirs: res.Dirs, Bytes: res.Bytes, Seconds: res.Seconds}, nil
	}
}
