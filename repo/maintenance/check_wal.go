package maintenance

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"memento/chunk"
	"memento/repo"
	"memento/repo/walarchive"
)

// checkWALArchives is check's part for the WAL archive: every archived
// segment of every space (the chunks of all its point-in-time ranges) must
// be in packs that exist (and, with --read-data, not damaged). A damaged
// segment is an error until a snapshot of the space covers it (its WAL end
// at or after the segment's last entry); then it is lost history, a warning.
//
// The archive's own bookkeeping is checked too: a wal/ run file deleted by
// hand takes its segment records with it and would shrink the ranges
// silently. A missing file number (MissingFiles) catches any but the newest;
// an audited `wal archive` run that archived further than the archive now
// reaches catches the newest. The chunks of every segment are added to used
// (per storage space), for the delta-base check that follows.
func checkWALArchives(ctx context.Context, r checkRepo, rep *CheckReport, packs map[[32]byte]int64, bad map[chunk.ID]string, recs []repo.AuditRecord,
	used map[string]map[chunk.ID]struct{}) error {
	spaces, err := walarchive.ArchiveSpaces(ctx, r)
	if err != nil {
		return err
	}
	exists := func(id [32]byte) bool { _, ok := packs[id]; return ok }
	segs := 0
	for _, space := range spaces {
		lines, err := walarchive.SpaceLines(ctx, r, space)
		if err != nil {
			rep.add(SevError, "space "+space+" WAL archive", "%v", err)
			continue
		}
		// The audit trail names the space only: its furthest run is
		// compared with the furthest line.
		var furthest uint64
		for _, l := range lines {
			arch, err := walarchive.LoadLine(ctx, r, l)
			if err != nil {
				rep.add(SevError, "space "+space+" WAL archive", "%v", err)
				continue
			}
			end, _ := arch.End()
			furthest = max(furthest, end)
			if err := checkWALLine(ctx, r, rep, l, arch, exists, bad, &segs); err != nil {
				return err
			}
			markWALChunks(used, space, arch)
		}
		if rec := furthestArchiveRun(recs, space); rec != nil && rec.Figures["last_seq"].Uint64() > furthest {
			rep.add(SevError, "space "+space+" WAL archive", "ends at seq %d, but 'wal archive' on %s at %s archived through seq %d: a wal/ file is missing (deleted or lost)",
				furthest, rec.Host, rec.Time.Format(time.RFC3339), rec.Figures["last_seq"].Uint64())
		}
	}
	rep.Figures["wal_segments"] = float64(segs)
	return nil
}

// markWALChunks adds the chunks of every archived segment of a line to
// used, as prune marks them: a chunk the WAL archive lists is used even when
// no snapshot lists it, so the delta-base check covers it too.
func markWALChunks(used map[string]map[chunk.ID]struct{}, space string, arch *walarchive.WALArchive) {
	sp := repo.StorageSpace(space)
	if used[sp] == nil {
		used[sp] = map[chunk.ID]struct{}{}
	}
	for _, rec := range arch.Segments() {
		for _, c := range rec.Chunks {
			used[sp][c.ID] = struct{}{}
		}
	}
}

// checkWALLine checks the archive of one line of history of a space.
func checkWALLine(ctx context.Context, r checkRepo, rep *CheckReport, l walarchive.Line, arch *walarchive.WALArchive,
	exists func([32]byte) bool, bad map[chunk.ID]string, segs *int) error {
	space := l.Space
	{
		*segs += len(arch.Segments())
		what := "space " + space + " WAL archive"
		if !l.IsLegacy() {
			what = fmt.Sprintf("space %s WAL archive (identity %s, timeline %d)", space, walarchive.IdentityLabel(l.Identity), l.Timeline)
		}
		if miss := arch.MissingFiles(); len(miss) > 0 {
			rep.add(SevError, what, "wal/ run file number %s of %d is missing (deleted or lost): the segment records it held are gone, so the archive may end earlier or have a hole ('pitr ranges' shows what is left)",
				joinNumbers(miss), arch.FileSeq())
		}
		dmg, err := walarchive.FindDamage(r, space, arch, exists, bad)
		if err != nil {
			return err
		}
		covered, err := walarchive.SnapshotWALEnd(ctx, r, space)
		if err != nil {
			return err
		}
		for _, d := range dmg {
			if d.LastSeq <= covered {
				rep.add(SevWarning, what, "%s; a later snapshot covers it, so only recovery to the points before that snapshot is lost ('pitr ranges')", d)
				continue
			}
			rep.add(SevError, what, "%s; point-in-time recovery cannot replay through it, the ranges end before it ('pitr ranges'; a new backup of the space starts a new range)", d)
		}
	}
	return nil
}

// furthestArchiveRun returns the successful audited `wal archive` run of a
// space that reached the highest sequence, or nil.
func furthestArchiveRun(recs []repo.AuditRecord, space string) *repo.AuditRecord {
	var best *repo.AuditRecord
	for i := range recs {
		rec := &recs[i]
		if rec.Command == "archive" && rec.Space == space && rec.Result == repo.AuditOK &&
			(best == nil || rec.Figures["last_seq"].Uint64() > best.Figures["last_seq"].Uint64()) {
			best = rec
		}
	}
	return best
}

// joinNumbers formats numbers as "3, 5, 9" (at most 10, then "and N more").
func joinNumbers(ns []uint64) string {
	var parts []string
	for i, n := range ns {
		if i == 10 {
			parts = append(parts, fmt.Sprintf("and %d more", len(ns)-10))
			break
		}
		parts = append(parts, strconv.FormatUint(n, 10))
	}
	return strings.Join(parts, ", ")
}
