package pitr

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"memento/repo"
	"memento/repo/walarchive"
	"memento/walreplay"
)

// PITRRange is a stretch of a space's history that can be recovered at every
// entry: from the checkpoint of a snapshot through the last entry reachable
// from that snapshot by a gap-free chain of archived WAL.
type PITRRange struct {
	FromSeq   uint64 `json:"from_seq"`
	FromTS    int64  `json:"from_ts"`
	ToSeq     uint64 `json:"to_seq"`
	ToTS      int64  `json:"to_ts"`
	Snapshots int    `json:"snapshots"` // snapshots a recovery in this range can start from
}

// String formats a range as operators read it.
func (g PITRRange) String() string {
	return fmt.Sprintf("seq %d..%d (%s .. %s)", g.FromSeq, g.ToSeq, walreplay.FormatTime(g.FromTS), walreplay.FormatTime(g.ToTS))
}

// Source is one snapshot and what can be recovered from it: the states
// from Start through End.
type Source struct {
	Snapshot   *repo.Snapshot
	Start, End repo.WALPosition
	// Head is the compacted segment the snapshot's WAL starts with (nil
	// when it starts with ordinary segments), and Originals the archived
	// segments it replaced, which a recovery to a point before the head's
	// marker lays down in its place (nil when the archive lacks any).
	Head      *CompactedHead
	Originals []*walarchive.WALSegmentRecord
}

// pitrSources pairs each Engram snapshot of the space with the archive.
//
// A snapshot taken after 'wal compact' holds a compacted segment covering
// a..b instead of the entries themselves: the states strictly before b
// cannot be derived from it. When the archive still holds the original
// segments of a..b, a recovery uses them instead (RestorePointInTime) and
// the range starts at the checkpoint as usual; otherwise it starts at b.
// That is what keeps 'pitr ranges' exactly what a restore accepts.
//
// Archived segments whose data is gone (a lost pack) are dropped from arch
// first (walarchive.WALArchive.Broken lists them): a range ends before them, so that
// what is listed is what restores.
func (p *Planner) pitrSources(ctx context.Context, r Repository, v *View) ([]Source, error) {
	space, arch := v.Line.Space, v.Arch
	if _, err := r.ReconcilePacks(ctx); err != nil {
		return nil, err
	}
	dmg, err := walarchive.FindDamage(r, space, arch, nil, nil)
	if err != nil {
		return nil, err
	}
	arch.DropDamaged(dmg)
	all, err := r.SnapshotsOf(ctx, space)
	if err != nil {
		return nil, err
	}
	runs := arch.Runs()
	var out []Source
	for _, sn := range all {
		e := sn.Engram
		if sn.Space != space || e == nil || e.WALEnd.Seq == 0 || !v.base(sn) {
			continue
		}
		src := Source{Snapshot: sn, Start: e.Checkpoint, End: e.WALEnd}
		if src.Start.Seq == 0 {
			// A fresh database: the tiers are empty; history starts with
			// the first entry of the WAL.
			src.Start = e.WALFirst
		}
		head, err := p.snapshotCompactedHead(ctx, r, sn, arch)
		if err != nil {
			return nil, err
		}
		if head != nil && src.Start.Seq < head.Last {
			src.Head = head
			if src.Originals = originals(arch, head.First, head.Last); src.Originals == nil {
				// Only the state at the marker and after it can be
				// derived. (When the checkpoint precedes the run, the
				// states before it could be too, by sequence; they are
				// not listed rather than listed by halves.)
				src.Start = repo.WALPosition{Seq: head.Last, TimestampNS: head.LastTS}
			}
		}
		// A snapshot marked damaged is a base only up to its last verified
		// entry: the archive does not extend it past the damage.
		for _, run := range runs {
			if len(sn.Damage()) > 0 {
				break
			}
			if run.FirstSeq <= src.End.Seq+1 && run.LastSeq > src.End.Seq {
				src.End = repo.WALPosition{Seq: run.LastSeq, TimestampNS: run.LastTS}
			}
		}
		if src.Start.Seq > src.End.Seq || src.Start.Seq == 0 {
			continue
		}
		out = append(out, src)
	}
	return out, nil
}

// mergeRanges unions the sources' ranges; ranges that touch (the next starts
// at most one sequence after the previous ends) merge.
func mergeRanges(srcs []Source) []PITRRange {
	s := slices.Clone(srcs)
	slices.SortFunc(s, func(a, b Source) int {
		switch {
		case a.Start.Seq < b.Start.Seq:
			return -1
		case a.Start.Seq > b.Start.Seq:
			return 1
		}
		return 0
	})
	var out []PITRRange
	for _, src := range s {
		if n := len(out); n > 0 && src.Start.Seq <= out[n-1].ToSeq+1 {
			if src.End.Seq > out[n-1].ToSeq {
				out[n-1].ToSeq, out[n-1].ToTS = src.End.Seq, src.End.TimestampNS
			}
			out[n-1].Snapshots++
			continue
		}
		out = append(out, PITRRange{FromSeq: src.Start.Seq, FromTS: src.Start.TimestampNS, ToSeq: src.End.Seq, ToTS: src.End.TimestampNS, Snapshots: 1})
	}
	return out
}

// PITRRanges lists what can be recovered of a space, oldest first: the
// newest timeline of the only database that has it (Resolve).
func (p *Planner) PITRRanges(ctx context.Context, r Repository, space string) ([]PITRRange, *walarchive.WALArchive, error) {
	v, err := Resolve(ctx, r, Select{Space: space})
	if err != nil {
		return nil, nil, err
	}
	srcs, err := p.pitrSources(ctx, r, v)
	if err != nil {
		return nil, nil, err
	}
	return mergeRanges(srcs), v.Arch, nil
}

// planPITR picks the snapshot to start from. The safe choice is the newest
// snapshot whose WAL end is at or before the target: whatever state its tiers
// captured, the database replays from there to the target. Failing that, a
// snapshot that covers the target (its checkpoint at or before it, its WAL
// end after it) is used; that is exact when the backup was quiesced
// (docs/pitr.md).
func planPITR(srcs []Source, t walreplay.Target) (*Source, bool) {
	var best, cover *Source
	for i := range srcs {
		s := &srcs[i]
		var in, before bool
		if t.ToSeq != nil {
			n := *t.ToSeq
			in = s.Start.Seq <= n && n <= s.End.Seq
			before = s.Snapshot.Engram.WALEnd.Seq <= n
		} else {
			ts := *t.AtTime
			in = s.Start.TimestampNS <= ts && ts <= s.End.TimestampNS
			before = s.Snapshot.Engram.WALEnd.TimestampNS <= ts
		}
		if !in {
			continue
		}
		if before {
			if best == nil || s.Snapshot.Engram.WALEnd.Seq > best.Snapshot.Engram.WALEnd.Seq ||
				s.Snapshot.Engram.WALEnd.Seq == best.Snapshot.Engram.WALEnd.Seq && s.Snapshot.Time.After(best.Snapshot.Time) {
				best = s
			}
		} else if cover == nil || s.Start.Seq > cover.Start.Seq {
			cover = s
		}
	}
	if best != nil {
		return best, true
	}
	return cover, cover != nil
}

// unrecoverable explains why t is out of reach, listing the ranges.
func unrecoverable(space string, t walreplay.Target, ranges []PITRRange, haveSnapshots bool) error {
	var why string
	switch {
	case !haveSnapshots:
		why = "no snapshot of this space records WAL positions (take one with 'memento backup --data-dir DIR --space " + space + "')"
	case len(ranges) == 0:
		why = "no snapshot has a usable WAL range"
	default:
		first, last := ranges[0], ranges[len(ranges)-1]
		switch {
		case t.ToSeq != nil && *t.ToSeq < first.FromSeq, t.AtTime != nil && *t.AtTime < first.FromTS:
			why = "it is before the first backup"
		case t.ToSeq != nil && *t.ToSeq > last.ToSeq, t.AtTime != nil && *t.AtTime > last.ToTS:
			why = fmt.Sprintf("it is after the last archived entry (seq %d at %s)", last.ToSeq, walreplay.FormatTime(last.ToTS))
		default:
			why = "it falls in a gap of the archived WAL"
		}
	}
	rs := make([]string, len(ranges))
	for i, g := range ranges {
		rs[i] = g.String()
	}
	list := "none"
	if len(rs) > 0 {
		list = strings.Join(rs, ", ")
	}
	return fmt.Errorf("space %s: %w: cannot recover to %s: %s; recoverable ranges: %s", space, ErrUnrecoverable, t, why, list)
}
