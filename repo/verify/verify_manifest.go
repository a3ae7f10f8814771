package verify

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/dustin/go-humanize/english"

	"memento/chunk"
	"memento/index"
	"memento/repo"
	"memento/walreplay"
)

// WalkFile is a file of a snapshot with its path relative to the root.
type WalkFile struct {
	Rel  string
	Node *repo.Node
}

// SnapWalk is what L1 learns about a snapshot by walking its trees, and what
// the deeper levels build on.
type SnapWalk struct {
	sn      *repo.Snapshot
	space   string // storage space
	Files   []WalkFile
	types   map[string]string // rel path -> node type, for layout checks
	locs    map[chunk.ID]index.Location
	Missing map[chunk.ID]bool   // data chunks the index does not know
	bad     map[[32]byte]string // packs found missing or truncated
	Broken  map[string]bool     // files that cannot be read whole (missing chunk, bad pack)
	trees   int                 // tree blobs read
	treeIDs []chunk.ID          // every tree read, so their packs are checked too
	BadTree bool                // a tree could not be read
	counts  struct{ files, dirs, links, bytes, chunks uint64 }
	relay   *relay // L2 of several snapshots: when its stream may start (nil: now)
}

// maxFileFindings bounds per-file lines for one kind of damage.
const maxFileFindings = 20

// Manifest is L1: the manifest's signature (checked by loadSnapshotFile) and
// structure, every tree read and verified (keyed BLAKE3 up to the signed
// root, so the tree walk is the Merkle proof), the sizes in the manifest
// against the trees, every chunk in the index, and every pack holding them
// present with the size the index says.
func (v *Verifier) Manifest(ctx context.Context, sn *repo.Snapshot, vd *Verdict) (*SnapWalk, error) {
	what := "manifest " + sn.ShortID()
	w := &SnapWalk{sn: sn, space: repo.StorageSpace(sn.Space), types: map[string]string{}, locs: map[chunk.ID]index.Location{},
		Missing: map[chunk.ID]bool{}, bad: map[[32]byte]string{}, Broken: map[string]bool{}}
	checkManifestFields(sn, vd)
	if err := v.walkTrees(ctx, w, sn.Root, "", vd); err != nil {
		return nil, err
	}
	s := sn.Summary
	c := w.counts
	if !w.BadTree && (c.dirs != s.Dirs || c.links != s.Symlinks || c.bytes != s.Bytes || c.chunks != s.Chunks || c.files > s.Files) {
		vd.fail(L1, what, "sizes do not match the trees: manifest says %d files, %d dirs, %d symlinks, %d bytes, %d chunks; trees hold %d, %d, %d, %d, %d",
			s.Files, s.Dirs, s.Symlinks, s.Bytes, s.Chunks, c.files, c.dirs, c.links, c.bytes, c.chunks)
	}

	// Every chunk in the index, in one batch.
	seen := map[chunk.ID]bool{}
	var ids []chunk.ID
	for _, f := range w.Files {
		for _, id := range f.Node.Content {
			if !seen[id] {
				seen[id] = true
				ids = append(ids, id)
			}
		}
	}
	found, err := v.r.Index().Lookup(w.space, ids)
	if err != nil {
		return nil, fmt.Errorf("local index %s: %w", v.r.Index().Path(), err)
	}
	for id, l := range found {
		w.locs[id] = l
	}
	for _, id := range ids {
		if _, ok := found[id]; !ok {
			w.Missing[id] = true
		}
	}

	// Every pack present, with the size the index says, and every blob inside it.
	if err := v.packsListed(ctx); err != nil {
		return nil, err
	}
	perPack := map[[32]byte]int{}
	checkPack := func(id chunk.ID, l index.Location) {
		if _, done := w.bad[l.Pack]; done {
			return
		}
		size, ok := v.packSizes[l.Pack]
		switch {
		case !ok:
			w.bad[l.Pack] = "missing from the repository"
		case v.indexed[l.Pack] != 0 && size != v.indexed[l.Pack]:
			w.bad[l.Pack] = fmt.Sprintf("%d bytes, the index says %d (truncated or replaced)", size, v.indexed[l.Pack])
		case int64(l.Offset)+int64(l.Length) > size:
			w.bad[l.Pack] = fmt.Sprintf("%d bytes, shorter than blob %s at %d+%d (truncated)", size, id.Short(), l.Offset, l.Length)
		}
	}
	for id, l := range w.locs {
		perPack[l.Pack]++
		checkPack(id, l)
	}
	// Tree blobs were read already (so they are intact), but a pack holding
	// only trees can still have lost its header or trailer.
	tlocs, err := v.r.Index().Lookup(w.space, w.treeIDs)
	if err != nil {
		return nil, fmt.Errorf("local index %s: %w", v.r.Index().Path(), err)
	}
	for id, l := range tlocs {
		checkPack(id, l)
	}
	badIDs := make([][32]byte, 0, len(w.bad))
	for p := range w.bad {
		badIDs = append(badIDs, p)
	}
	sort.Slice(badIDs, func(i, j int) bool { return repo.ShortHex(badIDs[i]) < repo.ShortHex(badIDs[j]) })
	for _, p := range badIDs {
		vd.fail(L1, "pack "+repo.ShortHex(p), "%s (holds %s of this snapshot)", w.bad[p], english.Plural(perPack[p], "chunk", ""))
	}
	if len(w.Missing) > 0 {
		vd.fail(L1, what, "%s %s not in the index", english.Plural(len(w.Missing), "chunk", ""), english.PluralWord(len(w.Missing), "is", "are"))
	}
	n := 0
	for _, f := range w.Files {
		var lost int
		for _, id := range f.Node.Content {
			if w.Missing[id] || w.bad[w.locs[id].Pack] != "" {
				lost++
			}
		}
		if lost == 0 {
			continue
		}
		w.Broken[f.Rel] = true
		if n++; n <= maxFileFindings {
			vd.fail(L1, "file "+f.Rel, "%d of its %s %s missing or in a damaged pack", lost, english.Plural(len(f.Node.Content), "chunk", ""), english.PluralWord(lost, "is", "are"))
		}
	}
	if n > maxFileFindings {
		vd.fail(L1, what, "%s more with missing chunks", english.Plural(n-maxFileFindings, "file", ""))
	}
	vd.Figures["trees"] = float64(w.trees)
	vd.Figures["files"] = float64(c.files)
	vd.Figures["chunks"] = float64(len(ids))
	vd.Figures["bytes"] = float64(c.bytes)
	vd.Figures["packs"] = float64(len(perPack))
	vd.note("L1: %s, %s, %s in %s", english.Plural(w.trees, "tree", ""), english.Plural(int(c.files), "file", ""),
		english.Plural(len(ids), "distinct chunk", ""), english.Plural(len(perPack), "pack", ""))
	return w, nil
}

// checkManifestFields checks what the signature cannot: that the signed
// values make sense together.
func checkManifestFields(sn *repo.Snapshot, vd *Verdict) {
	what := "manifest " + sn.ShortID()
	if sn.Root == (chunk.ID{}) {
		vd.fail(L1, what, "no root tree")
	}
	if sn.Time.IsZero() || sn.Time.After(time.Now().Add(24*time.Hour)) {
		vd.fail(L1, what, "implausible time %s", sn.Time.Format(time.RFC3339))
	}
	if sn.Space == "" && sn.Engram != nil {
		vd.fail(L1, what, "Engram WAL information on a snapshot of plain paths")
	}
	for _, d := range sn.Damage() {
		vd.fail(L1, what, "marked damaged at backup: %s", d)
	}
	if e := sn.Engram; e != nil {
		switch {
		case e.WALEnd.Seq > 0 && e.WALFirst.Seq > e.WALEnd.Seq:
			vd.fail(L1, what, "WAL range %d..%d runs backwards", e.WALFirst.Seq, e.WALEnd.Seq)
		case e.WALStart.Seq > e.WALEnd.Seq:
			vd.fail(L1, what, "WAL position before the tiers (%d) is after the WAL end (%d)", e.WALStart.Seq, e.WALEnd.Seq)
		case e.Checkpoint.Seq > e.WALEnd.Seq:
			vd.fail(L1, what, "checkpoint %d is after the WAL end %d", e.Checkpoint.Seq, e.WALEnd.Seq)
		}
		if e.StateDigest != "" {
			if b, err := hex.DecodeString(e.StateDigest); err != nil || len(b) != 32 {
				vd.fail(L1, what, "state digest %q is not 64 hex digits", e.StateDigest)
			}
		}
		switch {
		case !walreplay.KnownDigestKind(e.StateDigestKind):
			vd.fail(L1, what, "state digest kind %q is unknown to this binary (it knows v1 and %s)", e.StateDigestKind, walreplay.DigestKindLtHash)
		case e.StateDigestKind != "" && e.StateDigest == "":
			vd.fail(L1, what, "state digest kind %q without a state digest", e.StateDigestKind)
		}
	}
}

// walkTrees reads every tree below id, depth first, recording files in
// order. A tree that cannot be read is a finding, and the walk goes on with
// its siblings so that one damaged directory does not hide the rest.
func (v *Verifier) walkTrees(ctx context.Context, w *SnapWalk, id chunk.ID, rel string, vd *Verdict) error {
	t, err := v.r.LoadTree(ctx, w.sn.Space, id)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		what := "tree " + id.Short() + " (" + repo.DisplayRel(rel) + ")"
		if errors.Is(err, repo.ErrNotFound) {
			vd.fail(L1, what, "not in the index")
		} else {
			vd.fail(L1, what, "%v", err)
		}
		w.Broken[rel] = true
		w.BadTree = true
		return nil
	}
	w.trees++
	w.treeIDs = append(w.treeIDs, id)
	for _, n := range t.Nodes {
		nrel := repo.JoinRel(rel, n.Name)
		w.types[nrel] = n.Type
		switch n.Type {
		case repo.NodeDir:
			w.counts.dirs++
			if err := v.walkTrees(ctx, w, *n.Subtree, nrel, vd); err != nil {
				return err
			}
		case repo.NodeSymlink:
			w.counts.links++
		case repo.NodeFile:
			w.counts.files++
			w.counts.bytes += n.Size
			w.counts.chunks += uint64(len(n.Content))
			w.Files = append(w.Files, WalkFile{Rel: nrel, Node: n})
		}
	}
	return nil
}
