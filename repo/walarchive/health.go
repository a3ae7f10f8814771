package walarchive

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
	"memento/engram"
	"memento/repo"
	"memento/walreplay"
)

// WALDamage is an archived WAL segment whose data is not all in the
// repository (its pack lost, truncated, or its chunks damaged): no
// point-in-time recovery can replay through it.
type WALDamage struct {
	Segment   string `json:"segment"`
	Compacted bool   `json:"compacted,omitempty"`
	FirstSeq  uint64 `json:"first_seq"`
	LastSeq   uint64 `json:"last_seq"`
	FirstTS   int64  `json:"first_ts"`
	LastTS    int64  `json:"last_ts"`
	Missing   int    `json:"missing_chunks"`
	Chunks    int    `json:"chunks"`
	Reason    string `json:"reason"`
}

// String names the segment, its sequences and what is wrong, for one line.
func (d WALDamage) String() string {
	return fmt.Sprintf("segment %s (seq %d..%d, %s .. %s): %s", d.Segment, d.FirstSeq, d.LastSeq,
		walreplay.FormatTime(d.FirstTS), walreplay.FormatTime(d.LastTS), d.Reason)
}

// FindDamage returns the records of arch that cannot be read back: a chunk
// the local index does not place, placed in a pack that packExists rejects,
// or listed in bad (check --read-data). One index transaction for all chunks.
func FindDamage(r Reader, space string, arch *WALArchive, packExists func([32]byte) bool, bad map[chunk.ID]string) ([]WALDamage, error) {
	recs := arch.Segments()
	var ids []chunk.ID
	for _, rec := range recs {
		for _, c := range rec.Chunks {
			ids = append(ids, c.ID)
		}
	}
	locs, err := r.Index().LookupAll(repo.StorageSpace(space), ids)
	if err != nil {
		return nil, fmt.Errorf("local index %s: %w", r.Index().Path(), err)
	}
	var out []WALDamage
	for _, rec := range recs {
		missing := 0
		reason := ""
		for _, c := range rec.Chunks {
			ok := false
			for _, l := range locs[c.ID] {
				if packExists == nil || packExists(l.Pack) {
					ok = true
					break
				}
			}
			if _, damaged := bad[c.ID]; ok && !damaged {
				continue
			}
			missing++
			if reason != "" {
				continue
			}
			switch ls := locs[c.ID]; {
			case ok:
				reason = fmt.Sprintf("chunk %s is damaged (%s)", c.ID.Short(), bad[c.ID])
			case len(ls) > 0:
				reason = fmt.Sprintf("chunk %s is in pack %s, which is missing from the repository", c.ID.Short(), repo.ShortHex(ls[0].Pack))
			default:
				reason = fmt.Sprintf("chunk %s is in no pack of the repository", c.ID.Short())
			}
		}
		if missing == 0 {
			continue
		}
		out = append(out, WALDamage{Segment: rec.Name, Compacted: rec.Compacted, FirstSeq: rec.FirstSeq, LastSeq: rec.LastSeq,
			FirstTS: rec.FirstTS, LastTS: rec.LastTS, Missing: missing, Chunks: len(rec.Chunks),
			Reason: fmt.Sprintf("%d of its %s cannot be read: %s", missing, english.Plural(len(rec.Chunks), "chunk", ""), reason)})
	}
	return out, nil
}

// DropDamaged removes damaged records from the archive position, so that
// the ranges computed from it end before them and a restore never starts
// replaying what it cannot read, and remembers them in Broken.
func (w *WALArchive) DropDamaged(dmg []WALDamage) {
	for _, d := range dmg {
		delete(w.recs, walKey{d.Segment, d.Compacted})
	}
	w.broken = append(w.broken, dmg...)
}

// Broken returns the archived segments left out of the ranges because their
// data cannot be read (set by PITRRanges), oldest first.
func (w *WALArchive) Broken() []WALDamage {
	return slices.Clone(w.broken)
}

// ArchiveSpaces returns the spaces that have a WAL archive: a wal/
// directory is named by a keyed hash of its space, matched against the
// spaces the index and the snapshots know, else read from one of its files.
func ArchiveSpaces(ctx context.Context, r Reader) ([]string, error) {
	dirs := map[string]string{} // wal/<tag> -> one file in it
	if err := r.Backend().List(ctx, DirWAL, func(name string, size int64) error {
		parts := strings.SplitN(name, "/", 3)
		if len(parts) == 3 {
			dirs[parts[0]+"/"+parts[1]] = name
		}
		return nil
	}); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("list WAL archive: %w", err)
	}
	if len(dirs) == 0 {
		return nil, nil
	}
	cands, err := r.Index().Spaces()
	if err != nil {
		return nil, fmt.Errorf("local index %s: %w", r.Index().Path(), err)
	}
	sns, err := r.Snapshots(ctx)
	if err != nil {
		return nil, err
	}
	for _, sn := range sns {
		cands = append(cands, sn.Space)
	}
	var out []string
	for _, sp := range cands {
		if engram.ValidSpaceID(sp) != nil {
			continue
		}
		if _, ok := dirs[SpaceDir(r, sp)]; ok {
			delete(dirs, SpaceDir(r, sp))
			out = append(out, sp)
		}
	}
	for _, file := range dirs {
		var f ArchiveFile
		if err := r.LoadFile(ctx, file, KindWALArchive, &f); err == nil && engram.ValidSpaceID(f.Space) == nil {
			out = append(out, f.Space)
		}
	}
	sort.Strings(out)
	return slices.Compact(out), nil
}

// SnapshotWALEnd returns the highest WAL end sequence any snapshot of the
// space records (0 when none does).
func SnapshotWALEnd(ctx context.Context, r Reader, space string) (uint64, error) {
	all, err := r.SnapshotsOf(ctx, space)
	if err != nil {
		return 0, err
	}
	var end uint64
	for _, sn := range all {
		if sn.Space == space && sn.Engram != nil {
			end = max(end, sn.Engram.WALEnd.Seq)
		}
	}
	return end, nil
}
