package repo

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"memento/walreplay"
)

// ErrUnrecoverable means a requested point in time lies outside every
// recoverable range: before the first backup, after the last archived entry,
// or in a gap of the archive. The error text lists the ranges.
var ErrUnrecoverable = errors.New("point in time cannot be recovered")

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

// pitrSource is one snapshot and what can be recovered from it.
type pitrSource struct {
	sn         *Snapshot
	start, end WALPosition
	// head is the compacted segment the snapshot's WAL starts with (nil
	// when it starts with ordinary segments), and originals the archived
	// segments it replaced, which a recovery to a point before the head's
	// marker lays down in its place (nil when the archive lacks any).
	head      *compactedHead
	originals []*WALSegmentRecord
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
// first (WALArchive.Broken lists them): a range ends before them, so that
// what is listed is what restores.
func (r *Repository) pitrSources(ctx context.Context, space string, arch *WALArchive) ([]pitrSource, error) {
	if _, err := r.ReconcilePacks(ctx); err != nil {
		return nil, err
	}
	dmg, err := r.walDamage(space, arch, nil, nil)
	if err != nil {
		return nil, err
	}
	arch.dropDamaged(dmg)
	all, err := r.Snapshots(ctx)
	if err != nil {
		return nil, err
	}
	runs := arch.Runs()
	var out []pitrSource
	for _, sn := range all {
		e := sn.Engram
		if sn.Space != space || e == nil || e.WALEnd.Seq == 0 {
			continue
		}
		src := pitrSource{sn: sn, start: e.Checkpoint, end: e.WALEnd}
		if src.start.Seq == 0 {
			// A fresh database: the tiers are empty; history starts with
			// the first entry of the WAL.
			src.start = e.WALFirst
		}
		head, err := r.snapshotCompactedHead(ctx, sn, arch)
		if err != nil {
			return nil, err
		}
		if head != nil && src.start.Seq < head.Last {
			src.head = head
			if src.originals = originals(arch, head.First, head.Last); src.originals == nil {
				// Only the state at the marker and after it can be
				// derived. (When the checkpoint precedes the run, the
				// states before it could be too, by sequence; they are
				// not listed rather than listed by halves.)
				src.start = WALPosition{Seq: head.Last, TimestampNS: head.LastTS}
			}
		}
		// A snapshot marked damaged is a base only up to its last verified
		// entry: the archive does not extend it past the damage.
		for _, run := range runs {
			if len(sn.Damage()) > 0 {
				break
			}
			if run.FirstSeq <= src.end.Seq+1 && run.LastSeq > src.end.Seq {
				src.end = WALPosition{Seq: run.LastSeq, TimestampNS: run.LastTS}
			}
		}
		if src.start.Seq > src.end.Seq || src.start.Seq == 0 {
			continue
		}
		out = append(out, src)
	}
	return out, nil
}

// mergeRanges unions the sources' ranges; ranges that touch (the next starts
// at most one sequence after the previous ends) merge.
func mergeRanges(srcs []pitrSource) []PITRRange {
	s := slices.Clone(srcs)
	slices.SortFunc(s, func(a, b pitrSource) int {
		switch {
		case a.start.Seq < b.start.Seq:
			return -1
		case a.start.Seq > b.start.Seq:
			return 1
		}
		return 0
	})
	var out []PITRRange
	for _, src := range s {
		if n := len(out); n > 0 && src.start.Seq <= out[n-1].ToSeq+1 {
			if src.end.Seq > out[n-1].ToSeq {
				out[n-1].ToSeq, out[n-1].ToTS = src.end.Seq, src.end.TimestampNS
			}
			out[n-1].Snapshots++
			continue
		}
		out = append(out, PITRRange{FromSeq: src.start.Seq, FromTS: src.start.TimestampNS, ToSeq: src.end.Seq, ToTS: src.end.TimestampNS, Snapshots: 1})
	}
	return out
}

// PITRRanges lists what can be recovered of a space, oldest first.
func (r *Repository) PITRRanges(ctx context.Context, space string) ([]PITRRange, *WALArchive, error) {
	arch, err := r.LoadWALArchive(ctx, space)
	if err != nil {
		return nil, nil, err
	}
	srcs, err := r.pitrSources(ctx, space, arch)
	if err != nil {
		return nil, nil, err
	}
	return mergeRanges(srcs), arch, nil
}

// planPITR picks the snapshot to start from. The safe choice is the newest
// snapshot whose WAL end is at or before the target: whatever state its tiers
// captured, the database replays from there to the target. Failing that, a
// snapshot that covers the target (its checkpoint at or before it, its WAL
// end after it) is used; that is exact when the backup was quiesced
// (docs/pitr.md).
func planPITR(srcs []pitrSource, t walreplay.Target) (*pitrSource, bool) {
	var best, cover *pitrSource
	for i := range srcs {
		s := &srcs[i]
		var in, before bool
		if t.ToSeq != nil {
			n := *t.ToSeq
			in = s.start.Seq <= n && n <= s.end.Seq
			before = s.sn.Engram.WALEnd.Seq <= n
		} else {
			ts := *t.AtTime
			in = s.start.TimestampNS <= ts && ts <= s.end.TimestampNS
			before = s.sn.Engram.WALEnd.TimestampNS <= ts
		}
		if !in {
			continue
		}
		if before {
			if best == nil || s.sn.Engram.WALEnd.Seq > best.sn.Engram.WALEnd.Seq ||
				s.sn.Engram.WALEnd.Seq == best.sn.Engram.WALEnd.Seq && s.sn.Time.After(best.sn.Time) {
				best = s
			}
		} else if cover == nil || s.start.Seq > cover.start.Seq {
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
