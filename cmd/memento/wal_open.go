package main

import (
	"context"

	"memento/chunk"
	"memento/repo"
	"memento/repo/walarchive"
)

// walRepo is the repository a WAL command archives into, under a shared
// lock; ctx is cancelled if the lock is lost. close releases everything.
type walRepo struct {
	r     *repo.Repository
	lock  *repo.Lock
	ctx   context.Context
	close func()
}

// openWAL ensures the data dir's identity (an archive is kept per line of
// history), then opens the repository and takes a shared lock named command:
// the steps 'wal archive', 'wal archive --new-timeline' and 'wal watch'
// share.
func (a *app) openWAL(ctx context.Context, dataDir, command string) (*walRepo, error) {
	if _, err := ensureIdentity(dataDir); err != nil {
		return nil, err
	}
	r, err := a.open(ctx)
	if err != nil {
		return nil, err
	}
	lock, err := r.Lock(ctx, false, command)
	if err != nil {
		r.Close()
		return nil, err
	}
	return &walRepo{r: r, lock: lock, ctx: lock.Context(), close: func() {
		lock.Unlock()
		r.Close()
	}}, nil
}

// archiver returns a WAL archiver of w's repository with its own chunking
// pipeline; the function returned closes both.
func (w *walRepo) archiver() (*walarchive.WALArchiver, func()) {
	pipe := chunk.NewPipeline(0, chunk.DefaultLevel)
	ar := walarchive.NewWALArchiver(w.r, pipe)
	return ar, func() {
		ar.Close()
		pipe.Close()
	}
}
