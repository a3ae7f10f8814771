package maintenance

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"slices"

	"memento/chunk"

	"memento/repo"
)

// TagOptions say which snapshots `memento tag` changes and how.
type TagOptions struct {
	Refs []string // snapshot IDs, unique prefixes or "latest"
	Edit repo.TagEdit
}

// TagChange is one snapshot whose tags were changed: the manifest Old was
// replaced by New.
type TagChange struct {
	Old  string   `json:"old"`
	New  string   `json:"new"`
	Tags []string `json:"tags"`
}

// TagResult is what Retag did: the snapshots it rewrote, and those whose
// tags were already as asked (left alone).
type TagResult struct {
	Changed   []TagChange `json:"changed"`
	Unchanged []string    `json:"unchanged"`
}

// Retag changes the user tags of snapshots. A manifest is immutable and
// content-addressed, so each changed snapshot is written anew (same tree,
// time, host, paths and WAL positions, a new ID) with an "original:" tag
// naming the snapshot it replaces (the first one, when it was retagged
// before), then a "tag" audit record names the old ID, then the old
// manifest is deleted: a crash in between leaves both, never neither.
// A damage marker of check --repair is carried over to the new ID. System
// tags (damage marks, identity, timeline, original) are kept; the
// edit may not name them (repo.ValidTag). It holds the manifest lock
// (repo.LockManifests), as forget: shared, since only manifests change and
// the data they reference is the same, but one tag or forget at a time, so
// two concurrent runs never both replace one snapshot (which left two); a
// run waits for the other to finish, then resolves its references against
// the snapshots as they are then (findRetagged).
func Retag(ctx context.Context, r tagRepo, opts TagOptions) (*TagResult, error) {
	e := opts.Edit
	if e.Set == nil && len(e.Add) == 0 && len(e.Remove) == 0 {
		return nil, fmt.Errorf("nothing to change: give --add, --remove or --set")
	}
	if _, _, err := e.Apply(nil); err != nil {
		return nil, err
	}
	lock, err := r.LockManifests(ctx, "tag")
	if err != nil {
		return nil, err
	}
	defer lock.Unlock()
	ctx = lock.Context()
	var sns []*repo.Snapshot
	seen := map[string]bool{}
	for _, ref := range opts.Refs {
		sn, err := findRetagged(ctx, r, ref)
		if err != nil {
			return nil, err
		}
		if !seen[sn.ID.String()] {
			seen[sn.ID.String()] = true
			sns = append(sns, sn)
		}
	}
	damaged, err := DamagedSnapshots(ctx, r)
	if err != nil {
		return nil, err
	}
	res := &TagResult{Changed: []TagChange{}, Unchanged: []string{}}
	for _, sn := range sns {
		tags, changed, err := e.Apply(sn.Tags)
		if err != nil {
			return res, err
		}
		if !changed {
			res.Unchanged = append(res.Unchanged, sn.ID.String())
			continue
		}
		if sn.Original() == "" {
			tags = append(tags, repo.OriginalTagPrefix+sn.ID.String())
		}
		var mark *DamageRecord
		if d, ok := damaged[sn.ID.String()]; ok {
			mark = &d
		}
		nsn, err := replaceManifest(ctx, r, sn, tags, mark)
		if err != nil {
			return res, err
		}
		res.Changed = append(res.Changed, TagChange{Old: sn.ID.String(), New: nsn.ID.String(), Tags: nsn.Tags})
	}
	return res, nil
}

// findRetagged resolves a snapshot reference as FindSnapshot does, and an
// ID (or unique prefix) that is no longer a snapshot to the one whose
// original: tag names it: the snapshot a tag change replaced it with. So a
// tag run that waited for another one on the same snapshot, or is given
// the ID a script read before a retag, edits the snapshot that is there
// now. The original tag names the first ID, so an ID in between (a
// snapshot retagged twice) is not found.
func findRetagged(ctx context.Context, r tagRepo, ref string) (*repo.Snapshot, error) {
	sn, err := r.FindSnapshot(ctx, ref)
	if err == nil || !errors.Is(err, repo.ErrNotFound) || repo.IsLatestRef(ref) {
		return sn, err
	}
	all, lerr := r.Snapshots(ctx)
	if lerr != nil {
		return nil, lerr
	}
	var ids, originals []chunk.ID
	for _, s := range all {
		if o, perr := chunk.ParseID(s.Original()); perr == nil {
			ids, originals = append(ids, s.ID), append(originals, o)
		}
	}
	o, merr := repo.MatchSnapshotPrefix(ref, originals)
	if merr != nil {
		if errors.Is(merr, repo.ErrNotFound) {
			return nil, err
		}
		return nil, merr
	}
	return r.FindSnapshot(ctx, ids[slices.Index(originals, o)].String())
}

// replaceManifest writes sn's manifest with tags as a new snapshot, marks
// it damaged as sn is when mark is not nil (check --repair's marker names
// the snapshot by ID: the new one must not pass for intact), records the
// replacement in the audit trail and deletes the old manifest.
func replaceManifest(ctx context.Context, r tagRepo, sn *repo.Snapshot, tags []string, mark *DamageRecord) (*repo.Snapshot, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// Once the new manifest is written, finish this snapshot even on Ctrl-C.
	wctx := context.WithoutCancel(ctx)
	m := sn.Manifest
	m.Tags = tags
	m.Signature = nil
	nsn, err := r.SaveSnapshot(wctx, &m)
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: write the retagged manifest: %w", sn.ShortID(), err)
	}
	if nsn.ID == sn.ID {
		return nsn, nil
	}
	if mark != nil {
		d := *mark
		d.Snapshot, d.File = nsn.ID.String(), ""
		d.Reason += fmt.Sprintf(" (marked on snapshot %s, whose tags were changed)", sn.ShortID())
		if _, err := markDamaged(wctx, r, &d); err != nil {
			return nil, fmt.Errorf("snapshot %s: carry its damage marker over to %s: %w (both manifests are kept)", sn.ShortID(), nsn.ShortID(), err)
		}
	}
	if _, err := r.AppendAudit(wctx, repo.AuditRecord{Command: "tag", Snapshot: sn.ID.String(), Space: sn.Space, Result: repo.AuditOK}); err != nil {
		return nil, fmt.Errorf("snapshot %s: %w (the new manifest %s is written, the old one kept)", sn.ShortID(), err, nsn.ShortID())
	}
	name := repo.FileName(repo.DirSnapshots, sn.ID)
	if err := r.Backend().Delete(wctx, name); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("snapshot %s: delete the old manifest: %w (the new one is %s)", sn.ShortID(), err, nsn.ShortID())
	}
	if err := r.Index().DeleteSnapshot(sn.ID.String()); err != nil {
		return nil, fmt.Errorf("local index %s: %w", r.Index().Path(), err)
	}
	return nsn, nil
}
