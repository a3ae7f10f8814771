package maintenance

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"sort"
	"strings"
	"time"

	"memento/repo"
	"memento/repo/walarchive"
)

// WAL archive retention. Point-in-time recovery starts from a snapshot and
// replays the archived segments after its wal_end (pitr_restore.go,
// layDownWAL), so of a space's archive prune keeps:
//
//  1. every record with entries after the smallest wal_end of the space's
//     remaining snapshots (the "floor"): each remaining snapshot can still
//     be continued exactly as far as before, so every range `pitr ranges`
//     shows after the prune restores;
//  2. the newest ordinary record, so the archive position never goes back
//     (an archiver would otherwise ship segments again);
//  3. compacted records (one per compaction, and what keeps `wal archive`
//     from shipping a compacted segment of the data dir again);
//  4. records all of whose chunks a remaining snapshot holds anyway: they
//     cost nothing, and keeping them stops the next `wal archive` from
//     shipping again the old segments the data dir still has.
//
// A record below the floor with chunks of its own is dropped: no remaining
// snapshot can be continued through it. A space with no remaining snapshot
// that records WAL positions keeps its whole archive (prune does not guess
// what a first backup will need). The records kept are written into one new
// consolidation (wal/<tag>/c/<hash>) superseding every file of the space,
// then the old files are deleted; all of this happens before any pack is.

// Timelines (docs/pitr.md, "Timelines"). Timeline t's own archive is read
// by recoveries of t and of its descendants; a recovery starts from a
// snapshot taken on its timeline or on an ancestor before the fork. Of t's
// own records, those a remaining snapshot S may be continued through are
// kept, where S is
//
//   - a snapshot taken on t, or
//   - a snapshot taken on an ancestor a of t at or before the fork point
//     where t's line leaves a (the smallest fork sequence on the path from
//     a to t): it is a base of t (and of t's descendants through t) and is
//     continued through t's own records from the fork on.
//
// A snapshot taken on a descendant d of t never reads t's own records past
// its WAL end: d's history holds t's entries only up to the fork, and a
// snapshot of d ends at or after d's fork. So the floor of t's archive is
// the smallest WAL end of those snapshots (rules 1-4 above apply with it).
// A timeline no remaining snapshot is a base of, in a database that has
// remaining snapshots on other timelines, keeps only rules 2-4 (the newest
// record, compacted ones, ones whose chunks snapshots hold): nothing can be
// recovered on it any more, and its descendants' recoveries start from
// their own snapshots. A database with no remaining snapshot that records
// WAL positions keeps every archive whole, as before.

// lineBases returns the remaining snapshots whose recoveries may read the
// line's own archive (see above), and whether the line is lean: no such
// snapshot, while the database has snapshots on other timelines. h is the
// database's history (nil: only timeline 1).
func lineBases(h *walarchive.History, l walarchive.Line, all []*repo.Snapshot) ([]*repo.Snapshot, bool) {
	var out []*repo.Snapshot
	others := false
	for _, sn := range all {
		if sn.Identity() != l.Identity || sn.Engram == nil || sn.Engram.WALEnd.Seq == 0 {
			continue
		}
		if sn.Timeline() == l.Timeline {
			out = append(out, sn)
			continue
		}
		others = true
		if h == nil || l.IsLegacy() {
			continue
		}
		path, err := h.Path(l.Timeline)
		if err != nil {
			continue
		}
		limit := uint64(math.MaxUint64)
		for _, t := range path {
			if t == sn.Timeline() {
				if sn.Engram.WALEnd.Seq <= limit {
					out = append(out, sn)
				}
				break
			}
			rec := h.Records[t]
			if rec == nil || t == 1 {
				break // the root: sn is on no ancestor of the line
			}
			limit = min(limit, rec.ForkSeq)
		}
	}
	return out, len(out) == 0 && others
}

// walPrunePlan is what prune does to one space's archive.
type walPrunePlan struct {
	space   string
	line    walarchive.Line // the line of history (identity, timeline) of the archive
	arch    *walarchive.WALArchive
	hist    *walarchive.History // the database's history (nil: only timeline 1), for planning the line again
	floor   uint64              // records ending at or before it may go
	keep    []walarchive.WALSegmentRecord
	dropped []walarchive.WALSegmentRecord
	files   []string // every wal/ file of the space, superseded by the rewrite
}

// WALPruneReport says what prune did (or would do) to a space's archive.
type WALPruneReport struct {
	Space        string `json:"space"`
	Identity     string `json:"identity,omitempty"`
	Timeline     uint32 `json:"timeline,omitempty"`
	FloorSeq     uint64 `json:"floor_seq"` // the smallest wal_end of the remaining snapshots
	Kept         int    `json:"segments_kept"`
	Dropped      int    `json:"segments_dropped"`
	DroppedFirst uint64 `json:"dropped_first_seq,omitempty"`
	DroppedLast  uint64 `json:"dropped_last_seq,omitempty"`
	FilesWritten int    `json:"files_written"`
	FilesDeleted int    `json:"files_deleted"`
}

// planWAL loads a space's archive, marks the chunks of the records it keeps
// and returns the plan (nil when the space has no archive). snapshots are
// the space's remaining snapshots; m.used must already hold their blobs.
func planWAL(ctx context.Context, r pruneRepo, m *pruneMarker, line walarchive.Line, snapshots []*repo.Snapshot, lean bool) (*walPrunePlan, error) {
	space := line.Space
	dir := walarchive.LineDir(r, line)
	var files []string
	if err := r.Backend().List(ctx, dir, func(name string, size int64) error {
		files = append(files, name)
		return nil
	}); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("space %s: list WAL archive: %w", space, err)
	}
	if len(files) == 0 {
		return nil, nil
	}
	arch, err := walarchive.LoadLine(ctx, r, line)
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	p := &walPrunePlan{space: space, line: line, arch: arch, files: files}
	haveFloor := false
	for _, sn := range snapshots {
		if e := sn.Engram; e != nil && e.WALEnd.Seq > 0 && (!haveFloor || e.WALEnd.Seq < p.floor) {
			p.floor, haveFloor = e.WALEnd.Seq, true
		}
	}
	if lean {
		// No remaining snapshot is a base of this timeline: nothing on it
		// is recoverable; keep only rules 2-4.
		p.floor, haveFloor = math.MaxUint64, true
	}
	endSeq, _ := arch.End()
	used := m.used[space]
	for _, rec := range arch.Segments() {
		keep := !haveFloor || rec.Compacted || rec.LastSeq > p.floor || (rec.LastSeq == endSeq && endSeq > 0)
		if !keep {
			keep = true
			for _, c := range rec.Chunks {
				if _, ok := used[c.ID]; !ok {
					keep = false
					break
				}
			}
		}
		if keep {
			p.keep = append(p.keep, rec)
			for _, c := range rec.Chunks {
				m.mark(space, c.ID)
			}
		} else {
			p.dropped = append(p.dropped, rec)
		}
	}
	return p, nil
}

func (p *walPrunePlan) report() WALPruneReport {
	rep := WALPruneReport{Space: p.space, FloorSeq: p.floor, Kept: len(p.keep), Dropped: len(p.dropped)}
	if p.floor == math.MaxUint64 {
		rep.FloorSeq = 0 // lean: no snapshot is a base of the timeline
	}
	if !p.line.IsLegacy() {
		rep.Identity, rep.Timeline = p.line.Identity, p.line.Timeline
	}
	for i, d := range p.dropped {
		if i == 0 || d.FirstSeq < rep.DroppedFirst {
			rep.DroppedFirst = d.FirstSeq
		}
		rep.DroppedLast = max(rep.DroppedLast, d.LastSeq)
	}
	return rep
}

// missingChunks counts chunks of kept records that no pack holds (an
// archive already damaged: prune does not make it worse, but says so).
func (p *walPrunePlan) missingChunks(inv *pruneInventory) int {
	n := 0
	for _, rec := range p.keep {
		for _, c := range rec.Chunks {
			if _, ok := inv.where[p.space][c.ID]; !ok {
				n++
			}
		}
	}
	return n
}

// rewrite writes the consolidation holding the kept records, then deletes
// every file it supersedes, run files first. Until the last deletion the
// old files still describe the dropped records, whose chunks are still in
// their packs: a crash leaves the old archive readable as it was.
func rewriteWAL(ctx context.Context, r pruneRepo, p *walPrunePlan, step func(string), rep *WALPruneReport) error {
	host, _ := os.Hostname()
	f := walarchive.ArchiveFile{Version: walarchive.WALArchiveVersion, Space: p.space, Host: host, Time: time.Now().UTC(),
		Supersedes: p.files, Segments: p.keep, Seq: p.arch.FileSeq()}
	f.SetLine(p.line)
	dir := walarchive.LineDir(r, p.line) + "/c"
	id, err := r.SaveFile(ctx, dir, walarchive.KindWALArchive, f)
	if err != nil {
		return fmt.Errorf("space %s: rewrite WAL archive: %w", p.space, err)
	}
	name := repo.FileName(dir, id)
	rep.FilesWritten++
	step("write " + name)
	order := make([]string, 0, len(p.files))
	for _, n := range p.files { // run files first: the old consolidations still cover them
		if !strings.Contains(strings.TrimPrefix(n, walarchive.LineDir(r, p.line)+"/"), "/") {
			order = append(order, n)
		}
	}
	for _, n := range p.files {
		if strings.Contains(strings.TrimPrefix(n, walarchive.LineDir(r, p.line)+"/"), "/") {
			order = append(order, n)
		}
	}
	for _, n := range order {
		if n == name {
			continue
		}
		if err := r.Backend().Delete(ctx, n); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("space %s: delete superseded WAL archive file %s: %w", p.space, n, err)
		}
		rep.FilesDeleted++
		step("delete " + n)
	}
	return nil
}

// walDirs lists the space directories under wal/, to find archives whose
// space prune does not know (reported, left alone).
func walDirs(ctx context.Context, r pruneRepo) (map[string]bool, error) {
	out := map[string]bool{}
	err := r.Backend().List(ctx, walarchive.DirWAL, func(name string, size int64) error {
		parts := strings.SplitN(name, "/", 3)
		if len(parts) >= 3 {
			out[parts[0]+"/"+parts[1]] = true
		}
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("list WAL archive: %w", err)
	}
	return out, nil
}
