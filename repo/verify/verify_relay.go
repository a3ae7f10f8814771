package verify

import (
	"context"
	"sync"

	"memento/chunk"
)

// L2 of several snapshots (`verify --all --latest --level L2`, one per
// space) is a relay: each snapshot is verified exactly as alone, with its
// own verdict, but the next one does not wait for it to end. Snapshot k+1
// walks its trees (L1) while snapshot k's packs stream, and starts reading
// its own packs once every read of snapshot k is under way (what is left of
// k's stream is at most the read-ahead bound): its reads fill the disk while
// the cores open k's last runs and hash k's last files, and its first runs
// are ready when k's are done. Verified one after the other, each snapshot
// began with the disk alone busy (its first runs read, the cores idle) and
// ended with the disk idle (its last runs opened). At most two streams run
// at once (l2Streams), so memory stays within twice one stream's bounds.
//
// Nothing checked changes: each snapshot's verdict holds the same findings,
// in the same order, as when verified alone; the verdicts come back in the
// order asked for.

// l2Streams bounds the snapshots whose packs stream at once.
const l2Streams = 2

// relay is one snapshot's place in the relay: when it may stream, and the
// batons it hands to the next one. A nil relay waits for nothing.
type relay struct {
	stream  <-chan struct{} // closed when this snapshot may stream
	walked  func()          // lets the next snapshot walk its trees
	handoff func()          // lets the next snapshot stream (and walk)
	slots   chan struct{}   // l2Streams tokens, shared by the relay
	held    bool
}

// startStream lets the next snapshot walk its trees and waits until this
// one may read its packs.
func (r *relay) startStream(ctx context.Context) error {
	if r == nil {
		return nil
	}
	r.walked()
	select {
	case <-r.stream:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case r.slots <- struct{}{}:
		r.held = true
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// passOn lets the next snapshot start streaming: every read of this one's
// stream is under way.
func (r *relay) passOn() {
	if r != nil {
		r.handoff()
	}
}

// streamed says the snapshot's stream ended and frees its slot.
func (r *relay) streamed() {
	if r == nil {
		return
	}
	r.handoff()
	if r.held {
		r.held = false
		<-r.slots
	}
}

// verifyRelay verifies ids at L2 as a relay (above); see VerifySnapshots.
// As when they are verified one after the other, the first error (not a
// finding: being unable to verify) ends it, and the verdicts of the
// snapshots before it come back with it; the snapshots after it are
// cancelled.
func (v *Verifier) verifyRelay(ctx context.Context, r Repository, ids []chunk.ID) ([]*Verdict, error) {
	n := len(ids)
	walk := make([]chan struct{}, n+1)
	stream := make([]chan struct{}, n+1)
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
	close(stream[0])
	slots := make(chan struct{}, l2Streams)
	vds := make([]*Verdict, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, id := range ids {
		walked := sync.OnceFunc(func() { close(walk[i+1]) })
		handoff := sync.OnceFunc(func() { walked(); close(stream[i+1]) })
		rl := &relay{stream: stream[i], walked: walked, handoff: handoff, slots: slots}
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
