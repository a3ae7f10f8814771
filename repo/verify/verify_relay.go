package verify

import (
	"context"
	"sync"

	"memento/chunk"
	"memento/repo"
	"memento/repo/slabmem"
)

// L2 of several snapshots (`verify --all --latest --level L2`, one per
// space) is a relay: each snapshot is verified exactly as alone, with its
// own verdict, but the next one does not wait for it to end before it
// starts: snapshot k+1 loads its manifest, walks its trees, looks its
// chunks up in the index and plans its reads and its pass (L1 and L2's
// planning, serial work of one core and small reads) while snapshot k
// walks or its packs stream, and starts streaming its own packs as soon as
// k's stream has started its last runs. Two snapshots walk at once from
// the start (k+2 starts its walk when k starts streaming, so at most two
// snapshots wait walked and planned ahead of the one streaming): the first
// snapshot's walk is one core's work, and the second's then uses the
// other core, which had nothing to do before the first stream, instead of
// taking a core from that stream. The streams share one read-ahead budget
// and one set of turns to open chunks (repo.StreamShare), so two of them
// overlapping hold no more memory and use no more workers than one: the
// next one's first runs are read while the last runs of the one before
// are opened, and the cores do not wait at the hand-over (session 12; a
// trial in session 8 that let the next stream start with a budget of its
// own while the previous one delivered its last 12 MiB was slower on the
// loaded benchmark machine: two streams' buffers, two budgets of reads).
//
// Nothing checked changes: each snapshot's verdict holds the same findings,
// in the same order, as when verified alone; the verdicts come back in the
// order asked for.

// relay is one snapshot's place in the relay: when it may stream, and the
// batons it hands to the next one. A nil relay waits for nothing.
type relay struct {
	// share is the read-ahead budget and the turns to open chunks of
	// every stream of the relay: a stream starts when the one before
	// has started its last runs, and they share one bound.
	share   *repo.StreamShare
	mem     *slabmem.Mem    // the huge-page slabs of every stream of the relay (slabmem)
	stream  <-chan struct{} // closed when this snapshot may stream
	walked  func()          // lets the snapshot after the next walk its trees
	handoff func()          // lets the next snapshot stream (and the one after walk)
}

// startStream waits until this snapshot may read its packs, then lets the
// snapshot after the next walk its trees. Only then: a snapshot that
// waits for its turn holds its walk and its L2 plan, so at most two
// snapshots are walked ahead of the one streaming (however many spaces
// `--all` names), not every one.
func (r *relay) startStream(ctx context.Context) error {
	if r == nil {
		return nil
	}
	select {
	case <-r.stream:
		r.walked()
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// streamed says the snapshot's stream started its last runs, or ended:
// the next one may start its own.
func (r *relay) streamed() {
	if r != nil {
		r.handoff()
	}
}

// verifyRelay verifies ids at L2 as a relay (above); see VerifySnapshots.
// As when they are verified one after the other, the first error (not a
// finding: being unable to verify) ends it, and the verdicts of the
// snapshots before it come back with it; the snapshots after it are
// cancelled.
func (v *Verifier) verifyRelay(ctx context.Context, r Repository, ids []chunk.ID) ([]*Verdict, error) {
	n := len(ids)
	walk := make([]chan struct{}, n+2)
	stream := make([]chan struct{}, n+2)
	ctxs := make([]context.Context, n)
	cancels := make([]context.CancelFunc, n)
	for i := range walk {
		walk[i], stream[i] = make(chan struct{}), make(chan struct{})
	}
	for i := range ids {
		ctxs[i], cancels[i] = context.WithCancel(ctx)
		defer cancels[i]()
	}
	close(walk[0])
	close(walk[1])
	close(stream[0])
	vds := make([]*Verdict, n)
	errs := make([]error, n)
	share := repo.NewStreamShare(l2Ahead, v.opts.Workers)
	// The streams' runs and plaintexts come from one set of slabs, as they
	// share one budget, unmapped once every snapshot's pass has ended.
	mem := slabmem.NewLimit(l2Mem)
	defer mem.Release()
	var wg sync.WaitGroup
	for i, id := range ids {
		walked := sync.OnceFunc(func() { close(walk[i+2]) })
		handoff := sync.OnceFunc(func() { walked(); close(stream[i+1]) })
		rl := &relay{share: share, mem: mem, stream: stream[i], walked: walked, handoff: handoff}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer handoff() // on every way out, the next one goes on
			select {
			case <-walk[i]:
			case <-ctxs[i].Done():
				errs[i] = ctxs[i].Err()
				return
			}
			vds[i], errs[i] = v.verify(ctxs[i], r, id, rl)
			if errs[i] != nil {
				for _, c := range cancels[i+1:] {
					c()
				}
			}
		}()
	}
	wg.Wait()
	out := make([]*Verdict, 0, n)
	for i := range ids {
		if errs[i] != nil {
			return out, errs[i]
		}
		out = append(out, vds[i])
	}
	return out, nil
}
