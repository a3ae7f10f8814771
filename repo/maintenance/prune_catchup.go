package maintenance

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"sort"
	"strings"

	"github.com/dustin/go-humanize/english"

	"memento/chunk"
	"memento/repo"
	"memento/repo/walarchive"
)

// catchUp is the start of phase 2: under the exclusive lock it brings the
// plan of phase 1 up to date with what writers saved while phase 1 held
// only a shared lock, at a cost proportional to what they saved, not to the
// repository:
//
//  1. index/ is listed. An index file of phase 1's inventory that is gone
//     means another prune or a repair ran (both are excluded by the locks:
//     an old binary, or a lock removed by hand): prune stops before
//     deleting anything. Index files written since are read: their packs
//     join the inventory as kept (their blobs are copies that survive), and
//     a pack of phase 1's inventory that one of them lists is kept (it was
//     unindexed when phase 1 listed data/ because its writer had not
//     written its index file yet).
//  2. snapshots/ is listed; every manifest saved since is marked (its trees
//     walked; trees phase 1 walked are not walked again).
//  3. wal/ is listed; every WAL archive file written since has every chunk
//     it names marked. A line whose archive phase 1 planned to trim and
//     that was consolidated meanwhile (a file phase 1 read is gone, or a
//     new consolidation is there) is planned again from its files as they
//     are now, so that the rewrite supersedes them all.
//  4. Every blob first marked in 1-3 must have a copy that stays: in a kept
//     pack, or the copy of a repacked pack that phase 1 copied out. If not,
//     the pack planned to go that holds it is kept ("kept back"); the next
//     prune looks at it again. The index plan (obsolete index files, packs
//     to describe) is then made again.
//
// Why nothing a writer saved during phase 1 is lost. Writers store in this
// order: packs, then the index file describing them, then what references
// them (a manifest, a WAL archive file); each holds a shared lock from
// before it deduplicates against the index until after it saved its
// references. Prune refused to start while another process held a lock
// (othersHold), and phase 2 holds the exclusive lock, which no other live
// lock coexists with (in the agent, Pause stopped its own writers first).
// So every writer that could reference a blob phase 1 saw has, by phase 2,
// either saved its references, which 1-3 list and mark (storage listings
// are strongly consistent: a local file system, S3), or given up, leaving
// packs nothing references. That covers a backup that started before phase
// 1 and finished during it, whose manifest is new, or whose packs phase 1
// saw unindexed (1); an archive run that recut a segment's tail during
// phase 1, whose new record names other pieces (3: the new file's chunks
// are marked; the superseded pieces were marked by phase 1 and stay until
// the next prune); an archive run that consolidated the line (3: planned
// again, so the rewrite never leaves a consolidation naming records whose
// chunks are deleted); a forget or tag during phase 1 (a manifest deleted
// only keeps more; a replacing manifest is new: marked). Writers that lock
// after phase 2 find the index files prune replaced gone and reload their
// cache before deduplicating (Repository.Sync on every lock), so they never
// reference a deleted pack. Repacking in phase 1 only adds packs no index
// file describes until phase 2: nothing can reference their copies before.
// A dry run is phase 1 without the repack, under a plain shared lock.
func catchUp(ctx context.Context, r pruneRepo, pl *prunePlan, ex *PruneExclusive) error {
	inv, m := pl.inv, pl.m
	m.catching = true
	m.fresh = nil
	defer func() { m.catching = false }()
	kept := map[*prunePack]bool{}
	keepBack := func(p *prunePack) {
		if p.action != pruneKeep {
			p.action = pruneKeep
			kept[p] = true
		}
	}

	// 1. Index files.
	listed := map[string]bool{}
	var names []string
	if err := r.Backend().List(ctx, repo.DirIndex, func(name string, size int64) error {
		listed[name] = true
		if _, ok := inv.indexFiles[name]; !ok {
			names = append(names, name)
		}
		return nil
	}); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("list index files: %w", err)
	}
	for name := range inv.indexFiles {
		if !listed[name] {
			return fmt.Errorf("%w: index file %.8s was deleted while prune planned (another prune or a repair ran meanwhile); nothing was deleted: run prune again",
				ErrPruneUnsafe, strings.TrimPrefix(name, repo.DirIndex+"/"))
		}
	}
	sort.Strings(names)
	files, damaged, err := r.LoadIndexFiles(ctx, names, true)
	if err != nil {
		return err
	}
	if len(damaged) > 0 {
		return fmt.Errorf("%w: %s; run 'memento check --repair' to rewrite the index from the packs", ErrPruneUnsafe, damaged[0])
	}
	ex.NewIndexFiles = len(names)
	byID := make(map[[32]byte]int32, len(inv.packs))
	for k, p := range inv.packs {
		byID[p.info.ID] = int32(k)
	}
	for _, f := range files {
		for _, pi := range f.Packs {
			if k, ok := byID[pi.ID]; ok {
				p := inv.packs[k]
				p.files = append(p.files, f.Name)
				keepBack(p)
				continue
			}
			k := int32(len(inv.packs))
			byID[pi.ID] = k
			inv.packs = append(inv.packs, &prunePack{info: pi, size: pi.Size, files: []string{f.Name}, action: pruneKeep})
			inv.add(k)
		}
	}

	// 2. Manifests.
	ids, err := r.ListSnapshotIDs(ctx)
	if err != nil {
		return err
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i].String() < ids[j].String() })
	for _, id := range ids {
		if pl.present[id.String()] {
			continue
		}
		sn, err := r.LoadSnapshotFile(ctx, id)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if errors.Is(err, repo.ErrCorrupt) || errors.Is(err, repo.ErrFormat) {
				return fmt.Errorf("%w: %v: what it references is unknown; nothing was deleted", ErrPruneUnsafe, err)
			}
			return err
		}
		pl.present[id.String()] = true
		ex.NewSnapshots++
		missing, err := m.markSnapshot(ctx, sn)
		if err != nil {
			return err
		}
		if _, ok := pl.damaged[id.String()]; missing > 0 && !ok {
			return fmt.Errorf("%w: snapshot %s, saved while prune planned, references %s that no pack holds or that cannot be read; nothing was deleted",
				ErrPruneUnsafe, id.Short(), english.Plural(missing, "blob", ""))
		}
		if sn.Space != "" {
			pl.bySpace[sn.Space] = append(pl.bySpace[sn.Space], sn)
		}
	}

	// 3. The WAL archive.
	now := map[string][]string{} // directory -> files
	if err := r.Backend().List(ctx, walarchive.DirWAL, func(name string, size int64) error {
		parts := strings.SplitN(name, "/", 3)
		if len(parts) >= 3 {
			d := parts[0] + "/" + parts[1]
			now[d] = append(now[d], name)
		}
		return nil
	}); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("list WAL archive: %w", err)
	}
	dirs := make([]string, 0, len(now))
	for d := range now {
		dirs = append(dirs, d)
	}
	sort.Strings(dirs)
	for _, d := range dirs {
		seen := pl.walSeen[d]
		var fresh []string
		current := map[string]bool{}
		consolidated := false
		for _, n := range now[d] {
			current[n] = true
			if !seen[n] {
				fresh = append(fresh, n)
				if strings.Contains(strings.TrimPrefix(n, d+"/"), "/") {
					consolidated = true
				}
			}
		}
		ex.NewWALFiles += len(fresh)
		if len(fresh) == 0 && len(current) == len(seen) {
			continue
		}
		for n := range seen {
			if !current[n] {
				consolidated = true
			}
		}
		if wp := pl.lines[d]; wp != nil && len(wp.dropped) > 0 && consolidated {
			if err := pl.replanWAL(ctx, r, wp); err != nil {
				return err
			}
			ex.WALReplanned++
			continue
		}
		for _, n := range fresh {
			var f walarchive.ArchiveFile
			if err := r.LoadFile(ctx, n, walarchive.KindWALArchive, &f); err != nil {
				return fmt.Errorf("WAL archive file %s saved while prune planned: %w", n, err)
			}
			for _, s := range f.Segments {
				for _, c := range s.Chunks {
					m.mark(f.Space, c.ID)
				}
			}
		}
	}

	// 4. A copy that stays for every blob first marked now, and for the
	// bases of the deltas in the packs that stay (those indexed meanwhile
	// included), until that keeps back no more packs.
	for {
		if err := m.markUsedDeltaBases(ctx); err != nil { // the WAL files' chunks
			return err
		}
		keepFresh(inv, m, keepBack)
		n, err := m.markKeptDeltaBases(ctx)
		if err != nil {
			return err
		}
		if n == 0 {
			break
		}
	}
	ex.PacksKeptBack = len(kept)
	pl.walWarnings()
	if len(kept) == 0 && ex.WALReplanned == 0 {
		return nil
	}
	if len(kept) > 0 {
		pl.replanPacks(kept)
	}
	return nil
}

// keepFresh keeps back (keepBack) a pack holding a copy of every blob
// first marked in phase 2 that no pack keeps. As in phase 1, a blob with a
// copy stored whole keeps a whole copy: a delta copy needs its base, and a
// blob first marked now may be the base of a delta written meanwhile (a
// base that stays only as a delta cannot be read: deltaBase refuses it).
func keepFresh(inv *pruneInventory, m *pruneMarker, keepBack func(*prunePack)) {
	for _, fb := range m.fresh {
		refs := inv.copies(fb.space, fb.id)
		if len(refs) == 0 {
			continue // in no pack: a snapshot's was refused above; a WAL record's was lost before
		}
		if whole := wholeCopies(inv, refs); len(whole) > 0 {
			refs = whole
		}
		stays := false
		for _, ref := range refs {
			p := inv.packs[ref.pack]
			if p.action == pruneKeep || (p.action == pruneRepack && slices.Contains(p.owned, ref.blob)) {
				stays = true
				break
			}
		}
		if !stays {
			keepBack(inv.packs[refs[0].pack])
		}
	}
}

// wholeCopies returns the copies of refs stored whole (not as a delta or a
// member).
func wholeCopies(inv *pruneInventory, refs []pruneBlobRef) []pruneBlobRef {
	var whole []pruneBlobRef
	for _, ref := range refs {
		if _, b := inv.blob(ref); repo.StoredWhole(b.Flags) {
			whole = append(whole, ref)
		}
	}
	return whole
}

// replanPacks takes the packs kept back out of the deletions and makes the
// index plan and the figures again.
func (pl *prunePlan) replanPacks(kept map[*prunePack]bool) {
	res := pl.res
	goes := map[int32]bool{}
	pl.deleteList = pl.deleteList[:0]
	res.PacksDeleted, res.PacksRepacked, res.PacksKept = 0, 0, 0
	for k, p := range pl.inv.packs {
		if !p.phase1 {
			continue
		}
		switch p.action {
		case pruneDelete:
			res.PacksDeleted++
		case pruneRepack:
			res.PacksRepacked++
		default:
			res.PacksKept++
			if kept[p] {
				res.UnusedLeft += p.blobB - p.ownedB
			}
			continue
		}
		pl.deleteList = append(pl.deleteList, p)
		goes[int32(k)] = true
	}
	pl.planIndex(goes)
}

// replanWAL plans a line of history again, from its files as they are now
// (phase 1's writers consolidated it), with the snapshots as they are now.
func (pl *prunePlan) replanWAL(ctx context.Context, r pruneRepo, old *walPrunePlan) error {
	sns, lean := lineBases(old.hist, old.line, pl.bySpace[old.line.Space])
	wp, err := planWAL(ctx, r, pl.m, old.line, sns, lean)
	if err != nil {
		return err
	}
	dir := walarchive.LineDir(r, old.line)
	if wp == nil { // no file left: nothing to rewrite
		delete(pl.lines, dir)
		pl.wal = slices.DeleteFunc(pl.wal, func(p *walPrunePlan) bool { return p == old })
		return nil
	}
	if err := repo.CheckDeletable(ctx, r.Backend(), "prune", wp.files); err != nil {
		return err
	}
	wp.hist = old.hist
	pl.lines[dir] = wp
	out := pl.wal[:0]
	for _, p := range pl.wal {
		if p != old {
			out = append(out, p)
		}
	}
	if len(wp.dropped) > 0 {
		out = append(out, wp)
	}
	pl.wal = out
	rep := wp.report()
	for i := range pl.res.WAL {
		w := &pl.res.WAL[i]
		if w.Space == rep.Space && w.Identity == rep.Identity && w.Timeline == rep.Timeline {
			*w = rep
		}
	}
	return nil
}

// add enters the blobs of pack k into where and dups.
func (inv *pruneInventory) add(k int32) {
	p := inv.packs[k]
	sp := p.info.Space
	if inv.where[sp] == nil {
		inv.where[sp] = map[chunk.ID]pruneBlobRef{}
	}
	for j, b := range p.info.Blobs {
		p.blobB += int64(b.Length)
		ref := pruneBlobRef{k, int32(j)}
		if _, ok := inv.where[sp][b.ID]; !ok {
			inv.where[sp][b.ID] = ref
			continue
		}
		if inv.dups[sp] == nil {
			inv.dups[sp] = map[chunk.ID][]pruneBlobRef{}
		}
		inv.dups[sp][b.ID] = append(inv.dups[sp][b.ID], ref)
	}
}
