package maintenance

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"memento/chunk"
	"memento/index"
	"memento/repo"
)

// planRegroup decides, in pruneDecide once every used blob has its owned
// copy, which groups are regrouped, and forces the packs that hold them
// to be repacked. A group stays whole while any one of its files is used:
// without regrouping, the dead files of groups accumulate over edit
// cycles (docs/benchmarks.md, "Issue 18, session 20: prune regroups the
// live members of mostly dead groups"). The rule is the pack rule, with a
// group's dead files counted as unused bytes of its pack: the share of a
// group's plaintext no live member uses, times the group's stored length.
// A pack whose unused bytes so counted exceed maxUnused of its blob bytes
// is repacked, and every group it owns that has a dead file is regrouped
// then, as is every group of a pack repacked for any other reason (its
// live members are copied anyway). So the dead bytes of groups are bounded
// as those of packs are (maxUnused of each pack), and a prune copies a
// pack only when it has that much to free: regrouping each group on its own
// share forced the repack of the whole pack holding it (group and members
// are in one pack), and with edits spread over the groups that was every
// pack at nearly every prune (docs/benchmarks.md, "Issue 18, session 21:
// init --format, and a cheaper regroup rule").
//
// Regrouping reads the live members (their plaintext, through the group)
// and writes them as members of new groups, as a backup writes them, in
// the repack of phase 1; the old group is no longer used and goes with the
// packs that hold it. A group regrouped is taken out of m.used (unmarked)
// and owned by no pack, and the packs holding its live members are
// repacked too (their copies name the old group). Whatever marks it again
// (a member in a pack that stays names it: markKeptDeltaBases; in phase 2,
// a snapshot saved meanwhile uses a dead member of it, or the group
// itself) marks it as new, and then it stays: in phase 1 the next
// pruneDecide cancels its regrouping; in phase 2 keepFresh keeps back its
// pack (the members' new copies are then only duplicates). Only a group
// nothing marked but frames (m.targets) is regrouped, and only one held by
// an indexed pack (its members' plaintext is read through the index), and
// not when prune repacks nothing (maxUnused 1: a full repository).
func (pl *prunePlan) planRegroup(maxUnused float64) {
	inv, m, res := pl.inv, pl.m, pl.res
	pl.regroup, pl.regroupStored = map[string]map[chunk.ID]bool{}, map[string]int64{}
	res.GroupsRegrouped, res.BytesRegrouped = 0, 0
	if maxUnused >= 1 {
		return
	}
	if pl.unmarked == nil {
		pl.unmarked, pl.cancelled = map[string]map[chunk.ID]bool{}, map[string]map[chunk.ID]bool{}
	}
	type group struct {
		space   string
		id      chunk.ID
		live    int64 // plaintext bytes of its owned members
		members []pruneBlobRef
		owner   pruneBlobRef // its owned copy, when it may be regrouped (candidate)
		dead    int64        // its stored bytes times its dead share, when a candidate
	}
	groups := map[string]map[chunk.ID]*group{}
	var order []*group // deterministic decisions
	for k, p := range inv.packs {
		for _, j := range p.owned {
			b := p.info.Blobs[j]
			if b.Flags&repo.FlagMember == 0 {
				continue
			}
			ref := pruneBlobRef{int32(k), j}
			g := m.frames[ref]
			if g.IsZero() {
				continue
			}
			sp := p.info.Space
			if groups[sp] == nil {
				groups[sp] = map[chunk.ID]*group{}
			}
			e := groups[sp][g]
			if e == nil {
				e = &group{space: sp, id: g, owner: pruneBlobRef{pack: -1}}
				groups[sp][g] = e
				order = append(order, e)
			}
			e.live += int64(b.RawLength)
			e.members = append(e.members, ref)
		}
	}
	pl.dropOrphanGroups(func(sp string, g chunk.ID) bool { return groups[sp][g] != nil })
	regroup := func(e *group) {
		setID(pl.regroup, e.space, e.id)
		res.GroupsRegrouped++
		res.BytesRegrouped += e.live
		pl.regroupStored[e.space] += regroupedStored(inv, e.space, e.id, e.live)
		for _, ref := range e.members {
			inv.packs[ref.pack].force = true
		}
		for _, ref := range inv.copies(e.space, e.id) {
			inv.packs[ref.pack].force = true
		}
	}
	// Candidates: the groups with a dead file that may be regrouped, and
	// their dead bytes per owning pack. Groups unmarked by an earlier
	// decision of this prune are regrouped still, unless marked again.
	groupDead := map[int32]int64{}
	var candidates []*group
	for _, e := range order {
		sp, g := e.space, e.id
		if pl.cancelled[sp][g] {
			continue
		}
		_, used := m.used[sp][g]
		if pl.unmarked[sp][g] {
			if used { // marked again since: it stays
				delete(pl.unmarked[sp], g)
				setID(pl.cancelled, sp, g)
				continue
			}
			regroup(e)
			continue
		}
		if !used || !m.targets[sp][g] {
			continue
		}
		owner, ok := ownedCopy(inv, sp, g)
		if !ok {
			continue
		}
		p, b := inv.blob(owner)
		if len(p.files) == 0 || b.RawLength == 0 || e.live >= int64(b.RawLength) {
			continue
		}
		e.owner = owner
		e.dead = int64(float64(b.Length) * float64(int64(b.RawLength)-e.live) / float64(b.RawLength))
		groupDead[owner.pack] += e.dead
		candidates = append(candidates, e)
	}
	// The packs repacked, until regrouping forces no further one: every
	// candidate of a repacked pack is regrouped.
	repacked := func(k int32) bool {
		p := inv.packs[k]
		return len(p.owned) > 0 && (p.force || p.blobB > 0 && float64(p.blobB-p.ownedB+groupDead[k]) > maxUnused*float64(p.blobB))
	}
	for changed := true; changed; {
		changed = false
		for _, e := range candidates {
			if e.owner.pack < 0 || !repacked(e.owner.pack) {
				continue
			}
			p, b := inv.blob(e.owner)
			p.force = true
			delete(m.used[e.space], e.id)
			setID(pl.unmarked, e.space, e.id)
			p.owned = slices.DeleteFunc(p.owned, func(j int32) bool { return j == e.owner.blob })
			p.ownedB -= int64(b.Length)
			groupDead[e.owner.pack] -= e.dead
			res.BlobsUsed--
			e.owner.pack = -1
			regroup(e)
			changed = true
		}
	}
}

// dropOrphanGroups takes out of m.used (and of their packs' owned blobs)
// the groups that only member copies marked (m.targets), none of them
// owned (named: whether an owned member copy names the group), whose
// owned copy is in a pack no index lists: a stopped prune's new groups.
// The stopped run wrote each with its members in a pack it left unindexed;
// the rerun owns the members' indexed copies (betterPack), which name the
// old groups, but marked the new groups too, through the members' copies
// in that pack (markBases marks the frames of every copy), and owned them
// (their only copy). It copied them, so its packer had their IDs claimed
// when it regrouped the same old groups again into groups of the same IDs
// (same members in the same order), and regrouper.store stored those files
// whole, never to be regrouped again (gosrc's net/: +12 % of packs after
// one stopped prune; TestPruneRegroupAfterAStoppedPrune). Dropped, such a
// group goes with its pack, and the regrouping writes it again, whole,
// with its members. What needs it after all marks it again, as for the
// groups regrouped: an owned member copy that names it in a later
// decision (it is owned again, here), a member copy in a pack that stays
// (markKeptDeltaBases; then it stays), or in phase 2 what was saved
// meanwhile (keepFresh keeps back its pack).
func (pl *prunePlan) dropOrphanGroups(named func(space string, g chunk.ID) bool) {
	inv, m := pl.inv, pl.m
	if pl.dropped == nil {
		pl.dropped = map[string]map[chunk.ID]bool{}
	}
	for sp, ids := range pl.dropped {
		for g := range ids {
			_, used := m.used[sp][g]
			switch {
			case used: // marked again since: it stays
				delete(ids, g)
				setID(pl.cancelled, sp, g)
			case named(sp, g): // an owned member copy names it now
				delete(ids, g)
				setID(pl.cancelled, sp, g)
				m.markUsed(sp, g)
				pl.own(sp, g)
			}
		}
	}
	for sp, ts := range m.targets {
		for g := range ts {
			if _, used := m.used[sp][g]; !used || pl.cancelled[sp][g] || named(sp, g) {
				continue
			}
			owner, ok := ownedCopy(inv, sp, g)
			if !ok {
				continue
			}
			p, b := inv.blob(owner)
			if len(p.files) > 0 {
				continue // indexed: not a stopped prune's
			}
			delete(m.used[sp], g)
			setID(pl.dropped, sp, g)
			p.owned = slices.DeleteFunc(p.owned, func(j int32) bool { return j == owner.blob })
			p.ownedB -= int64(b.Length)
			pl.res.BlobsUsed--
		}
	}
}

// regroupedStored estimates what the new groups of a regrouped group's live
// members (live plaintext bytes) store: the old group's stored length times
// its live share, or the plaintext when no pack holds it whole. The dry
// run's bytes_after counts it (pruneDecide): without it, a prune that
// regroups promised to free what the new groups take back (on Go's src/,
// 22 MB said, 1.8 MB freed).
func regroupedStored(inv *pruneInventory, space string, id chunk.ID, live int64) int64 {
	for _, ref := range inv.copies(space, id) {
		if _, b := inv.blob(ref); repo.StoredWhole(b.Flags) && b.RawLength > 0 {
			return int64(float64(b.Length) * min(1, float64(live)/float64(b.RawLength)))
		}
	}
	return live
}

func setID(s map[string]map[chunk.ID]bool, space string, id chunk.ID) {
	if s[space] == nil {
		s[space] = map[chunk.ID]bool{}
	}
	s[space][id] = true
}

// ownedCopy returns the copy of id stored whole that a pack owns.
func ownedCopy(inv *pruneInventory, space string, id chunk.ID) (pruneBlobRef, bool) {
	for _, ref := range inv.copies(space, id) {
		p, b := inv.blob(ref)
		if repo.StoredWhole(b.Flags) && slices.Contains(p.owned, ref.blob) {
			return ref, true
		}
	}
	return pruneBlobRef{}, false
}

// regrouper collects the plaintext of the live members of regrouped
// groups of one space, from the packs being repacked, and stores them as
// a backup stores small files (repo/backup/group.go): a group of about
// repo.GroupSize bytes compressed once, its members in the same pack
// (Packer.AddGroup); a group of one file is that file's blob alone.
type regrouper struct {
	pk   *repo.Packer
	key  chunk.Key
	pipe *chunk.Pipeline
	size int

	mu      sync.Mutex
	buf     []byte
	members []repo.GroupMember
	stored  []byte
}

func newRegrouper(r pruneRepo, pk *repo.Packer, space string, pipe *chunk.Pipeline) *regrouper {
	size := repo.GroupSize(r.Config().PackSize)
	return &regrouper{pk: pk, key: r.ChunkKey(space), pipe: pipe, size: size, buf: make([]byte, 0, size+64<<10)}
}

// add appends member id's plaintext data (valid during the call only).
func (g *regrouper) add(id chunk.ID, data []byte) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.buf) > 0 && len(g.buf)+len(data) > g.size+g.size/4 {
		if err := g.store(); err != nil {
			return err
		}
	}
	g.members = append(g.members, repo.GroupMember{ID: id, Offset: uint32(len(g.buf)), Length: uint32(len(data))})
	g.buf = append(g.buf, data...)
	if len(g.buf) >= g.size || len(g.members) >= repo.GroupMaxMembers {
		return g.store()
	}
	return nil
}

// flush stores what add collected.
func (g *regrouper) flush() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.store()
}

func (g *regrouper) store() error {
	defer func() { g.buf, g.members = g.buf[:0], g.members[:0] }()
	if len(g.members) == 0 {
		return nil
	}
	gid := g.key.Sum(g.buf)
	if len(g.members) > 1 && !g.pk.Claim(gid) {
		// This packer stores a blob of the group's ID already: a file
		// equal to these files together, or the same group, written by an
		// interrupted prune in a pack it left unindexed, that a member
		// copy in a pack that stays keeps (dropOrphanGroups drops the
		// others).
		// A second copy in one pack makes its header and index disagree
		// (check: an error), and the blob claimed may be no whole copy
		// (a member, a delta) that members could name: each file is
		// stored whole instead (rare).
		for _, m := range g.members {
			data := g.buf[m.Offset : m.Offset+m.Length]
			stored, compressed := chunk.Compress(nil, data, chunk.DefaultLevel)
			var flags uint8
			if compressed {
				flags = repo.FlagCompressed
			} else {
				stored = data
			}
			if err := g.pk.Add(repo.DataBlob, m.ID, flags, len(data), stored); err != nil {
				return err
			}
		}
		return nil
	}
	stored, compressed := g.pipe.CompressGroup(g.stored, g.buf)
	if compressed {
		g.stored = stored[:0]
	}
	var flags uint8
	if compressed {
		flags = repo.FlagCompressed
	}
	if len(g.members) == 1 {
		return g.pk.Add(repo.DataBlob, g.members[0].ID, flags, len(g.buf), stored)
	}
	return g.pk.AddGroup(gid, flags, len(g.buf), stored, g.members)
}

// regroupMembers reads the plaintext of the owned members of pack p (read
// whole: b) that are to be regrouped (locs, in pack order) through the
// ordinary read path (the member is opened and checked against its ID)
// and hands them to rg.
func regroupMembers(ctx context.Context, r pruneRepo, pk *repo.Packer, rg *regrouper, p *prunePack, b []byte, ids []chunk.ID, locs []index.Location) error {
	return streamPacked(ctx, r, p.info.Space, b, ids, locs, false, func(sb repo.StreamBlob) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if sb.Err != nil {
			return fmt.Errorf("regroup: %w (run 'memento check --read-data'; nothing was deleted)", sb.Err)
		}
		if !pk.Claim(sb.ID) {
			return nil
		}
		return rg.add(sb.ID, sb.Data)
	})
}
