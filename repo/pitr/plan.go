package pitr

import (
	"context"
	"fmt"
	"memento/chunk"
	"memento/repo"
	"memento/repo/walarchive"
	"memento/walreplay"
)

// Plan picks how to reach the instant t of space: the snapshot to start
// from (planPITR) with what its WAL starts with, and the space's WAL
// archive, whose segments after the snapshot lead to t (Continuation). An
// instant outside every recoverable range is an ErrUnrecoverable error that
// lists the ranges.
//
// Plan reads the newest timeline of the only database that has the space
// (PlanTimeline chooses).
func (p *Planner) Plan(ctx context.Context, r Repository, space string, t walreplay.Target) (*Source, *walarchive.WALArchive, error) {
	src, v, err := p.PlanTimeline(ctx, r, Select{Space: space}, t)
	if err != nil {
		return nil, nil, err
	}
	return src, v.Arch, nil
}

// PlanTimeline is Plan on the timeline sel names (Resolve). A refusal
// lists the ranges of the timeline, and of the database's other timelines.
func (p *Planner) PlanTimeline(ctx context.Context, r Repository, sel Select, t walreplay.Target) (*Source, *View, error) {
	v, err := Resolve(ctx, r, sel)
	if err != nil {
		return nil, nil, err
	}
	srcs, err := p.pitrSources(ctx, r, v)
	if err != nil {
		return nil, nil, err
	}
	src, ok := planPITR(srcs, t)
	if !ok {
		err := unrecoverable(sel.Space, t, mergeRanges(srcs), hasEngramSnapshot(ctx, r, sel.Space))
		if len(v.History.Records) > 0 || v.Line.Timeline > 1 {
			err = fmt.Errorf("%w (timeline %d of identity %s%s)", err, v.Line.Timeline, walarchive.IdentityLabel(v.Line.Identity), p.otherTimelines(ctx, r, sel, v.Line.Timeline))
		}
		if v.Line.Identity != "" && sel.Identity == "" {
			if dbs, derr := walarchive.Databases(ctx, r, sel.Space); derr == nil && len(dbs) > 1 && dbs[0].Identity == "" {
				err = fmt.Errorf("%w; the history archived before the data dir had an identity is reached with --identity legacy", err)
			}
		}
		return nil, nil, err
	}
	return src, v, nil
}

// otherTimelines lists the ranges of the database's other timelines, for a
// refusal ("; timeline 1: seq a..b ...").
func (p *Planner) otherTimelines(ctx context.Context, r Repository, sel Select, except uint32) string {
	all, err := p.AllTimelines(ctx, r, sel)
	if err != nil {
		return ""
	}
	out := ""
	for _, tr := range all {
		if tr.Timeline == except {
			continue
		}
		rs := "none"
		for i, g := range tr.Ranges {
			if i == 0 {
				rs = g.String()
			} else {
				rs += ", " + g.String()
			}
		}
		out += fmt.Sprintf("; %s: %s (choose it with --timeline %d)", tr, rs, tr.Timeline)
	}
	return out
}

// Uncompact reports whether a recovery to t must replace the compacted
// segment the source's WAL starts with (Head) by the archived originals it
// was made from (Originals): when t lies before the segment's closing marker
// the states there exist only in the originals (walreplay refuses a target
// inside a compacted run).
func (s *Source) Uncompact(t walreplay.Target) bool {
	h := s.Head
	if h == nil || s.Originals == nil {
		return false
	}
	return !(t.ToSeq != nil && *t.ToSeq >= h.Last || t.AtTime != nil && *t.AtTime >= h.LastTS)
}

// Continuation returns the archived segments that continue a snapshot's
// WAL (which ends at end) up to the target: every ordinary record holding
// sequences after end, up to the first one that starts beyond the target.
func Continuation(arch *walarchive.WALArchive, end repo.WALPosition, t walreplay.Target) []*walarchive.WALSegmentRecord {
	var out []*walarchive.WALSegmentRecord
	for _, rec := range arch.Chain() {
		if rec.LastSeq <= end.Seq {
			continue
		}
		if t.ToSeq != nil && rec.FirstSeq > *t.ToSeq || t.AtTime != nil && rec.FirstTS > *t.AtTime {
			break
		}
		out = append(out, rec)
	}
	return out
}

func hasEngramSnapshot(ctx context.Context, r Trees, space string) bool {
	all, err := r.SnapshotsOf(ctx, space)
	if err != nil {
		return false
	}
	for _, sn := range all {
		if sn.Space == space && sn.Engram != nil {
			return true
		}
	}
	return false
}

// SpaceTree finds the tree of spaces/<space> in a space snapshot, the space
// directory's node and its metadata.json node.
func SpaceTree(ctx context.Context, r Trees, sn *repo.Snapshot) (chunk.ID, *repo.Node, *repo.Node, error) {
	root, err := r.LoadTree(ctx, sn.Space, sn.Root)
	if err != nil {
		return chunk.ID{}, nil, nil, fmt.Errorf("snapshot %s: %w", sn.ShortID(), err)
	}
	sp := root.Find("spaces")
	if err := NeedSpaceDir(sn, "spaces", sp); err != nil {
		return chunk.ID{}, nil, nil, err
	}
	st, err := r.LoadTree(ctx, sn.Space, *sp.Subtree)
	if err != nil {
		return chunk.ID{}, nil, nil, err
	}
	sd := st.Find(sn.Space)
	if err := NeedSpaceDir(sn, "spaces/"+sn.Space, sd); err != nil {
		return chunk.ID{}, nil, nil, err
	}
	return *sd.Subtree, sd, root.Find("metadata.json"), nil
}

// NeedSpaceDir returns the error for the node n found at rel of a space
// snapshot where a directory must be (nil: it is one).
func NeedSpaceDir(sn *repo.Snapshot, rel string, n *repo.Node) error {
	switch {
	case n == nil:
		return repo.Corruptf("snapshot "+sn.ShortID(), "no %s directory", rel)
	case n.Type == repo.NodeSymlink:
		return &repo.CorruptError{What: "snapshot " + sn.ShortID(), Err: repo.ErrUnsafePath,
			Detail: fmt.Sprintf("%s is a symlink to %q where a directory must be (a restore never follows a symlink from a snapshot)", rel, n.LinkTarget)}
	case n.Type != repo.NodeDir || n.Subtree == nil:
		return repo.Corruptf("snapshot "+sn.ShortID(), "%s is a %s where a directory must be", rel, n.Type)
	}
	return nil
}
