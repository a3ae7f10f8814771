package restore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"memento/engram"
	"memento/repo/pitr"
	"memento/repo/walarchive"
)

// ErrIdentityMismatch is returned (wrapped) by a restore into a data dir
// whose database identity differs from the snapshot's, before anything is
// written: restoring another database's space there would archive it into
// the wrong history. --as-new (a fresh identity) or --force-identity (take
// the snapshot's) overrides.
var ErrIdentityMismatch = errors.New("the target data dir is another database")

// IdentityMode says what a restore into a data dir does with its identity
// (DIR/.memento/identity.json) and the space's timeline (timelines.json).
type IdentityMode int

const (
	// Scratch: the target is not a data dir archiving continues from (a
	// mount's view, a verification): nothing is recorded, .memento/ is not
	// touched.
	Scratch IdentityMode = iota
	// Continue: the target keeps (or gets) the snapshot's identity; a
	// target of another identity is refused (ErrIdentityMismatch); a
	// restore to a point before the end of the timeline's history (its
	// archive or its snapshots: pitr.View.HistoryEnd) starts a new
	// timeline.
	Continue
	// ForceIdentity is Continue where a target of another identity takes
	// the snapshot's.
	ForceIdentity
	// AsNew gives the target a fresh identity (a clone for testing must
	// never archive into the original's history); no timeline is recorded.
	AsNew
)

// checkTargetIdentity refuses, before anything is written, a Continue
// restore of identity into a data dir of another identity.
func checkTargetIdentity(dataDir, identity string, mode IdentityMode) error {
	if mode != Continue || identity == "" {
		return nil // a legacy snapshot (no identity) restores as before identities
	}
	cur, err := engram.ReadIdentity(dataDir)
	if errors.Is(err, engram.ErrNoIdentity) {
		return nil
	}
	if err != nil {
		return err
	}
	if cur.Identity != identity {
		return fmt.Errorf("%w: %s has identity %s (created on %s in %s), the snapshot is of identity %s; restore with --as-new to make it a new database, or --force-identity to make it this one",
			ErrIdentityMismatch, engram.IdentityPath(dataDir), cur.Identity, cur.Host, cur.DataDir, walarchive.IdentityLabel(identity))
	}
	return nil
}

// timelineStep is what a Continue restore records before the swap and
// undoes if the swap fails.
type timelineStep struct {
	dataDir, space string
	oldTimelines   []byte // timelines.json before (nil: absent)
	wrote          bool
	// unlock releases the data dir's timelines lock, held from the write
	// of timelines.json until the swap is done (release or undo): archive
	// runs hold it shared, so a `wal watch` left running never ships the
	// restored files before it has seen the pending fork.
	unlock func()
}

// release ends the step after the swap: the timelines lock is released.
func (st *timelineStep) release() {
	if st != nil && st.unlock != nil {
		st.unlock()
		st.unlock = nil
	}
}

// recordTimeline runs just before the staged space is swapped in: it puts
// the snapshot's identity into the data dir (when it has none, or
// ForceIdentity) and the space's timeline into timelines.json. When the
// point reached lies before end, the end of the timeline's history in the
// repository (pitr.View.HistoryEnd: its archive or its snapshots; the
// entries after the point are not the restored database's history any
// more), the entry
// carries a pending fork (engram.PendingFork): the first `wal archive`,
// `wal watch` or `backup` of the data dir records the new timeline in the
// repository (walarchive.DataDirTimeline) before it archives anything. So
// a restore into a scratch directory that is never archived records
// nothing, and one into a directory later moved into place still forks.
// The file is on disk before the swap: a crash between the two leaves the
// old space under a pending fork, whose archive then holds the parent's
// entries again (still the database's true history).
func (rs *restorer) recordTimeline(v *pitr.View, end uint64, mode IdentityMode, dataDir, target string, res *PITRResult) (*timelineStep, error) {
	if mode == Scratch || mode != AsNew && v.Line.Identity == "" {
		// Scratch, or a legacy snapshot: .memento/ is left as it is (a
		// legacy space restored over a live one is then refused by the
		// next archive as rewritten, which says how to go on).
		return nil, nil
	}
	space := v.Line.Space
	// Other spaces restored at the same time (restore --all) update the
	// same file: read and write it under its lock, which is held until
	// the swap is done (timelineStep.release), so that no archive run
	// (held shared) reads the old space under the pending fork or the
	// restored one under the old timeline.
	unlock, err := engram.LockTimelines(dataDir)
	if err != nil {
		return nil, err
	}
	st := &timelineStep{dataDir: dataDir, space: space, unlock: unlock}
	ok := false
	defer func() {
		if !ok {
			st.release()
		}
	}()
	if b, err := os.ReadFile(engram.TimelinesPath(dataDir)); err == nil {
		st.oldTimelines = b
	}
	tl, err := engram.ReadTimelines(dataDir)
	if err != nil {
		return nil, err
	}
	if mode == AsNew {
		id, err := engram.NewIdentity(dataDir)
		if err != nil {
			return nil, err
		}
		if err := engram.WriteIdentity(dataDir, id, true); err != nil {
			return nil, err
		}
		delete(tl.Spaces, space)
		res.Identity, res.Timeline = id.Identity, 1
		if err := engram.WriteTimelines(dataDir, tl); err != nil {
			return nil, err
		}
		st.wrote, ok = true, true
		return st, nil
	}
	if v.Line.Identity != "" {
		if _, err := engram.ReadIdentity(dataDir); errors.Is(err, engram.ErrNoIdentity) || mode == ForceIdentity {
			id, err := engram.NewIdentity(dataDir)
			if err != nil {
				return nil, err
			}
			id.Identity = v.Line.Identity
			if err := engram.WriteIdentity(dataDir, id, true); err != nil {
				return nil, err
			}
		} else if err != nil {
			return nil, err
		}
	}
	n := v.Line.Timeline
	res.Identity, res.Timeline = v.Line.Identity, n
	if res.Seq < end {
		tl.SetFork(space, n, &engram.PendingFork{Seq: res.Seq, TS: res.TimestampNS, Snapshot: res.Snapshot, Target: target,
			Time: time.Now().UTC().Format(time.RFC3339Nano)})
		res.Parent, res.NewTimeline = n, true
	} else {
		tl.Set(space, n)
	}
	if err := engram.WriteTimelines(dataDir, tl); err != nil {
		return nil, err
	}
	st.wrote, ok = true, true
	return st, nil
}

// undo puts the space's entry of timelines.json back as it was (the swap
// failed), keeping the other spaces' entries as they are now.
func (st *timelineStep) undo() {
	if st == nil {
		return
	}
	defer st.release() // held since recordTimeline
	if !st.wrote {
		return
	}
	tl, err := engram.ReadTimelines(st.dataDir)
	if err != nil {
		return
	}
	old := &engram.Timelines{}
	if st.oldTimelines != nil {
		if old, err = engram.ParseTimelines(st.oldTimelines); err != nil {
			return
		}
	}
	if e, ok := old.Spaces[st.space]; ok {
		if tl.Spaces == nil {
			tl.Spaces = map[string]engram.SpaceTimeline{}
		}
		tl.Spaces[st.space] = e
	} else {
		delete(tl.Spaces, st.space)
	}
	_ = engram.WriteTimelines(st.dataDir, tl)
}

// plainTimeline prepares a Continue restore of a space snapshot: the target's
// identity is checked now, and the snapshot's timeline (with a pending fork
// when the snapshot ends before that timeline's history) is recorded right
// before the swap, as a point-in-time restore does.
func (rs *restorer) plainTimeline(ctx context.Context, spec *stageSpec, dataDir string, res *RestoreResult) error {
	sn := rs.sn
	id := sn.Identity()
	if id == "" {
		id = "legacy"
	}
	v, err := pitr.Resolve(ctx, rs.r, pitr.Select{Space: sn.Space, Identity: id, Timeline: sn.Timeline()})
	if err != nil {
		return err
	}
	if err := checkTargetIdentity(dataDir, v.Line.Identity, rs.opts.Mode); err != nil {
		return err
	}
	end, err := v.HistoryEnd(ctx, rs.r)
	if err != nil {
		return err
	}
	pr := &PITRResult{Space: sn.Space, Snapshot: sn.ID.String(), Seq: sn.Engram.WALEnd.Seq, TimestampNS: sn.Engram.WALEnd.TimestampNS}
	res.Timeline = pr
	var step *timelineStep
	spec.beforeSwap = func() error {
		step, err = rs.recordTimeline(v, end, rs.opts.Mode, dataDir, "snapshot "+sn.ShortID(), pr)
		return err
	}
	spec.undo = func() { step.undo() }
	spec.afterSwap = func() { step.release() }
	return nil
}
