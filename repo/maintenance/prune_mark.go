package maintenance

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strings"
	"sync"

	"golang.org/x/sync/errgroup"

	"memento/chunk"
	"memento/index"
	"memento/repo"
)

// pruneBlobRef is where one copy of a blob is: a pack (index into
// inventory.packs) and the blob's entry in it.
type pruneBlobRef struct {
	pack int32
	blob int32
}

// prunePack is one pack as prune sees it.
type prunePack struct {
	info   index.PackInfo // blobs from an index file, or from the pack's header
	size   int64          // size in data/
	files  []string       // index files listing it; none: unindexed
	owned  []int32        // blobs of this pack that are kept (one copy per used blob)
	ownedB int64          // sealed bytes of owned blobs
	blobB  int64          // sealed bytes of all its blobs
	usedB  int64          // sealed bytes of used blobs, duplicates included (ownership score)
	action pruneAction
	phase1 bool // in phase 1's inventory (not a pack written since)
	force  bool // repacked whatever its unused share: it holds a group regrouped or live members of one
}

type pruneAction int

const (
	pruneKeep pruneAction = iota
	pruneDelete
	pruneRepack
)

// pruneInventory is every pack of the repository and where each blob is.
type pruneInventory struct {
	packs      []*prunePack
	indexFiles map[string][]int32 // index file -> packs it lists
	where      map[string]map[chunk.ID]pruneBlobRef
	dups       map[string]map[chunk.ID][]pruneBlobRef // further copies
	unreadable []string                               // unindexed packs whose header cannot be read: left alone
}

func (inv *pruneInventory) copies(space string, id chunk.ID) []pruneBlobRef {
	first, ok := inv.where[space][id]
	if !ok {
		return nil
	}
	return append([]pruneBlobRef{first}, inv.dups[space][id]...)
}

func (inv *pruneInventory) blob(ref pruneBlobRef) (*prunePack, index.BlobInfo) {
	p := inv.packs[ref.pack]
	return p, p.info.Blobs[ref.blob]
}

// inventory lists index/ and data/, reads every index file (refusing when
// one is damaged: its packs' contents would be unknown), checks the listed
// packs exist with the listed sizes, and reads the header of every pack no
// index file lists.
func inventory(ctx context.Context, r pruneRepo, workers int) (*pruneInventory, error) {
	// index/ before data/: a writer stores its packs before the index
	// file describing them, so every pack an index file listed here lists
	// is in the listing of data/ (prune's phase 1 holds only a shared lock).
	var names []string
	if err := r.Backend().List(ctx, repo.DirIndex, func(name string, size int64) error {
		names = append(names, name)
		return nil
	}); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("list index files: %w", err)
	}
	sizes := map[[32]byte]int64{}
	if err := r.Backend().List(ctx, repo.DirData, func(name string, size int64) error {
		if h := repo.NameHash(name); h != ([32]byte{}) && repo.FileName(repo.DirData, h) == name {
			sizes[h] = size
		}
		return nil
	}); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("list packs: %w", err)
	}
	files, damaged, err := r.LoadIndexFiles(ctx, names, true)
	if err != nil {
		return nil, err
	}
	if len(damaged) > 0 {
		return nil, fmt.Errorf("%w: %s; run 'memento check --repair' to rewrite the index from the packs", ErrPruneUnsafe, damaged[0])
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Name < files[j].Name })
	inv := &pruneInventory{indexFiles: map[string][]int32{}, where: map[string]map[chunk.ID]pruneBlobRef{},
		dups: map[string]map[chunk.ID][]pruneBlobRef{}}
	byID := map[[32]byte]int32{}
	for _, f := range files {
		for _, pi := range f.Packs {
			size, ok := sizes[pi.ID]
			switch {
			case !ok:
				return nil, fmt.Errorf("%w: pack %s is listed by index file %.8s but missing from the repository; run 'memento check --repair' first",
					ErrPruneUnsafe, repo.ShortHex(pi.ID), strings.TrimPrefix(f.Name, repo.DirIndex+"/"))
			case size != pi.Size:
				return nil, fmt.Errorf("%w: pack %s is %d bytes, index file %.8s says %d; run 'memento check' first",
					ErrPruneUnsafe, repo.ShortHex(pi.ID), size, strings.TrimPrefix(f.Name, repo.DirIndex+"/"), pi.Size)
			}
			k, seen := byID[pi.ID]
			if !seen {
				k = int32(len(inv.packs))
				byID[pi.ID] = k
				inv.packs = append(inv.packs, &prunePack{info: pi, size: size})
			}
			inv.packs[k].files = append(inv.packs[k].files, f.Name)
			inv.indexFiles[f.Name] = append(inv.indexFiles[f.Name], k)
		}
		if _, ok := inv.indexFiles[f.Name]; !ok {
			inv.indexFiles[f.Name] = nil
		}
	}
	// Packs no index file lists: an interrupted backup or prune. Their
	// headers say what they hold.
	var unindexed [][32]byte
	for id := range sizes {
		if _, ok := byID[id]; !ok {
			unindexed = append(unindexed, id)
		}
	}
	sort.Slice(unindexed, func(i, j int) bool { return repo.ShortHex(unindexed[i]) < repo.ShortHex(unindexed[j]) })
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(workers)
	for _, id := range unindexed {
		g.Go(func() error {
			pi, err := r.ReadPackHeader(gctx, id, sizes[id])
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if errors.Is(err, repo.ErrCorrupt) || errors.Is(err, repo.ErrFormat) {
					inv.unreadable = append(inv.unreadable, err.Error())
					return nil
				}
				return err
			}
			inv.packs = append(inv.packs, &prunePack{info: pi, size: sizes[id]})
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	sort.Strings(inv.unreadable)
	for k := range inv.packs {
		inv.add(int32(k))
	}
	return inv, nil
}

// pruneMarker collects the blobs remaining snapshots use, per storage space.
type pruneMarker struct {
	r    pruneRepo
	inv  *pruneInventory
	used map[string]map[chunk.ID]struct{}
	// trees already walked, and whether everything below them was present
	trees map[string]map[chunk.ID]bool
	// based: the delta blobs whose bases are marked (needsBase)
	based map[string]map[chunk.ID]bool
	// frames: the bases and groups named by the delta and member copies
	// markBases and markKeptDeltaBases read (zero: unreadable), by copy:
	// two copies of one delta may name two bases (two backups with other
	// parents each stored it); each frame is read once per prune
	frames map[pruneBlobRef]chunk.ID
	// refs: the used delta and member blobs markTree found whose bases
	// and groups are not marked yet, per space: markSnapshot reads their
	// frames once the snapshot's trees are walked, in one RefTargets call
	// (per directory, a tree of small files read its members' frames one
	// by one: its directories' files are spread over groups)
	refs map[string][]chunk.ID
	// catching is set in phase 2 (catchUp): every blob marked then that
	// was not marked before is also appended to fresh.
	catching bool
	fresh    []freshBlob
	// targets: the blobs marked only as the group a member's frame names,
	// never directly (by a tree or a WAL archive record) nor as a delta's
	// base: only those may be regrouped (prune_regroup.go)
	targets map[string]map[chunk.ID]bool
}

// freshBlob is a blob first marked used in phase 2.
type freshBlob struct {
	space string
	id    chunk.ID
}

func (m *pruneMarker) mark(space string, id chunk.ID) {
	if t := m.targets[space]; t != nil {
		delete(t, id) // used directly too
	}
	m.markUsed(space, id)
}

// markTarget marks the group id a member's frame names: as mark, and, if
// nothing marked it before, it is a target.
func (m *pruneMarker) markTarget(space string, id chunk.ID) {
	if _, ok := m.used[space][id]; ok {
		return
	}
	m.markUsed(space, id)
	if m.targets == nil {
		m.targets = map[string]map[chunk.ID]bool{}
	}
	if m.targets[space] == nil {
		m.targets[space] = map[chunk.ID]bool{}
	}
	m.targets[space][id] = true
}

func (m *pruneMarker) markUsed(space string, id chunk.ID) {
	s := m.used[space]
	if s == nil {
		s = map[chunk.ID]struct{}{}
		m.used[space] = s
	}
	if m.catching {
		if _, ok := s[id]; ok {
			return
		}
		m.fresh = append(m.fresh, freshBlob{space, id})
	}
	s[id] = struct{}{}
}

// markSnapshot marks a snapshot's trees and chunks, and the bases and
// groups of its deltas and members, and reports how many of them no pack
// holds (or could not be read, for trees and frames).
func (m *pruneMarker) markSnapshot(ctx context.Context, sn *repo.Snapshot) (missing int, err error) {
	space := repo.StorageSpace(sn.Space)
	missing, err = m.markTree(ctx, space, sn.Root)
	refs := m.refs[space]
	delete(m.refs, space)
	if err != nil {
		return 0, err
	}
	k, err := m.markBases(ctx, space, refs)
	return missing + k, err
}

func (m *pruneMarker) markTree(ctx context.Context, space string, id chunk.ID) (int, error) {
	if done, ok := m.trees[space][id]; ok {
		if done {
			return 0, nil
		}
		return 1, nil
	}
	if m.trees[space] == nil {
		m.trees[space] = map[chunk.ID]bool{}
	}
	m.mark(space, id)
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	t, err := m.loadTree(ctx, space, id)
	if err != nil {
		if errors.Is(err, repo.ErrCorrupt) || errors.Is(err, repo.ErrNotFound) {
			m.trees[space][id] = false
			m.r.Logger().Warn("prune: tree cannot be read", "space", space, "tree", id.Short(), "err", err)
			return 1, nil
		}
		return 0, err
	}
	missing := 0
	for _, n := range t.Nodes {
		for _, c := range n.Content {
			m.mark(space, c)
			if _, ok := m.inv.where[space][c]; !ok {
				missing++
			} else if m.needsBase(space, c) {
				if m.refs == nil {
					m.refs = map[string][]chunk.ID{}
				}
				m.refs[space] = append(m.refs[space], c)
			}
		}
		if n.Subtree != nil {
			k, err := m.markTree(ctx, space, *n.Subtree)
			if err != nil {
				return 0, err
			}
			missing += k
		}
	}
	// A delta or member whose base or group is missing counts for the
	// snapshot (markSnapshot), not for this tree: as with needsBase, the
	// first snapshot that reaches it counts it.
	m.trees[space][id] = missing == 0
	return missing, nil
}

// needsBase reports whether the used data blob id (in the inventory) is
// stored only as delta blobs whose bases are not marked yet: a delta keeps
// its base alive even when no tree lists the base any more. A blob with a
// whole copy needs nothing (pruneDecide keeps the whole copy).
func (m *pruneMarker) needsBase(space string, id chunk.ID) bool {
	if m.based[space][id] {
		return false
	}
	for _, ref := range m.inv.copies(space, id) {
		if _, b := m.inv.blob(ref); repo.StoredWhole(b.Flags) {
			return false
		}
	}
	if m.based[space] == nil {
		m.based[space] = map[chunk.ID]bool{}
	}
	m.based[space][id] = true
	return true
}

// markUsedDeltaBases marks the bases of every used blob stored only as
// deltas whose bases are not marked yet, whatever marked it: markTree does
// so for a snapshot's chunks, but the chunks a WAL archive names are marked
// directly (a WAL chunk equal to a delta blob is deduplicated against it),
// and a pack that is repacked keeps a used delta without its base
// otherwise. A base it cannot find only warns (markBases): what the
// archive names is unreadable already, and prune makes it no worse.
func (m *pruneMarker) markUsedDeltaBases(ctx context.Context) error {
	spaces := make([]string, 0, len(m.used))
	for sp := range m.used {
		spaces = append(spaces, sp)
	}
	sort.Strings(spaces)
	for _, sp := range spaces {
		var ids []chunk.ID
		for id := range m.used[sp] {
			if _, ok := m.inv.where[sp][id]; ok && m.needsBase(sp, id) {
				ids = append(ids, id)
			}
		}
		if _, err := m.markBases(ctx, sp, ids); err != nil {
			return err
		}
	}
	return nil
}

// markBases reads the frames of every copy of the delta blobs ids and
// marks their bases, and reports how many cannot be read or name a base
// that no pack holds whole.
func (m *pruneMarker) markBases(ctx context.Context, space string, ids []chunk.ID) (int, error) {
	if len(ids) == 0 {
		return 0, nil
	}
	var of []chunk.ID
	var locs []index.Location
	var refs []pruneBlobRef
	for _, id := range ids {
		for _, ref := range m.inv.copies(space, id) {
			p, b := m.inv.blob(ref)
			of = append(of, id)
			locs = append(locs, index.Location{Pack: p.info.ID, Offset: b.Offset, Length: b.Length, RawLength: b.RawLength, Type: b.Type, Flags: b.Flags})
			refs = append(refs, ref)
		}
	}
	bases, errs := m.r.RefTargets(ctx, space, of, locs)
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if m.frames == nil {
		m.frames = map[pruneBlobRef]chunk.ID{}
	}
	for i, ref := range refs {
		m.frames[ref] = bases[i] // zero when unreadable: markKeptDeltaBases reads it no more
	}
	missing := 0
	for i, err := range errs {
		if err != nil {
			if !errors.Is(err, repo.ErrCorrupt) && !errors.Is(err, repo.ErrNotFound) {
				return 0, err
			}
			m.r.Logger().Warn("prune: delta or member blob cannot be read", "space", space, "blob", of[i].Short(), "err", err)
			missing++
			continue
		}
		if locs[i].Flags&repo.FlagMember != 0 {
			m.markTarget(space, bases[i])
		} else {
			m.mark(space, bases[i]) // a delta's base: not a group prune may regroup
		}
		whole := false
		for _, ref := range m.inv.copies(space, bases[i]) {
			if _, b := m.inv.blob(ref); repo.StoredWhole(b.Flags) {
				whole = true
			}
		}
		if !whole {
			m.r.Logger().Warn("prune: the base of a delta blob or the group of a member is in no pack, or only as a delta or a member", "space", space, "blob", of[i].Short(), "base", bases[i].Short())
			missing++
		}
	}
	return missing, nil
}

// loadTree reads a tree from the first copy that opens, using the
// inventory rather than the local cache, which may not know unindexed packs.
func (m *pruneMarker) loadTree(ctx context.Context, space string, id chunk.ID) (*repo.Tree, error) {
	refs := m.inv.copies(space, id)
	if len(refs) == 0 {
		return nil, fmt.Errorf("tree %s of space %q: %w in any pack", id.Short(), space, repo.ErrNotFound)
	}
	var firstErr error
	for _, ref := range refs {
		p, b := m.inv.blob(ref)
		loc := index.Location{Pack: p.info.ID, Offset: b.Offset, Length: b.Length, RawLength: b.RawLength, Type: b.Type, Flags: b.Flags}
		var raw []byte
		opts := repo.StreamOptions{Buffer: repo.BufferFresh, Locs: []index.Location{loc}}
		err := m.r.StreamBlobs(ctx, space, repo.TreeBlob, []chunk.ID{id}, opts, func(b repo.StreamBlob) error {
			raw = b.Data
			return b.Err
		})
		if err == nil {
			t, err := repo.DecodeTree(raw)
			if err != nil {
				return nil, &repo.CorruptError{What: "tree " + id.Short(), Detail: "invalid", Err: err}
			}
			return t, nil
		}
		if !errors.Is(err, repo.ErrCorrupt) {
			return nil, err
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	return nil, firstErr
}

// markKeptDeltaBases marks the base of every delta blob in a pack prune
// keeps whole (pruneKeep), used or not: a kept pack keeps a delta no
// snapshot uses (or the delta copy of a blob also stored whole), check
// --read-data opens it, and a backup deduplicates against every indexed
// blob. It returns how many bases it newly marked: the caller decides
// again, since a base's pack may now stay (planPrune, catchUp). Deltas in
// packs that go, or are repacked (which drops their unused blobs), need
// nothing, so a second prune has nothing left to do. A frame that cannot
// be read only warns: nothing uses the delta.
func (m *pruneMarker) markKeptDeltaBases(ctx context.Context) (int, error) {
	if m.frames == nil {
		m.frames = map[pruneBlobRef]chunk.ID{}
	}
	type want struct {
		space string
		id    chunk.ID
		loc   index.Location
		ref   pruneBlobRef
	}
	var read []want
	var deltas []want
	for k, p := range m.inv.packs {
		if p.action != pruneKeep {
			continue
		}
		for j, b := range p.info.Blobs {
			if repo.StoredWhole(b.Flags) {
				continue
			}
			w := want{p.info.Space, b.ID, index.Location{Pack: p.info.ID, Offset: b.Offset, Length: b.Length, RawLength: b.RawLength, Type: b.Type, Flags: b.Flags},
				pruneBlobRef{pack: int32(k), blob: int32(j)}}
			deltas = append(deltas, w)
			if _, ok := m.frames[w.ref]; !ok {
				read = append(read, w)
			}
		}
	}
	bySpace := map[string][]want{}
	for _, w := range read {
		bySpace[w.space] = append(bySpace[w.space], w)
	}
	spaces := make([]string, 0, len(bySpace))
	for sp := range bySpace {
		spaces = append(spaces, sp)
	}
	sort.Strings(spaces)
	for _, sp := range spaces {
		ws := bySpace[sp]
		ids := make([]chunk.ID, len(ws))
		locs := make([]index.Location, len(ws))
		for i, w := range ws {
			ids[i], locs[i] = w.id, w.loc
		}
		bases, errs := m.r.RefTargets(ctx, sp, ids, locs)
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		for i, err := range errs {
			if err != nil {
				m.r.Logger().Warn("prune: delta or member blob cannot be read", "space", sp, "blob", ids[i].Short(), "err", err)
				m.frames[ws[i].ref] = chunk.ID{} // not read again
				continue
			}
			m.frames[ws[i].ref] = bases[i]
		}
	}
	n := 0
	for _, w := range deltas {
		base := m.frames[w.ref]
		if base.IsZero() {
			continue
		}
		member := w.loc.Flags&repo.FlagMember != 0
		if _, ok := m.used[w.space][base]; !ok {
			if member {
				m.markTarget(w.space, base)
			} else {
				m.mark(w.space, base)
			}
			n++
		} else if !member {
			m.mark(w.space, base) // a delta's base: not a group prune may regroup
		}
	}
	return n, nil
}
