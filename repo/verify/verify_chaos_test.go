package verify_test

import (
	"context"
	"crypto/ed25519"
	crand "crypto/rand"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"memento/chunk"
	"memento/repo"
	"memento/repo/backend/local"
	"memento/repo/backup"
	"memento/repo/backup/backuptest"
	"memento/repo/maintenance"
	"memento/repo/repotest"
	"memento/repo/restore"
	"memento/repo/restore/restoretest"
	"memento/repo/verify"
	"memento/repo/verify/verifytest"
)

// The chaos test damages a repository in one random way per trial and
// requires the damage to be detected by the first thing that reads the
// damaged bytes: opening the repository, a verification level, or check.
// Whatever is detected or not, no restore may ever succeed with bytes that
// differ from what was backed up. The figures (trials, detected, at which
// level) are logged and reproduced in docs/verification.md.

// chaosWorld is a pristine repository to copy for each trial.
type chaosWorld struct {
	dir, cache string                                 // pristine repository and cache
	truth      map[chunk.ID]map[string]repotest.Entry // snapshot -> digest of its verified restore
}

func newChaosWorld(t *testing.T) *chaosWorld {
	t.Helper()
	tr := repotest.New(t, repo.InitOptions{PackSize: 96 << 10})
	ctx := context.Background()
	dd := filepath.Join(t.TempDir(), "engram")
	repotest.WriteEngramSpace(t, dd, "alpha", 500, 12<<10, 400)
	src := filepath.Join(t.TempDir(), "src")
	repotest.WriteFile(t, filepath.Join(src, "a"), repotest.RandomBytes(11, 300<<10), 0o644)
	repotest.WriteFile(t, filepath.Join(src, "d", "b"), []byte(strings.Repeat("compressible text ", 5000)), 0o600)
	var sns []*repo.Snapshot
	sns = append(sns, backuptest.Space(t, tr.Repository, dd, "alpha"), backuptest.Backup(t, tr.Repository, backup.BackupOptions{Paths: []string{src}}))
	repotest.WriteFile(t, filepath.Join(src, "a"), append(repotest.RandomBytes(12, 40<<10), repotest.RandomBytes(11, 300<<10)...), 0o644)
	sns = append(sns, backuptest.Backup(t, tr.Repository, backup.BackupOptions{Paths: []string{src}}))
	w := &chaosWorld{dir: tr.Dir, cache: tr.Cache, truth: map[chunk.ID]map[string]repotest.Entry{}}
	for _, sn := range sns {
		if _, err := tr.AppendAudit(ctx, repo.AuditRecord{Command: "backup", Snapshot: sn.ID.String(), Space: sn.Space}); err != nil {
			t.Fatal(err)
		}
		w.truth[sn.ID] = repotest.DigestTree(t, restoretest.Restore(t, tr.Repository, sn))
		delete(w.truth[sn.ID], "spaces")
	}
	verifytest.WantPass(t, verifytest.IDs(t, tr.Repository, verify.L4, ids(sns)...)...)
	return w
}

func ids(sns []*repo.Snapshot) []chunk.ID {
	out := make([]chunk.ID, len(sns))
	for i, sn := range sns {
		out[i] = sn.ID
	}
	return out
}

// copyTree copies a directory (repository or cache) file by file.
func copyTree(t testing.TB, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		dst := filepath.Join(to, rel)
		if d.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		if strings.HasSuffix(p, ".lock") {
			return nil
		}
		in, err := os.Open(p)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	})
	if err != nil {
		t.Fatal(err)
	}
}

// chaosKinds are the ways a trial damages the repository.
var chaosKinds = []string{
	"flip pack", "truncate pack", "delete pack", "swap packs",
	"flip manifest", "truncate manifest", "delete manifest", "forge root", "forge wrong key",
	"flip index", "truncate index", "delete index",
	"flip key", "truncate key", "delete key",
	"flip config", "truncate config",
	"flip log", "truncate log",
	"flip any", "truncate any",
}

// damage applies one kind of damage and describes it; region tells, for a
// pack flip, whether the blob data or the header/trailer was hit.
func (w *chaosWorld) damage(t *testing.T, rng *rand.Rand, dir, kind string) (desc, region string) {
	t.Helper()
	op, target, _ := strings.Cut(kind, " ")
	pick := func(kind string) string {
		var fs []string
		switch kind {
		case "config":
			fs = []string{"config"}
		case "any":
			fs = repotest.RepoFiles(t, dir, "")
		case "pack":
			fs = repotest.RepoFiles(t, dir, repo.DirData)
		case "manifest":
			fs = repotest.RepoFiles(t, dir, repo.DirSnapshots)
		case "key":
			fs = repotest.RepoFiles(t, dir, repo.DirKeys)
		case "log":
			fs = repotest.RepoFiles(t, dir, repo.DirLogs)
		default:
			fs = repotest.RepoFiles(t, dir, kind)
		}
		if len(fs) == 0 {
			t.Fatalf("no %s files", kind)
		}
		return fs[rng.IntN(len(fs))]
	}
	switch kind {
	case "swap packs":
		ps := repotest.RepoFiles(t, dir, repo.DirData)
		i := rng.IntN(len(ps))
		j := (i + 1 + rng.IntN(len(ps)-1)) % len(ps)
		a, b := filepath.Join(dir, ps[i]), filepath.Join(dir, ps[j])
		ba, _ := os.ReadFile(a)
		bb, _ := os.ReadFile(b)
		os.WriteFile(a, bb, 0o644)
		os.WriteFile(b, ba, 0o644)
		return fmt.Sprintf("swapped %s and %s", ps[i], ps[j]), ""
	case "forge root", "forge wrong key":
		return w.forge(t, rng, dir, kind), ""
	}
	name := pick(target)
	p := filepath.Join(dir, name)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	switch op {
	case "flip":
		off := rng.IntN(len(b))
		b[off] ^= byte(1 + rng.IntN(255))
		os.Chmod(p, 0o644)
		os.WriteFile(p, b, 0o644)
		if strings.HasPrefix(name, repo.DirData+"/") {
			region = "data"
			if off >= len(b)-packTrailerSize-w.headerLen(b) {
				region = "header"
			}
		}
		return fmt.Sprintf("flipped byte %d of %s", off, name), region
	case "truncate":
		n := rng.IntN(len(b))
		os.Chmod(p, 0o644)
		os.Truncate(p, int64(n))
		return fmt.Sprintf("truncated %s to %d of %d bytes", name, n, len(b)), ""
	case "delete":
		os.Remove(p)
		return "deleted " + name, ""
	}
	t.Fatalf("unknown damage %q", kind)
	return "", ""
}

func (w *chaosWorld) headerLen(pack []byte) int {
	t := pack[len(pack)-packTrailerSize:]
	return int(uint32(t[0]) | uint32(t[1])<<8 | uint32(t[2])<<16 | uint32(t[3])<<24)
}

// forge writes a new manifest: an old one with another snapshot's root and
// its original signature, or one re-signed with a key that is not the
// repository's. It is sealed with the real data key (the worst case: an
// insider with the password but not the signing key... or a bug).
func (w *chaosWorld) forge(t *testing.T, rng *rand.Rand, dir, kind string) string {
	t.Helper()
	tr := &repotest.Repo{Dir: dir, Cache: filepath.Join(t.TempDir(), "c"), Backend: newLocalAt(t, dir)}
	r := tr.Reopen(t)
	all, err := r.Snapshots(context.Background())
	if err != nil || len(all) < 2 {
		t.Fatalf("%d snapshots, %v", len(all), err)
	}
	a := all[rng.IntN(len(all))]
	m := a.Manifest
	for _, o := range all {
		if o.Root != m.Root {
			m.Root = o.Root
			break
		}
	}
	if kind == "forge wrong key" {
		_, priv, _ := ed25519.GenerateKey(crand.Reader)
		m.Signature = nil
		msg, _ := signedBytes(&m)
		m.Signature = ed25519.Sign(priv, msg)
	}
	id, err := r.SaveFile(context.Background(), repo.DirSnapshots, kindSnapshot, &m)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%s: manifest %s from %s", kind, chunk.ID(id).Short(), a.ShortID())
}

// detect finds the first stage that notices the damage.
func (w *chaosWorld) detect(t *testing.T, dir, cache string) (string, *repo.Repository) {
	t.Helper()
	ctx := context.Background()
	be := newLocalAt(t, dir)
	r, err := repo.Open(ctx, be, repo.Options{Password: repotest.Password, CacheDir: cache, Logger: repotest.QuietLogger()})
	if err != nil {
		return "open", nil
	}
	snaps, err := r.ListSnapshotIDs(ctx)
	if err != nil {
		return "open", r
	}
	for _, level := range []verify.Level{verify.L1, verify.L2, verify.L3, verify.L4} {
		vds, err := verify.VerifySnapshots(ctx, r, snaps, verify.VerifyOptions{Level: level, TempDir: t.TempDir()})
		if err != nil {
			return level.String(), r
		}
		for _, vd := range vds {
			if !vd.Passed {
				return level.String(), r
			}
		}
	}
	rep, err := maintenance.Check(ctx, r, maintenance.CheckOptions{})
	if err != nil || len(rep.Findings) > 0 {
		return "check", r
	}
	rep, err = maintenance.Check(ctx, r, maintenance.CheckOptions{ReadData: true})
	if err != nil || len(rep.Findings) > 0 {
		return "check --read-data", r
	}
	return "undetected", r
}

// noSilentWrongData restores every snapshot the damaged repository still
// lists and requires each restore to fail or to give exactly the truth.
func (w *chaosWorld) noSilentWrongData(t *testing.T, r *repo.Repository, desc string) (restored, refused int) {
	t.Helper()
	if r == nil {
		return 0, 0
	}
	all, err := r.Snapshots(context.Background())
	if err != nil {
		return 0, 0
	}
	for _, sn := range all {
		dst := filepath.Join(t.TempDir(), "r")
		full, err := r.LoadSnapshotFile(context.Background(), sn.ID)
		if err != nil {
			refused++
			continue
		}
		if _, err := restore.Restore(context.Background(), r, full, dst, restore.RestoreOptions{}); err != nil {
			refused++
			continue
		}
		want, ok := w.truth[sn.ID]
		if !ok {
			t.Fatalf("%s: restored snapshot %s that was never backed up", desc, sn.ShortID())
		}
		got := repotest.DigestTree(t, dst)
		delete(got, "spaces") // made by the restore itself (its mtime is the restore's)
		for p, e := range want {
			if got[p] != e {
				t.Fatalf("%s: SILENT WRONG DATA: snapshot %s restored %q as %v, backed up as %v", desc, sn.ShortID(), p, got[p], e)
			}
		}
		if len(got) != len(want) {
			t.Fatalf("%s: SILENT WRONG DATA: snapshot %s restored %d entries, backed up %d", desc, sn.ShortID(), len(got), len(want))
		}
		restored++
	}
	return restored, refused
}

// expected is the latest stage at which a kind of damage must be detected,
// in the order open < L1 < L2 < L3 < L4 < check < check --read-data.
func expectedStage(kind, region string) string {
	switch {
	case kind == "flip pack" && region == "header":
		return "check"
	case strings.HasSuffix(kind, " pack") || kind == "swap packs":
		return "L2"
	case kind == "delete manifest":
		return "check"
	case strings.HasSuffix(kind, " manifest") || strings.HasPrefix(kind, "forge"):
		return "L1"
	case strings.HasSuffix(kind, " index"), strings.HasSuffix(kind, " log"):
		return "check"
	case strings.HasSuffix(kind, " key"), kind == "truncate config":
		return "open"
	}
	return "" // flip config, flip/truncate any: whatever reads it, or harmless
}

var stageOrder = map[string]int{"open": 0, "L1": 1, "L2": 2, "L3": 3, "L4": 4, "check": 5, "check --read-data": 6, "undetected": 7}

// chaosSeed is the seed of trial 0; trial i has seed chaosSeed+i, which
// alone decides its kind of damage and where it strikes.
const chaosSeed = 20261122000

// TestChaosCorruptionIsDetectedNeverRestored runs MEMENTO_CHAOS_TRIALS
// trials (default 63, 21 with -short; make chaos runs 1000). Trial i has
// seed chaosSeed+i; MEMENTO_CHAOS_SEED=S replays the one trial of seed S.
func TestChaosCorruptionIsDetectedNeverRestored(t *testing.T) {
	def := 3 * len(chaosKinds)
	if testing.Short() {
		def = len(chaosKinds)
	}
	first, trials := repotest.Trials(t, chaosSeed, "MEMENTO_CHAOS_TRIALS", def)
	t.Logf("chaos: %d trials, seeds %d to %d (MEMENTO_CHAOS_SEED=S replays one)", trials, first, first+uint64(trials)-1)
	w := newChaosWorld(t)
	type tally struct{ trials, detected, restoredOK, refused int }
	byKind := map[string]map[string]int{}
	totals := map[string]int{}
	var sum tally
	var undetected []string
	for n := 0; n < trials; n++ {
		seed := first + uint64(n)
		i := seed - chaosSeed
		kind := chaosKinds[i%uint64(len(chaosKinds))]
		rng := rand.New(rand.NewPCG(seed, 6))
		base := filepath.Join(t.TempDir(), fmt.Sprint("trial", i))
		dir, cache := filepath.Join(base, "repo"), filepath.Join(base, "cache")
		copyTree(t, w.dir, dir)
		copyTree(t, w.cache, cache)
		desc, region := w.damage(t, rng, dir, kind)
		desc = fmt.Sprintf("%s (seed %d)", desc, seed)
		stage, r := w.detect(t, dir, cache)
		ok, refused := w.noSilentWrongData(t, r, desc)
		if byKind[kind] == nil {
			byKind[kind] = map[string]int{}
		}
		byKind[kind][stage]++
		totals[stage]++
		sum.trials++
		sum.restoredOK += ok
		sum.refused += refused
		if stage != "undetected" {
			sum.detected++
		} else {
			undetected = append(undetected, desc)
		}
		if want := expectedStage(kind, region); want != "" && stageOrder[stage] > stageOrder[want] {
			t.Errorf("trial %d: %s: detected at %s, want by %s", i, desc, stage, want)
		}
		os.RemoveAll(base)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "chaos: %d trials (seeds %d-%d), %d detected, %d undetected; %d restores gave exactly the backed-up bytes, %d were refused, 0 gave wrong data\n\n",
		sum.trials, first, first+uint64(trials)-1, sum.detected, sum.trials-sum.detected, sum.restoredOK, sum.refused)
	stages := []string{"open", "L1", "L2", "L3", "L4", "check", "check --read-data", "undetected"}
	fmt.Fprintf(&b, "| damage | trials | %s |\n|---|---|%s\n", strings.Join(stages, " | "), strings.Repeat("---|", len(stages)))
	for _, k := range chaosKinds {
		n := 0
		var cells []string
		for _, s := range stages {
			n += byKind[k][s]
			cells = append(cells, fmt.Sprint(byKind[k][s]))
		}
		fmt.Fprintf(&b, "| %s | %d | %s |\n", k, n, strings.Join(cells, " | "))
	}
	var cells []string
	for _, s := range stages {
		cells = append(cells, fmt.Sprint(totals[s]))
	}
	fmt.Fprintf(&b, "| **all** | %d | %s |\n", sum.trials, strings.Join(cells, " | "))
	// A blank line ends the table: a line right below it would be a row.
	if len(undetected) > 0 {
		b.WriteString("\n")
	}
	for _, u := range undetected {
		fmt.Fprintf(&b, "- undetected: %s\n", u)
	}
	t.Log("\n" + b.String())
	if p := os.Getenv("MEMENTO_CHAOS_REPORT"); p != "" {
		if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, u := range undetected {
		if !strings.Contains(u, " config") && !strings.Contains(u, "logs/") {
			t.Errorf("undetected damage outside the config and audit trail: %s", u)
		}
	}
}

// newLocalAt opens the local backend of an existing repository directory.
func newLocalAt(t testing.TB, dir string) *local.Backend {
	t.Helper()
	be, err := local.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	return be
}
