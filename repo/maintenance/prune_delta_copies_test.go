package maintenance

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"memento/chunk"
	"memento/index"
	"memento/repo"
)

// deltaFrames is a pruneRepo whose RefTargets answers from a table of the
// base each delta copy (by pack) names; nothing else of it is called.
type deltaFrames struct {
	pruneRepo
	base map[[32]byte]chunk.ID // pack -> the base its delta names
}

func (d deltaFrames) RefTargets(_ context.Context, _ string, ids []chunk.ID, locs []index.Location) ([]chunk.ID, []error) {
	out := make([]chunk.ID, len(ids))
	for i, l := range locs {
		out[i] = d.base[l.Pack]
	}
	return out, make([]error, len(ids))
}

func (deltaFrames) Logger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// deltaInventory builds an inventory of one space from packs given as
// their action and blobs.
func deltaInventory(packs ...*prunePack) *pruneInventory {
	inv := &pruneInventory{where: map[string]map[chunk.ID]pruneBlobRef{"s": {}}, dups: map[string]map[chunk.ID][]pruneBlobRef{"s": {}}}
	for k, p := range packs {
		p.info.ID = [32]byte{byte(k + 1)}
		p.info.Space = "s"
		inv.packs = append(inv.packs, p)
		for j, b := range p.info.Blobs {
			ref := pruneBlobRef{int32(k), int32(j)}
			if _, ok := inv.where["s"][b.ID]; ok {
				inv.dups["s"][b.ID] = append(inv.dups["s"][b.ID], ref)
			} else {
				inv.where["s"][b.ID] = ref
			}
		}
	}
	return inv
}

func blobOf(id chunk.ID, delta bool) index.BlobInfo {
	b := index.BlobInfo{ID: id, Type: uint8(repo.DataBlob), Length: 100, RawLength: 32 << 10}
	if delta {
		b.Flags = repo.FlagDelta
	}
	return b
}

// TestPruneKeepFreshKeepsAWholeCopy: a blob first marked in phase 2 (the
// base of a delta a backup wrote meanwhile) whose only staying copy is a
// delta keeps back the pack of its whole copy: a base that stays only as a
// delta cannot be read.
func TestPruneKeepFreshKeepsAWholeCopy(t *testing.T) {
	b := chunk.ID{0xb}
	whole := &prunePack{action: pruneDelete, info: index.PackInfo{Blobs: []index.BlobInfo{blobOf(b, false)}}}
	delta := &prunePack{action: pruneKeep, info: index.PackInfo{Blobs: []index.BlobInfo{blobOf(b, true)}}}
	inv := deltaInventory(whole, delta)
	m := &pruneMarker{inv: inv, used: map[string]map[chunk.ID]struct{}{}, catching: true}
	m.mark("s", b)
	var kept []*prunePack
	keepFresh(inv, m, func(p *prunePack) { kept = append(kept, p) })
	if len(kept) != 1 || kept[0] != whole {
		t.Fatalf("kept back %d packs (whole copy's: %v); want the whole copy's pack only", len(kept), len(kept) == 1 && kept[0] == whole)
	}
	// A blob stored only as deltas keeps its staying delta copy: nothing kept back.
	x := chunk.ID{0xc}
	inv = deltaInventory(&prunePack{action: pruneKeep, info: index.PackInfo{Blobs: []index.BlobInfo{blobOf(x, true)}}})
	m = &pruneMarker{inv: inv, used: map[string]map[chunk.ID]struct{}{}, catching: true}
	m.mark("s", x)
	kept = nil
	keepFresh(inv, m, func(p *prunePack) { kept = append(kept, p) })
	if len(kept) != 0 {
		t.Fatalf("kept back %d packs for a delta that stays", len(kept))
	}
}

// TestPruneKeptDeltaBasesByCopy: two copies of one delta in kept packs
// that name two bases (two backups with other parents each stored it) keep
// both bases, and a copy that appears later (phase 2) gets its frame read.
func TestPruneKeptDeltaBasesByCopy(t *testing.T) {
	x, b1, b2, b3 := chunk.ID{0x1}, chunk.ID{0x2}, chunk.ID{0x3}, chunk.ID{0x4}
	p0 := &prunePack{action: pruneKeep, info: index.PackInfo{Blobs: []index.BlobInfo{blobOf(x, true)}}}
	p1 := &prunePack{action: pruneKeep, info: index.PackInfo{Blobs: []index.BlobInfo{blobOf(x, true)}}}
	inv := deltaInventory(p0, p1)
	r := deltaFrames{base: map[[32]byte]chunk.ID{{1}: b1, {2}: b2, {3}: b3}}
	m := &pruneMarker{r: r, inv: inv, used: map[string]map[chunk.ID]struct{}{}}
	n, err := m.markKeptDeltaBases(context.Background())
	if err != nil || n != 2 {
		t.Fatalf("markKeptDeltaBases: %d newly marked, %v; want 2", n, err)
	}
	for _, b := range []chunk.ID{b1, b2} {
		if _, ok := m.used["s"][b]; !ok {
			t.Errorf("base %s not marked", b.Short())
		}
	}
	// Phase 2: a pack written meanwhile holds a third copy naming b3.
	p2 := &prunePack{action: pruneKeep, info: index.PackInfo{ID: [32]byte{3}, Space: "s", Blobs: []index.BlobInfo{blobOf(x, true)}}}
	inv.packs = append(inv.packs, p2)
	inv.dups["s"][x] = append(inv.dups["s"][x], pruneBlobRef{2, 0})
	m.catching = true
	if n, err := m.markKeptDeltaBases(context.Background()); err != nil || n != 1 {
		t.Fatalf("phase 2 markKeptDeltaBases: %d newly marked, %v; want 1", n, err)
	}
	if _, ok := m.used["s"][b3]; !ok || len(m.fresh) != 1 || m.fresh[0].id != b3 {
		t.Fatalf("phase 2: base of the new copy marked %v, fresh %v; want b3 marked and fresh", ok, m.fresh)
	}
}

// TestPruneUsedDeltaBasesOfDirectMarks: a used blob stored only as a delta
// that no tree walk marked (a WAL archive's chunk equal to a delta blob)
// keeps its base, in a pack that would otherwise go.
func TestPruneUsedDeltaBasesOfDirectMarks(t *testing.T) {
	x, b := chunk.ID{0x1}, chunk.ID{0x2}
	p0 := &prunePack{action: pruneRepack, info: index.PackInfo{Blobs: []index.BlobInfo{blobOf(x, true)}}}
	p1 := &prunePack{action: pruneDelete, info: index.PackInfo{Blobs: []index.BlobInfo{blobOf(b, false)}}}
	inv := deltaInventory(p0, p1)
	m := &pruneMarker{r: deltaFrames{base: map[[32]byte]chunk.ID{{1}: b}}, inv: inv,
		used: map[string]map[chunk.ID]struct{}{}, based: map[string]map[chunk.ID]bool{}}
	m.mark("s", x) // as prune marks a WAL archive's chunks
	if err := m.markUsedDeltaBases(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, ok := m.used["s"][b]; !ok {
		t.Fatal("the base of a used delta marked directly is not marked")
	}
	// A second pass reads nothing again and marks nothing new.
	before := len(m.used["s"])
	if err := m.markUsedDeltaBases(context.Background()); err != nil || len(m.used["s"]) != before {
		t.Fatalf("second pass: %v, %d used (was %d)", err, len(m.used["s"]), before)
	}
}
