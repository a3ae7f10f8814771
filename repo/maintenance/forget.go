package maintenance

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"sort"
	"strings"
	"time"

	"memento/repo"
	"memento/repo/verify"
)

// ForgetOptions select what `memento forget` removes: either the snapshots
// named by IDs, or what Policy does not keep in the groups of Spaces (All:
// every group, including plain path snapshots).
type ForgetOptions struct {
	IDs    []string // snapshot IDs or unique prefixes; exclusive with Policy
	Policy RetentionPolicy
	Spaces []string
	All    bool
	// ForgetDamaged also removes snapshots that `check --repair` marked
	// damaged. Without it they are kept (and listed), since what is left
	// of them may still matter; they never count towards a keep rule.
	ForgetDamaged bool
	// AllowEmpty lets a group lose its last snapshot.
	AllowEmpty bool
	DryRun     bool
	// Location is the time zone of the hourly..yearly buckets (nil: local).
	Location *time.Location
}

// ForgetItem is one snapshot in a forget report.
type ForgetItem struct {
	ID      string    `json:"id"`
	Time    time.Time `json:"time"`
	Host    string    `json:"host"`
	Tags    []string  `json:"tags,omitempty"`
	Damaged bool      `json:"damaged,omitempty"`
	Reasons []string  `json:"reasons,omitempty"` // why it is kept
}

// ForgetGroup is the decision for one group: a space, or one host's paths.
type ForgetGroup struct {
	Space string `json:"space,omitempty"`
	// Identity is the database of a space group ("" for the legacy one):
	// retention never combines two databases that have a space of the
	// same id. All timelines of one database are one group.
	Identity string       `json:"identity,omitempty"`
	Host     string       `json:"host,omitempty"`
	Paths    []string     `json:"paths,omitempty"`
	Keep     []ForgetItem `json:"keep"`
	Remove   []ForgetItem `json:"remove"`
}

// Name is how the group is shown to operators.
func (g *ForgetGroup) Name() string {
	if g.Space != "" && g.Identity != "" {
		return "space " + g.Space + " (identity " + g.Identity + ")"
	}
	if g.Space != "" {
		return "space " + g.Space
	}
	return fmt.Sprintf("paths %s on host %s", strings.Join(g.Paths, ","), g.Host)
}

// ForgetResult is what forget decided and did.
type ForgetResult struct {
	DryRun  bool          `json:"dry_run"`
	Policy  string        `json:"policy,omitempty"`
	Groups  []ForgetGroup `json:"groups"`
	Removed []string      `json:"removed"` // IDs whose manifests were deleted (or would be, in a dry run)
	// Retained (a dry run on S3 Object Lock) lists the manifests it would
	// delete that are under a retention these credentials cannot lift:
	// the real run would refuse (repo.ErrRetained).
	Retained []repo.RetainedFile `json:"retained,omitempty"`
}

// snapshotGroup is the key snapshots are grouped by: a space snapshot by its
// space (several hosts may back up one space), a path snapshot by host and
// paths.
func snapshotGroup(sn *repo.Snapshot) string {
	if sn.Space != "" {
		return "space\x00" + sn.Space + "\x00" + sn.Identity()
	}
	p := slices.Clone(sn.Paths)
	sort.Strings(p)
	return "paths\x00" + sn.Host + "\x00" + strings.Join(p, "\x00")
}

// Forget removes snapshots: it deletes their manifests, nothing else (data
// goes with the next prune). Each removal first appends a "forget" record
// to the audit trail naming the snapshot, then deletes the manifest, so
// `check` never mistakes a forgotten snapshot for a lost one. It holds a
// shared lock: forgetting only removes manifests, which concurrent backups
// and restores (which already read theirs) do not mind; prune, which
// deletes data, takes the exclusive lock. The lock is the manifest lock
// (repo.LockManifests): a tag replacing a snapshot this forget decides
// about waits, or is waited for, and the catalog is read once it is held.
func Forget(ctx context.Context, r forgetRepo, opts ForgetOptions) (*ForgetResult, error) {
	if len(opts.IDs) > 0 && !opts.Policy.Empty() {
		return nil, fmt.Errorf("give snapshot IDs or a policy, not both")
	}
	if len(opts.IDs) == 0 {
		if opts.Policy.Empty() {
			return nil, fmt.Errorf("%w: no policy given (use --keep-last, --keep-daily, ..., --keep-within, --keep-tag, or name snapshots by ID)", ErrWouldEmpty)
		}
		if err := opts.Policy.Validate(); err != nil {
			return nil, err
		}
		if len(opts.Spaces) == 0 && !opts.All {
			return nil, fmt.Errorf("say which snapshots the policy applies to: --space ID (repeatable) or --all")
		}
	}
	if opts.Location == nil {
		opts.Location = time.Local
	}
	var lock *repo.Lock
	if !opts.DryRun {
		var err error
		if lock, err = r.LockManifests(ctx, "forget"); err != nil {
			return nil, err
		}
		defer lock.Unlock()
		ctx = lock.Context() // cancelled if the lock is lost
	} else if err := r.Sync(ctx); err != nil {
		return nil, err
	}
	all, err := r.Snapshots(ctx)
	if err != nil {
		return nil, err
	}
	damaged, err := DamagedSnapshots(ctx, r)
	if err != nil {
		return nil, err
	}
	verified, err := newestVerified(ctx, r, all, damaged)
	if err != nil {
		return nil, err
	}
	groups := map[string][]*repo.Snapshot{}
	for _, sn := range all {
		k := snapshotGroup(sn)
		groups[k] = append(groups[k], sn)
	}
	res := &ForgetResult{DryRun: opts.DryRun, Groups: []ForgetGroup{}, Removed: []string{}}
	if len(opts.IDs) > 0 {
		err = planForgetIDs(ctx, r, opts, groups, damaged, res)
	} else {
		res.Policy = opts.Policy.String()
		err = planForgetPolicy(opts, groups, damaged, res)
	}
	if err != nil {
		return nil, err
	}
	keepNewestVerified(res, verified)
	var names []string
	for _, g := range res.Groups {
		for _, it := range g.Remove {
			names = append(names, repo.DirSnapshots+"/"+it.ID)
		}
	}
	if opts.DryRun {
		// Say what retention would refuse rather than promise removals
		// that would fail.
		if res.Retained, err = repo.Retained(ctx, r.Backend(), names); err != nil {
			return res, fmt.Errorf("forget: %w", err)
		}
		return res, repo.RetainedError("forget", res.Retained, len(names))
	}
	if err := repo.CheckDeletable(ctx, r.Backend(), "forget", names); err != nil {
		return res, err
	}
	for _, g := range res.Groups {
		for _, it := range g.Remove {
			if err := forgetOne(ctx, r, it.ID, g.Space); err != nil {
				return res, err
			}
			res.Removed = append(res.Removed, it.ID)
		}
	}
	return res, nil
}

// forgetOne records and then deletes one manifest.
func forgetOne(ctx context.Context, r forgetRepo, id, space string) error {
	// Once the audit record is written the deletion must not be cut short
	// by Ctrl-C halfway through a group: finish this one snapshot.
	wctx := context.WithoutCancel(ctx)
	if err := ctx.Err(); err != nil {
		return err
	}
	if _, err := r.AppendAudit(wctx, repo.AuditRecord{Command: "forget", Snapshot: id, Space: space, Result: repo.AuditOK}); err != nil {
		return fmt.Errorf("snapshot %.8s: %w", id, err)
	}
	name := repo.DirSnapshots + "/" + id
	if err := r.Backend().Delete(wctx, name); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("snapshot %.8s: delete manifest: %w", id, err)
	}
	if err := r.Index().DeleteSnapshot(id); err != nil {
		return fmt.Errorf("local index %s: %w", r.Index().Path(), err)
	}
	return nil
}

func forgetItem(sn *repo.Snapshot, damaged bool, reasons []string) ForgetItem {
	return ForgetItem{ID: sn.ID.String(), Time: sn.Time, Host: sn.Host, Tags: sn.Tags, Damaged: damaged, Reasons: reasons}
}

func newForgetGroup(sn *repo.Snapshot) ForgetGroup {
	g := ForgetGroup{Space: sn.Space, Identity: sn.Identity(), Keep: []ForgetItem{}, Remove: []ForgetItem{}}
	if sn.Space == "" {
		g.Host, g.Paths = sn.Host, slices.Clone(sn.Paths)
		sort.Strings(g.Paths)
	}
	return g
}

// planForgetPolicy applies the policy group by group. Damaged snapshots
// are left out of the policy (they cannot give the guarantee a keep rule
// promises) and are kept unless ForgetDamaged.
func planForgetPolicy(opts ForgetOptions, groups map[string][]*repo.Snapshot, damaged map[string]DamageRecord, res *ForgetResult) error {
	keys := make([]string, 0, len(groups))
	for k := range groups {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	matched := map[string]bool{}
	var empty []string
	for _, k := range keys {
		sns := groups[k]
		sp := sns[0].Space
		if !opts.All && !slices.Contains(opts.Spaces, sp) {
			continue
		}
		matched[sp] = true
		g := newForgetGroup(sns[0])
		var intact, bad []*repo.Snapshot
		for _, sn := range sns {
			if _, ok := damaged[sn.ID.String()]; ok {
				bad = append(bad, sn)
			} else {
				intact = append(intact, sn)
			}
		}
		for _, d := range ApplyPolicy(intact, opts.Policy, opts.Location) {
			if d.Keep {
				g.Keep = append(g.Keep, forgetItem(d.Snapshot, false, d.Reasons))
			} else {
				g.Remove = append(g.Remove, forgetItem(d.Snapshot, false, nil))
			}
		}
		for i := len(bad) - 1; i >= 0; i-- {
			if opts.ForgetDamaged {
				g.Remove = append(g.Remove, forgetItem(bad[i], true, nil))
			} else {
				g.Keep = append(g.Keep, forgetItem(bad[i], true, []string{"damaged (not counted by the policy; --forget-damaged removes it)"}))
			}
		}
		if len(g.Keep) == 0 && len(g.Remove) > 0 && !opts.AllowEmpty {
			empty = append(empty, g.Name())
		}
		res.Groups = append(res.Groups, g)
	}
	for _, sp := range opts.Spaces {
		if !matched[sp] {
			return fmt.Errorf("space %s: %w: no snapshot of this space", sp, repo.ErrNotFound)
		}
	}
	if len(empty) > 0 {
		return fmt.Errorf("%w of %s: the policy keeps none of them (use --allow-empty if that is really meant)", ErrWouldEmpty, strings.Join(empty, "; "))
	}
	return nil
}

// planForgetIDs removes exactly the named snapshots.
func planForgetIDs(ctx context.Context, r forgetRepo, opts ForgetOptions, groups map[string][]*repo.Snapshot, damaged map[string]DamageRecord, res *ForgetResult) error {
	drop := map[string]bool{}
	for _, ref := range opts.IDs {
		sn, err := r.FindSnapshot(ctx, ref)
		if err != nil {
			return err
		}
		drop[sn.ID.String()] = true
	}
	keys := make([]string, 0, len(groups))
	for k := range groups {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var empty []string
	for _, k := range keys {
		sns := groups[k]
		g := newForgetGroup(sns[0])
		for i := len(sns) - 1; i >= 0; i-- {
			sn := sns[i]
			_, bad := damaged[sn.ID.String()]
			if drop[sn.ID.String()] {
				g.Remove = append(g.Remove, forgetItem(sn, bad, nil))
			} else {
				g.Keep = append(g.Keep, forgetItem(sn, bad, []string{"not named"}))
			}
		}
		if len(g.Remove) == 0 {
			continue
		}
		if len(g.Keep) == 0 && !opts.AllowEmpty {
			empty = append(empty, g.Name())
		}
		res.Groups = append(res.Groups, g)
	}
	if len(empty) > 0 {
		return fmt.Errorf("%w of %s (use --allow-empty if that is really meant)", ErrWouldEmpty, strings.Join(empty, "; "))
	}
	return nil
}

// KeptNewestVerified is the reason given for a snapshot that forget keeps
// although the policy (or the IDs named) would remove it: it is the newest
// snapshot of its group that passed a verification, and losing it would
// leave the group with no backup proven to restore (a ransomware that
// garbled the data dir makes every newer snapshot useless).
const KeptNewestVerified = "kept: newest verified"

// newestVerified returns, per snapshot group, the newest snapshot that
// passed a verification (the audit trail's verify records,
// verify.SnapshotLevels) and is not marked damaged, with the level it
// passed at.
func newestVerified(ctx context.Context, r forgetRepo, all []*repo.Snapshot, damaged map[string]DamageRecord) (map[string]verifiedSnapshot, error) {
	recs, _, err := r.AuditLog(ctx, time.Time{})
	if err != nil {
		return nil, err
	}
	levels := verify.SnapshotLevels(recs, all)
	out := map[string]verifiedSnapshot{}
	for _, sn := range all {
		id := sn.ID.String()
		l, ok := levels[id]
		if !ok {
			continue
		}
		if _, bad := damaged[id]; bad || len(sn.Damage()) > 0 {
			continue
		}
		k := snapshotGroup(sn)
		if cur, ok := out[k]; !ok || sn.Time.After(cur.time) || sn.Time.Equal(cur.time) && id > cur.id {
			out[k] = verifiedSnapshot{id: id, time: sn.Time, level: l}
		}
	}
	return out, nil
}

type verifiedSnapshot struct {
	id    string
	time  time.Time
	level verify.Level
}

// keepNewestVerified moves the newest verified snapshot of each group from
// Remove to Keep, whatever the policy or the IDs said: forget never removes
// it. (A group whose newest verified snapshot goes away only when a newer
// one passes a verification.)
func keepNewestVerified(res *ForgetResult, verified map[string]verifiedSnapshot) {
	want := map[string]verify.Level{}
	for _, v := range verified {
		want[v.id] = v.level
	}
	for gi := range res.Groups {
		g := &res.Groups[gi]
		for i := 0; i < len(g.Remove); i++ {
			it := g.Remove[i]
			l, ok := want[it.ID]
			if !ok {
				continue
			}
			it.Reasons = append(it.Reasons, fmt.Sprintf("%s (%s passed)", KeptNewestVerified, l))
			g.Keep = append(g.Keep, it)
			g.Remove = slices.Delete(g.Remove, i, i+1)
			i--
		}
		sort.SliceStable(g.Keep, func(i, j int) bool { return g.Keep[i].Time.After(g.Keep[j].Time) })
	}
}
