package maintenance

import (
	"context"
	"errors"
	"sort"

	"memento/chunk"
	"memento/index"
	"memento/repo"
)

// checkDeltaBases checks that every delta blob (format 4) and member blob
// (format 6) a snapshot or a WAL archive uses and no pack holds whole names
// a base or a group that some pack holds whole: a delta without its base,
// a member without its group, cannot be read. headers are the packs'
// headers, used the data blobs the snapshots' files and the archived WAL
// segments list, per storage space.
func checkDeltaBases(ctx context.Context, r checkRepo, rep *CheckReport, headers map[[32]byte]index.PackInfo, used map[string]map[chunk.ID]struct{}) error {
	type copies struct {
		whole bool
		delta []index.Location
	}
	where := map[string]map[chunk.ID]*copies{}
	anyDelta := false
	for _, pi := range headers {
		m := where[pi.Space]
		if m == nil {
			m = map[chunk.ID]*copies{}
			where[pi.Space] = m
		}
		for _, b := range pi.Blobs {
			c := m[b.ID]
			if c == nil {
				c = &copies{}
				m[b.ID] = c
			}
			if repo.StoredWhole(b.Flags) {
				c.whole = true
				continue
			}
			anyDelta = true
			c.delta = append(c.delta, index.Location{Pack: pi.ID, Offset: b.Offset, Length: b.Length, RawLength: b.RawLength, Type: b.Type, Flags: b.Flags})
		}
	}
	if !anyDelta {
		return nil
	}
	spaces := make([]string, 0, len(used))
	for sp := range used {
		spaces = append(spaces, sp)
	}
	sort.Strings(spaces)
	deltas, members := 0, 0
	for _, sp := range spaces {
		var ids []chunk.ID
		var locs []index.Location
		for id := range used[sp] {
			if c := where[sp][id]; c != nil && !c.whole {
				for _, l := range c.delta {
					ids = append(ids, id)
					locs = append(locs, l)
				}
			}
		}
		for _, l := range locs {
			if l.Flags&repo.FlagMember != 0 {
				members++
			} else {
				deltas++
			}
		}
		bases, errs := r.RefTargets(ctx, sp, ids, locs)
		if err := ctx.Err(); err != nil {
			return err
		}
		var found []CheckFinding
		for i, err := range errs {
			what := "data blob " + ids[i].Short()
			switch {
			case err != nil && !errors.Is(err, repo.ErrCorrupt) && !errors.Is(err, repo.ErrNotFound):
				return err
			case err != nil:
				found = append(found, CheckFinding{SevError, what, refKind(locs[i]) + " blob in pack " + repo.ShortHex(locs[i].Pack) + " cannot be read: " + err.Error()})
			case where[sp][bases[i]] == nil:
				found = append(found, CheckFinding{SevError, what, refTargetName(locs[i]) + " " + bases[i].Short() + " is in no pack: chunk " + ids[i].Short() + " cannot be read"})
			case !where[sp][bases[i]].whole:
				found = append(found, CheckFinding{SevError, what, refTargetName(locs[i]) + " " + bases[i].Short() + " is stored only as a delta or a member (it must be stored whole): chunk " + ids[i].Short() + " cannot be read"})
			}
		}
		sort.Slice(found, func(i, j int) bool { return found[i].What+found[i].Message < found[j].What+found[j].Message })
		for _, f := range found {
			rep.add(f.Severity, f.What, "%s", f.Message)
		}
	}
	rep.Figures["delta_blobs_used"] = float64(deltas)
	rep.Figures["member_blobs_used"] = float64(members)
	return nil
}

// refKind names a delta or member blob's kind, refTargetName what its
// frame names.
func refKind(l index.Location) string {
	if l.Flags&repo.FlagMember != 0 {
		return "member"
	}
	return "delta"
}

func refTargetName(l index.Location) string {
	if l.Flags&repo.FlagMember != 0 {
		return "group"
	}
	return "delta base"
}
