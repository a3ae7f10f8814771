package pitr

import (
	"context"
	"fmt"

	"memento/repo"
	"memento/repo/walarchive"
)

// Select names the history a recovery reads: a space, the database it
// belongs to (Identity; "" resolves it: the only database that has the
// space, or the only one of Host; "legacy" is the database without
// identity), and one of its timelines (0: the newest). Sequence numbers
// repeat across timelines, so a target is always read on one timeline.
type Select struct {
	Space    string
	Identity string
	Host     string
	Timeline uint32
}

// View is one timeline of a space as a recovery reads it: its history
// records, its archive composed with its ancestors' (walarchive.LoadTimeline)
// and the snapshots that are valid bases (walarchive.Bases: of the timeline,
// or of an ancestor taken before the fork point).
type View struct {
	Line    walarchive.Line
	History *walarchive.History
	Arch    *walarchive.WALArchive
	bases   *walarchive.Bases
}

// base reports whether sn is a snapshot this timeline may start from.
func (v *View) base(sn *repo.Snapshot) bool { return v.bases.Of(sn) }

// HistoryEnd is the last entry of the timeline's history that the
// repository holds: the end of its archive or the WAL end of a snapshot
// that is a base of it (View.base), whichever is later. A restore to a
// point before it starts a new timeline: the entries after that point,
// archived or only in snapshots, are not the restored database's history
// any more (a repository without a WAL archive has its history in its
// snapshots alone).
func (v *View) HistoryEnd(ctx context.Context, r interface {
	SnapshotsOf(ctx context.Context, space string) ([]*repo.Snapshot, error)
}) (uint64, error) {
	end, _ := v.Arch.End()
	all, err := r.SnapshotsOf(ctx, v.Line.Space)
	if err != nil {
		return 0, err
	}
	return max(end, v.bases.End(all).Seq), nil
}

// Resolve picks the database and timeline sel names and loads that
// timeline's view. An unknown timeline is repo.ErrNotFound; a space of
// several databases without a choice is walarchive.ErrAmbiguous.
func Resolve(ctx context.Context, r walarchive.Repository, sel Select) (*View, error) {
	id, err := walarchive.ResolveDatabase(ctx, r, sel.Space, sel.Identity, sel.Host)
	if err != nil {
		return nil, err
	}
	h, err := walarchive.LoadHistory(ctx, r, id, sel.Space)
	if err != nil {
		return nil, err
	}
	n := sel.Timeline
	if n == 0 {
		n = h.Newest()
	}
	return loadView(ctx, r, h, n)
}

func loadView(ctx context.Context, r walarchive.Repository, h *walarchive.History, n uint32) (*View, error) {
	bases, err := h.Bases(n)
	if err != nil {
		return nil, err
	}
	arch, err := walarchive.LoadTimeline(ctx, r, h, n)
	if err != nil {
		return nil, err
	}
	return &View{Line: walarchive.Line{Identity: h.Identity, Space: h.Space, Timeline: n}, History: h, Arch: arch, bases: bases}, nil
}

// TimelineRanges is what `pitr ranges` shows of one timeline.
type TimelineRanges struct {
	Identity string      `json:"identity"`
	Timeline uint32      `json:"timeline"`
	Parent   uint32      `json:"parent,omitempty"`
	ForkSeq  uint64      `json:"fork_seq,omitempty"`
	ForkTS   int64       `json:"fork_ts,omitempty"`
	Created  string      `json:"created,omitempty"` // what started it (the restore's target, "new-timeline")
	Ranges   []PITRRange `json:"ranges"`
	// ArchivedThrough is the last entry of the timeline's archive (its
	// parents' through the fork, then its own), 0 when empty.
	ArchivedThrough uint64 `json:"archived_through"`
}

// AllTimelines lists the ranges of every timeline of the database sel
// resolves to (sel.Timeline is ignored), oldest timeline first.
func (p *Planner) AllTimelines(ctx context.Context, r Repository, sel Select) ([]TimelineRanges, error) {
	id, err := walarchive.ResolveDatabase(ctx, r, sel.Space, sel.Identity, sel.Host)
	if err != nil {
		return nil, err
	}
	h, err := walarchive.LoadHistory(ctx, r, id, sel.Space)
	if err != nil {
		return nil, err
	}
	var out []TimelineRanges
	for _, n := range h.Timelines() {
		v, err := loadView(ctx, r, h, n)
		if err != nil {
			return nil, err
		}
		srcs, err := p.pitrSources(ctx, r, v)
		if err != nil {
			return nil, err
		}
		tr := TimelineRanges{Identity: id, Timeline: n, Ranges: mergeRanges(srcs)}
		if tr.Ranges == nil {
			tr.Ranges = []PITRRange{}
		}
		if rec := h.Records[n]; rec != nil && n > 1 {
			tr.Parent, tr.ForkSeq, tr.ForkTS, tr.Created = rec.Parent, rec.ForkSeq, rec.ForkTS, rec.Target
		}
		tr.ArchivedThrough, _ = v.Arch.End()
		out = append(out, tr)
	}
	return out, nil
}

// String formats a timeline's header line.
func (t TimelineRanges) String() string {
	if t.Timeline == 1 {
		return "timeline 1"
	}
	return fmt.Sprintf("timeline %d (from timeline %d at seq %d)", t.Timeline, t.Parent, t.ForkSeq)
}

// RangesOf lists what can be recovered on the timeline v, oldest first,
// and its composed archive.
func (p *Planner) RangesOf(ctx context.Context, r Repository, v *View) ([]PITRRange, *walarchive.WALArchive, error) {
	srcs, err := p.pitrSources(ctx, r, v)
	if err != nil {
		return nil, nil, err
	}
	return mergeRanges(srcs), v.Arch, nil
}
