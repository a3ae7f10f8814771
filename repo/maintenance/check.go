package maintenance

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/dustin/go-humanize/english"
	"github.com/zeebo/blake3"
	"golang.org/x/sync/errgroup"

	"memento/chunk"
	"memento/index"
	"memento/repo"
	"memento/repo/verify"
	"memento/repo/walarchive"
)

// CheckOptions say how far `memento check` goes.
type CheckOptions struct {
	// ReadData reads every pack whole: its BLAKE3 against its name and
	// every blob it holds, used or not.
	ReadData bool
	// Repair rebuilds the index from the packs (bbolt cache and repository
	// index files) and marks snapshots whose data is gone as damaged. It
	// never deletes a pack or a snapshot.
	Repair   bool
	Workers  int
	Progress *repo.Progress
}

// Check severities.
const (
	SevError   = "error"   // something is damaged or missing
	SevWarning = "warning" // untidy but harmless, or already known (stale locks, orphans, marked damage)
)

// CheckFinding is one line of `memento check`.
type CheckFinding struct {
	Severity string `json:"severity"`
	What     string `json:"what"`
	Message  string `json:"message"`
}

// CheckReport is everything `memento check` found and did.
type CheckReport struct {
	Findings   []CheckFinding     `json:"findings"`
	Notes      []string           `json:"notes,omitempty"`
	Figures    map[string]float64 `json:"figures"`
	Damaged    []DamageRecord     `json:"damaged,omitempty"`
	Repair     *RepairReport      `json:"repair,omitempty"`
	errorCount int
}

// Errors counts the findings of severity error.
func (c *CheckReport) Errors() int { return c.errorCount }

func (c *CheckReport) add(sev, what, format string, args ...any) {
	if sev == SevError {
		c.errorCount++
	}
	c.Findings = append(c.Findings, CheckFinding{Severity: sev, What: what, Message: fmt.Sprintf(format, args...)})
}

// knownDirs are the top-level directories of a repository; anything else
// (and anything misnamed inside them) is reported as unexpected.
var knownDirs = map[string]bool{repo.DirData: true, repo.DirIndex: true, repo.DirSnapshots: true, repo.DirKeys: true, repo.DirLocks: true,
	repo.DirLogs: true, walarchive.DirWAL: true, walarchive.DirHistory: true, dirDamaged: true}

// Check verifies the repository as a whole: key files, that every file is
// where and what its name says, that the index files agree with the packs
// (headers, sizes, no pack missing, none unindexed), that every snapshot's
// manifest verifies and its trees and chunks resolve, the audit trail
// (including snapshots that vanished without a prune), that every archived
// WAL segment's chunks are in packs that exist, that every delta blob a
// snapshot or the WAL archive uses has its base stored whole (format 4),
// and locks. Damage is reported in the report; the error is for being
// unable to check.
func Check(ctx context.Context, r checkRepo, opts CheckOptions) (*CheckReport, error) {
	if opts.Workers <= 0 {
		opts.Workers = 4
	}
	if opts.Progress == nil {
		opts.Progress = &repo.Progress{}
	}
	cmd := "check"
	if opts.Repair {
		cmd = "check --repair"
	}
	lock, err := r.Lock(ctx, opts.Repair, cmd)
	if err != nil {
		return nil, err
	}
	defer lock.Unlock()
	ctx = lock.Context() // cancelled if the lock is lost
	rep := &CheckReport{Figures: map[string]float64{}}

	packs, err := checkFiles(ctx, r, rep)
	if err != nil {
		return nil, err
	}
	indexed, err := checkIndexFiles(ctx, r, rep, packs)
	if err != nil {
		return nil, err
	}
	headers, err := checkPackHeaders(ctx, r, rep, packs, indexed, opts.Workers)
	if err != nil {
		return nil, err
	}
	var badBlobs map[chunk.ID]string
	var badIn map[[32]byte]map[chunk.ID]bool
	if opts.ReadData {
		if badBlobs, badIn, err = checkPackData(ctx, r, rep, packs, headers, opts); err != nil {
			return nil, err
		}
	}
	if opts.Repair {
		if rep.Repair, err = repairIndex(ctx, r, headers, badIn); err != nil {
			return nil, err
		}
	} else if err := checkCache(r, rep, packs); err != nil {
		return nil, err
	}
	used := map[string]map[chunk.ID]struct{}{}
	if err := checkSnapshots(ctx, r, rep, badBlobs, opts.Repair, used); err != nil {
		return nil, err
	}
	recs, err := checkLocksAndAudit(ctx, r, rep)
	if err != nil {
		return nil, err
	}
	if err := checkWALArchives(ctx, r, rep, packs, badBlobs, recs, used); err != nil {
		return nil, err
	}
	if err := checkDeltaBases(ctx, r, rep, headers, used); err != nil {
		return nil, err
	}
	return rep, nil
}

// checkFiles lists the whole repository once: every file must be in a known
// directory under a hash name (packs in their fan-out directory), and key
// and WAL archive files must hash to their names (the others are checked
// when they are read below). It returns the packs and their sizes.
func checkFiles(ctx context.Context, r checkRepo, rep *CheckReport) (map[[32]byte]int64, error) {
	packs := map[[32]byte]int64{}
	var hashNames []string
	err := r.Backend().List(ctx, "", func(name string, size int64) error {
		if name == repo.ConfigName {
			return nil
		}
		dir, base := path.Split(name)
		top, _, _ := strings.Cut(name, "/")
		h := repo.NameHash(base)
		switch {
		case !knownDirs[top]:
			rep.add(SevWarning, name, "unexpected file (not part of a memento repository)")
		case h == [32]byte{} || repo.FileName(top, h) != name && top != walarchive.DirWAL && top != walarchive.DirHistory:
			rep.add(SevWarning, name, "unexpected file name in %s", dir)
		case top == repo.DirData:
			packs[h] = size
		case top == repo.DirKeys || top == walarchive.DirWAL:
			hashNames = append(hashNames, name)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list repository: %w", err)
	}
	for _, name := range hashNames {
		raw, err := repo.ReadAll(ctx, r.Backend(), name, repo.MaxMetadataFile)
		if err != nil {
			if errors.Is(err, repo.ErrCorrupt) {
				rep.add(SevError, name, "%v", err)
				continue
			}
			return nil, err
		}
		if blake3.Sum256(raw) != repo.NameHash(name) {
			rep.add(SevError, name, "content does not match its name (damaged or truncated)")
		}
	}
	rep.Figures["packs"] = float64(len(packs))
	return packs, nil
}

// indexedPack is a pack as the repository's index files describe it.
type indexedPack struct {
	info index.PackInfo
	file string
}

// checkIndexFiles reads every index file and compares it with the packs.
func checkIndexFiles(ctx context.Context, r checkRepo, rep *CheckReport, packs map[[32]byte]int64) (map[[32]byte]indexedPack, error) {
	var names []string
	if err := r.Backend().List(ctx, repo.DirIndex, func(name string, size int64) error {
		names = append(names, name)
		return nil
	}); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("list index files: %w", err)
	}
	sort.Strings(names)
	out := map[[32]byte]indexedPack{}
	reported := map[[32]byte]bool{}
	for _, name := range names {
		var f repo.IndexFile
		if err := r.LoadFile(ctx, name, repo.KindIndex, &f); err != nil {
			if errors.Is(err, repo.ErrCorrupt) || errors.Is(err, repo.ErrFormat) {
				rep.add(SevError, "index file "+path.Base(name)[:8], "%v (check --repair rewrites the index from the packs)", err)
				continue
			}
			return nil, err
		}
		for _, p := range f.PackInfos() {
			size, ok := packs[p.ID]
			what := "pack " + repo.ShortHex(p.ID)
			switch {
			case reported[p.ID]:
			case !ok:
				rep.add(SevError, what, "listed by index file %s but missing from the repository (%s)", path.Base(name)[:8], english.Plural(len(p.Blobs), "blob", ""))
				reported[p.ID] = true
			case size != p.Size:
				rep.add(SevError, what, "%d bytes, index file %s says %d (truncated or replaced)", size, path.Base(name)[:8], p.Size)
				reported[p.ID] = true
			}
			if _, dup := out[p.ID]; !dup {
				out[p.ID] = indexedPack{p, name}
			}
		}
	}
	rep.Figures["index_files"] = float64(len(names))
	return out, nil
}

// checkPackHeaders reads every pack's own header (its last bytes) and
// compares it with what the index files say the pack holds.
func checkPackHeaders(ctx context.Context, r checkRepo, rep *CheckReport, packs map[[32]byte]int64, indexed map[[32]byte]indexedPack, workers int) (map[[32]byte]index.PackInfo, error) {
	var mu sync.Mutex
	headers := map[[32]byte]index.PackInfo{}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(workers)
	blobs := 0
	for id, size := range packs {
		g.Go(func() error {
			pi, err := r.ReadPackHeader(gctx, id, size)
			mu.Lock()
			defer mu.Unlock()
			what := "pack " + repo.ShortHex(id)
			if err != nil {
				if gctx.Err() != nil {
					return gctx.Err()
				}
				rep.add(SevError, what, "%v", err)
				return nil
			}
			headers[id] = pi
			blobs += len(pi.Blobs)
			ip, ok := indexed[id]
			if !ok {
				rep.add(SevWarning, what, "not listed in any index file (an interrupted backup, or a lost index file); check --repair indexes it")
				return nil
			}
			if left := leftOut(pi, ip.info); left > 0 {
				rep.add(SevWarning, what, "%d of the %d blobs of its header are not indexed: check --repair left them out as damaged, and a backup stores their data again",
					left, len(pi.Blobs))
			} else if msg := comparePack(pi, ip.info); msg != "" {
				rep.add(SevError, what, "header and index file %s disagree: %s", path.Base(ip.file)[:8], msg)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	rep.Figures["blobs"] = float64(blobs)
	return headers, nil
}

// leftOut returns how many blobs of a pack's header its index entry leaves
// out when the entry is otherwise the header (what check --repair writes for
// a pack with damaged blobs), and 0 when it is not such a subset.
func leftOut(h, ix index.PackInfo) int {
	if h.Space != ix.Space || h.Size != ix.Size || len(ix.Blobs) >= len(h.Blobs) {
		return 0
	}
	byID := make(map[chunk.ID]index.BlobInfo, len(h.Blobs))
	for _, b := range h.Blobs {
		byID[b.ID] = b
	}
	for _, b := range ix.Blobs {
		if hb, ok := byID[b.ID]; !ok || hb != b {
			return 0
		}
	}
	return len(h.Blobs) - len(ix.Blobs)
}

func comparePack(h, ix index.PackInfo) string {
	if h.Space != ix.Space {
		return fmt.Sprintf("space %q vs %q", h.Space, ix.Space)
	}
	if len(h.Blobs) != len(ix.Blobs) {
		return fmt.Sprintf("%d blobs vs %d", len(h.Blobs), len(ix.Blobs))
	}
	byID := make(map[chunk.ID]index.BlobInfo, len(h.Blobs))
	for _, b := range h.Blobs {
		byID[b.ID] = b
	}
	for _, b := range ix.Blobs {
		if hb, ok := byID[b.ID]; !ok || hb != b {
			return fmt.Sprintf("blob %s differs", b.ID.Short())
		}
	}
	return ""
}

// checkCache compares the local bbolt cache with the packs that exist.
func checkCache(r checkRepo, rep *CheckReport, packs map[[32]byte]int64) error {
	cached, err := r.Index().Packs()
	if err != nil {
		rep.add(SevWarning, "local index "+r.Index().Path(), "%v (check --repair or 'memento index rebuild' recreates it)", err)
		return nil
	}
	stale := 0
	for _, p := range cached {
		if _, ok := packs[p.ID]; !ok {
			stale++
		}
	}
	if stale > 0 {
		rep.add(SevWarning, "local index "+r.Index().Path(), "lists %s that %s not exist (check --repair rebuilds it)", english.Plural(stale, "pack", ""), english.PluralWord(stale, "does", "do"))
	}
	return nil
}

// checkSnapshots loads every manifest in the repository and walks its trees
// (L1 of verify), listing snapshots whose data is gone. With repair, those
// not yet marked are marked damaged.
func checkSnapshots(ctx context.Context, r checkRepo, rep *CheckReport, badBlobs map[chunk.ID]string, repair bool, used map[string]map[chunk.ID]struct{}) error {
	ids, err := r.ListSnapshotIDs(ctx)
	if err != nil {
		return err
	}
	marked, err := DamagedSnapshots(ctx, r)
	if err != nil {
		return err
	}
	v, err := verify.NewVerifier(ctx, r, verify.VerifyOptions{Level: verify.L1})
	if err != nil {
		return err
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i].String() < ids[j].String() })
	ok := 0
	for _, id := range ids {
		what := "snapshot " + id.Short()
		sn, err := r.LoadSnapshotFile(ctx, id)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			d := DamageRecord{Snapshot: id.String(), Reason: "manifest: " + err.Error()}
			reportDamage(ctx, r, rep, what, d, marked, repair)
			continue
		}
		vd := &verify.Verdict{Snapshot: id.String(), Figures: map[string]float64{}}
		w, err := v.Manifest(ctx, sn, vd)
		if err != nil {
			return err
		}
		lost := map[string]bool{}
		for rel := range w.Broken {
			lost[rel] = true
		}
		var badChunks int
		sp := repo.StorageSpace(sn.Space)
		if used[sp] == nil {
			used[sp] = map[chunk.ID]struct{}{}
		}
		for _, f := range w.Files {
			for _, c := range f.Node.Content {
				used[sp][c] = struct{}{}
				if _, bad := badBlobs[c]; bad {
					lost[f.Rel] = true
					badChunks++
				}
			}
		}
		if len(vd.Findings) == 0 && len(lost) == 0 {
			ok++
			continue
		}
		d := DamageRecord{Snapshot: id.String(), Space: sn.Space, MissingChunks: len(w.Missing), DamagedChunks: badChunks,
			TotalFiles: len(w.Files)}
		var reasons []string
		for _, f := range vd.Findings {
			if !strings.HasPrefix(f.What, "file ") && len(reasons) < 5 {
				reasons = append(reasons, f.What+": "+f.Message)
			}
		}
		if badChunks > 0 {
			reasons = append(reasons, fmt.Sprintf("%s %s verification", english.Plural(badChunks, "chunk", ""), english.PluralWord(badChunks, "fails", "fail")))
		}
		d.Reason = strings.Join(reasons, "; ")
		for _, f := range w.Files {
			if lost[f.Rel] {
				d.LostFiles = append(d.LostFiles, f.Rel)
				d.LostBytes += f.Node.Size
			}
		}
		for rel := range lost { // directories whose tree is gone
			switch {
			case slicesContains(d.LostFiles, rel):
			case rel == "":
				d.LostFiles = append(d.LostFiles, "/ (everything: the root tree is gone)")
				d.LostDirs++
			default:
				d.LostFiles = append(d.LostFiles, rel+"/ (the whole directory)")
				d.LostDirs++
			}
		}
		sort.Strings(d.LostFiles)
		d.IntactFiles = len(w.Files) - countFiles(w.Files, lost)
		if w.BadTree {
			d.IntactFiles = -1 // unknown: part of the tree cannot be read
		}
		reportDamage(ctx, r, rep, what, d, marked, repair)
	}
	rep.Figures["snapshots"] = float64(len(ids))
	rep.Figures["snapshots_intact"] = float64(ok)
	return nil
}

func countFiles(files []verify.WalkFile, lost map[string]bool) int {
	n := 0
	for _, f := range files {
		if lost[f.Rel] {
			n++
		}
	}
	return n
}

func slicesContains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func reportDamage(ctx context.Context, r checkRepo, rep *CheckReport, what string, d DamageRecord, marked map[string]DamageRecord, repair bool) {
	if m, ok := marked[d.Snapshot]; ok {
		rep.add(SevWarning, what, "damaged, marked so on %s by %s: %s lost (forget it once you no longer need what is left)",
			m.Time.Format(time.RFC3339), m.Host, english.Plural(len(m.LostFiles), "file", ""))
		d.File, d.Time, d.Host = m.File, m.Time, m.Host
		rep.Damaged = append(rep.Damaged, d)
		return
	}
	rep.add(SevError, what, "damaged: %s; %d of %s and %s cannot be restored", d.Reason, len(d.LostFiles)-d.LostDirs, english.Plural(d.TotalFiles, "file", ""), english.Plural(d.LostDirs, "whole directory", "whole directories"))
	if repair {
		name, err := markDamaged(ctx, r, &d)
		if err != nil {
			rep.add(SevError, what, "could not mark it damaged: %v", err)
		} else {
			d.File = name
			rep.Repair.Marked = append(rep.Repair.Marked, d.Snapshot)
		}
	}
	rep.Damaged = append(rep.Damaged, d)
}

// checkLocksAndAudit reports stale locks, audit records that do not
// verify, and snapshots a backup recorded that are gone without a prune. It
// returns the audit records.
func checkLocksAndAudit(ctx context.Context, r checkRepo, rep *CheckReport) ([]repo.AuditRecord, error) {
	locks, err := r.Locks(ctx)
	if err != nil {
		return nil, err
	}
	for _, l := range locks {
		if l.Stale {
			rep.add(SevWarning, "lock "+path.Base(l.Name)[:8], "stale: %s pid %d since %s (%s); 'memento unlock' removes it",
				l.Host, l.PID, l.Time.Format(time.RFC3339), l.Command)
		}
	}
	recs, bad, err := r.AuditLog(ctx, time.Time{})
	if err != nil {
		return nil, err
	}
	for _, e := range bad {
		rep.add(SevError, "audit record", "%v", e)
	}
	present := map[string]bool{}
	ids, err := r.ListSnapshotIDs(ctx)
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		present[id.String()] = true
	}
	removed := map[string]bool{}
	for _, rec := range recs {
		if rec.Command == "prune" || rec.Command == "forget" || rec.Command == "tag" {
			removed[rec.Snapshot] = true
		}
	}
	for _, rec := range recs {
		if rec.Command == "backup" && rec.Result == repo.AuditOK && rec.Snapshot != "" && !present[rec.Snapshot] && !removed[rec.Snapshot] {
			rep.add(SevError, "snapshot "+rec.Snapshot[:min(8, len(rec.Snapshot))],
				"recorded by a backup on %s at %s, but its manifest is gone and no prune, forget or tag removed it",
				rec.Host, rec.Time.Format(time.RFC3339))
		}
	}
	rep.Figures["audit_records"] = float64(len(recs))
	return recs, nil
}
