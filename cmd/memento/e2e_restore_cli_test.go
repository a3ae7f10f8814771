package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"memento/chunk"
	"memento/repo"
)

// Issue 17, restore: targets (in place, mount points, dangerous ones),
// partial restore, --skip-damaged, contradicting flags, tags.

// runIn runs memento in the working directory dir.
func (e *env) runIn(dir string, args ...string) result {
	e.t.Helper()
	e.dir = dir
	defer func() { e.dir = "" }()
	return e.run(args...)
}

func exists(p string) bool { _, err := os.Lstat(p); return err == nil }

// entries lists the names in dir.
func entries(t *testing.T, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, d := range des {
		out = append(out, d.Name())
	}
	return out
}

// smallTree writes a few small files and directories to back up.
func smallTree(t *testing.T) string {
	t.Helper()
	src := filepath.Join(t.TempDir(), "src")
	for name, body := range map[string]string{
		"keep/a.txt":        "alpha\n",
		"keep/sub/b.log":    "beta log\n",
		"drop/c.txt":        "gamma\n",
		"top.log":           "top log\n",
		"other/deep/d.txt":  "delta\n",
		"other/deep/e.tmp":  "tmp\n",
		"other/f.txt":       "phi\n",
		"cache/x/huge.blob": strings.Repeat("x", 4096),
	} {
		p := filepath.Join(src, filepath.FromSlash(name))
		mustOK(t, os.MkdirAll(filepath.Dir(p), 0o755))
		mustOK(t, os.WriteFile(p, []byte(body), 0o644))
	}
	return src
}

// requireRoot skips a test that needs root (a tmpfs mount), except in CI
// (CI=true), where it fails.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("this test mounts a tmpfs and must run as root in CI")
	}
	t.Skip("not root: cannot mount a tmpfs; set CI=true to make this a failure")
}

func TestE2ERestoreIntoEmptyDirAndMountPoint(t *testing.T) {
	e := newEnv(t)
	src := smallTree(t)
	e.mustRun("backup", src)
	want := repoTreeDigest(t, src)

	// An existing empty directory is filled in place: same inode, its own
	// mode kept, no safety copy, no staging left behind.
	empty := filepath.Join(t.TempDir(), "empty")
	mustOK(t, os.Mkdir(empty, 0o750))
	var before syscall.Stat_t
	mustOK(t, syscall.Stat(empty, &before))
	var res restoreJSON
	out := e.mustRun("restore", "latest", "--target", empty, "--json")
	mustOK(t, json.Unmarshal([]byte(out), &res))
	if !res.Result.InPlace || res.Result.SafetyCopy != "" {
		t.Fatalf("restore into an empty dir: %s", out)
	}
	var after syscall.Stat_t
	mustOK(t, syscall.Stat(empty, &after))
	if after.Ino != before.Ino || after.Mode&0o777 != 0o750 {
		t.Errorf("empty target replaced: inode %d -> %d, mode %o", before.Ino, after.Ino, after.Mode&0o777)
	}
	sameDigest(t, "restored in place", want, repoTreeDigest(t, inSnapshot(t, empty, src)))
	if got := entries(t, empty); len(got) != 1 {
		t.Errorf("empty target holds %q after the restore, want the restored tree only", got)
	}
	if got := entries(t, filepath.Dir(empty)); len(got) != 1 {
		t.Errorf("beside the target: %q, want nothing but it", got)
	}

	// A mount point (a real tmpfs) cannot be renamed: it is filled in place.
	requireRoot(t)
	mp := filepath.Join(t.TempDir(), "mp")
	mustOK(t, os.Mkdir(mp, 0o755))
	mustOK(t, unix.Mount("tmpfs", mp, "tmpfs", 0, "size=64m"))
	t.Cleanup(func() { _ = unix.Unmount(mp, unix.MNT_DETACH) })
	out = e.mustRun("restore", "latest", "--target", mp)
	if !strings.Contains(out, "restored snapshot") || strings.Contains(out, "previous content") {
		t.Errorf("restore into a mount point says:\n%s", out)
	}
	sameDigest(t, "restored into a tmpfs mount point", want, repoTreeDigest(t, inSnapshot(t, mp, src)))
	if got := entries(t, mp); len(got) != 1 {
		t.Errorf("mount point holds %q, want the restored tree only", got)
	}
	// A mount point with content cannot be moved aside: refused, untouched.
	e.wantFail(exitFailure, "is a mount point and not empty: a mount point cannot be moved aside", "restore", "latest", "--target", mp)
	sameDigest(t, "mount point after a refused restore", want, repoTreeDigest(t, inSnapshot(t, mp, src)))

	// A stale in-place staging directory left by a killed restore is
	// removed by the next restore into the same target, which then fills
	// it in place.
	mp2 := filepath.Join(t.TempDir(), "mp2")
	mustOK(t, os.Mkdir(mp2, 0o755))
	mustOK(t, unix.Mount("tmpfs", mp2, "tmpfs", 0, "size=64m"))
	t.Cleanup(func() { _ = unix.Unmount(mp2, unix.MNT_DETACH) })
	stale := filepath.Join(mp2, ".memento.restore-123")
	mustOK(t, os.MkdirAll(filepath.Join(stale, "half"), 0o755))
	mustOK(t, os.WriteFile(stale+".owner", []byte("pid 999999999\nhost gone\n"), 0o600))
	r := e.run("restore", "latest", "--target", mp2)
	if r.code != 0 || !strings.Contains(r.stderr, "removed the staging directory of a restore that did not finish") {
		t.Fatalf("restore over a stale staging dir: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	sameDigest(t, "restored after a stale staging", want, repoTreeDigest(t, inSnapshot(t, mp2, src)))
	if got := entries(t, mp2); len(got) != 1 {
		t.Errorf("mount point holds %q, want the restored tree only", got)
	}
}

func TestE2ERestoreDangerousTargets(t *testing.T) {
	e := newEnv(t)
	src := smallTree(t)
	e.mustRun("backup", src)
	want := repoTreeDigest(t, src)

	// --target . into a non-empty working directory: refused, untouched.
	wd := filepath.Join(t.TempDir(), "wd")
	mustOK(t, os.MkdirAll(filepath.Join(wd, "sub"), 0o755))
	mustOK(t, os.WriteFile(filepath.Join(wd, "mine.txt"), []byte("mine\n"), 0o644))
	for _, c := range []struct{ dir, target, why string }{
		{wd, ".", "is the current directory and not empty"},
		{filepath.Join(wd, "sub"), "..", "is a directory above the current directory and not empty"},
		{wd, "/", "/ is the root directory and not empty"},
	} {
		r := e.runIn(c.dir, "restore", "latest", "--target", c.target)
		if r.code != exitUsage || !strings.Contains(r.stderr, c.why) || !strings.Contains(r.stderr, "give --force-target") ||
			strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
			t.Fatalf("restore --target %s in %s: exit %d, want %d and one line saying %q\n%s", c.target, c.dir, r.code, exitUsage, c.why, r.stderr)
		}
	}
	if got := entries(t, wd); len(got) != 2 || !exists(filepath.Join(wd, "mine.txt")) {
		t.Fatalf("working directory changed by a refused restore: %q", got)
	}
	// $HOME
	home := t.TempDir()
	mustOK(t, os.WriteFile(filepath.Join(home, ".profile"), []byte("x\n"), 0o644))
	e.extra = []string{"HOME=" + home}
	e.wantFail(exitUsage, "is the home directory and not empty", "restore", "latest", "--target", home)
	e.extra = nil

	// --target . into an empty working directory restores in place.
	ewd := filepath.Join(t.TempDir(), "ewd")
	mustOK(t, os.Mkdir(ewd, 0o755))
	if r := e.runIn(ewd, "restore", "latest", "--target", "."); r.code != 0 {
		t.Fatalf("restore --target . into an empty cwd: exit %d\n%s", r.code, r.stderr)
	}
	sameDigest(t, "restored into the empty cwd", want, repoTreeDigest(t, inSnapshot(t, ewd, src)))

	// --force-target: the non-empty cwd is moved aside to the safety copy.
	r := e.runIn(wd, "restore", "latest", "--target", ".", "--force-target")
	if r.code != 0 || !strings.Contains(r.stdout, "the previous content is kept at "+wd+".pre-restore-") {
		t.Fatalf("restore --target . --force-target: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	sameDigest(t, "forced restore", want, repoTreeDigest(t, inSnapshot(t, wd, src)))
	kept, _ := filepath.Glob(wd + ".pre-restore-*")
	if len(kept) != 1 || !exists(filepath.Join(kept[0], "mine.txt")) {
		t.Fatalf("safety copy of the working directory: %q", kept)
	}
}

func TestE2ERestoreIncludeExclude(t *testing.T) {
	e := newEnv(t)
	src := smallTree(t)
	e.mustRun("backup", src)
	full := repoTreeDigest(t, src)
	only := func(keep func(rel string) bool) map[string]string {
		out := map[string]string{}
		for p, d := range full {
			if keep(filepath.ToSlash(p)) {
				out[p] = d
			}
		}
		return out
	}
	for _, c := range []struct {
		name  string
		args  []string
		want  func(rel string) bool
		files uint64
	}{
		{"include dir", []string{"--include", "keep"}, func(p string) bool { return p == "keep" || strings.HasPrefix(p, "keep/") }, 2},
		{"include glob", []string{"--include", "*.log"}, func(p string) bool { return p == "top.log" || p == "keep" || p == "keep/sub" || p == "keep/sub/b.log" }, 2},
		{"include doublestar", []string{"--include", "other/**/*.txt"}, func(p string) bool {
			return p == "other" || p == "other/deep" || p == "other/deep/d.txt" || p == "other/f.txt"
		}, 2},
		{"exclude", []string{"--exclude", "cache", "--exclude", "*.tmp"}, func(p string) bool {
			return !strings.HasPrefix(p, "cache") && !strings.HasSuffix(p, ".tmp")
		}, 6},
		{"include and exclude", []string{"--include", "other", "--exclude", "deep"}, func(p string) bool { return p == "other" || p == "other/f.txt" }, 1},
		// A negated pattern takes back part of what the ones before it
		// matched; --iinclude/--iexclude ignore case.
		{"negated include", []string{"--include", "keep", "--include", "!keep/sub"}, func(p string) bool { return p == "keep" || p == "keep/a.txt" }, 1},
		{"negated exclude", []string{"--exclude", "*.txt", "--exclude", "!other/f.txt"}, func(p string) bool {
			return !strings.HasSuffix(p, ".txt") || p == "other/f.txt"
		}, 5},
		{"iinclude", []string{"--iinclude", "*.LOG"}, func(p string) bool { return p == "top.log" || p == "keep" || p == "keep/sub" || p == "keep/sub/b.log" }, 2},
		{"iexclude", []string{"--iexclude", "CACHE", "--iexclude", "*.Tmp"}, func(p string) bool {
			return !strings.HasPrefix(p, "cache") && !strings.HasSuffix(p, ".tmp")
		}, 6},
	} {
		t.Run(c.name, func(t *testing.T) {
			dst := filepath.Join(t.TempDir(), "dst")
			var res restoreJSON
			out := e.mustRun(append([]string{"restore", "latest", "--target", dst, "--json"}, c.args...)...)
			mustOK(t, json.Unmarshal([]byte(out), &res))
			if res.Result.Files != c.files {
				t.Errorf("restored %d files, want %d", res.Result.Files, c.files)
			}
			// Directories on the way to what was picked keep their
			// snapshot metadata (mtime included).
			sameDigest(t, c.name, only(c.want), repoTreeDigest(t, inSnapshot(t, dst, src)))
		})
	}
	e.wantFail(exitUsage, `--include "[a": not a valid pattern`, "restore", "latest", "--target", t.TempDir()+"/x", "--include", "[a")
	e.wantFail(exitUsage, "a space is restored whole", "restore", "--space", "s1", "--latest", "--target", t.TempDir(), "--include", "x")

	// A space snapshot named by id is refused too, before anything is written.
	dd := filepath.Join(t.TempDir(), "dd")
	mustOK(t, os.MkdirAll(filepath.Join(dd, "spaces", "s1", "warm"), 0o755))
	mustOK(t, os.WriteFile(filepath.Join(dd, "spaces", "s1", "warm", "warm_tier.dat"), []byte("warm"), 0o644))
	e.mustRun("backup", "--data-dir", dd, "--space", "s1", "--allow-tier-rewrite") // a made-up tier file
	target := filepath.Join(t.TempDir(), "t")
	e.wantFail(exitUsage, "is of space s1, which is restored whole", "restore", "latest", "--target", target, "--exclude", "warm")
	if exists(target) {
		t.Error("a refused partial restore of a space created its target")
	}
}

// fileChunk finds the file named name in the latest snapshot and returns
// the ID of its chunk i, the pack holding it and an offset inside the
// stored blob.
func (e *env) fileChunk(t *testing.T, name string, i int) (chunk.ID, string, int64) {
	t.Helper()
	ctx := context.Background()
	r := e.openRepo(t)
	defer r.Close()
	sn, err := r.FindSnapshot(ctx, "latest")
	mustOK(t, err)
	var find func(id chunk.ID) *repo.Node
	find = func(id chunk.ID) *repo.Node {
		tree, err := r.LoadTree(ctx, "", id)
		mustOK(t, err)
		for _, n := range tree.Nodes {
			if n.Type == repo.NodeFile && n.Name == name {
				return n
			}
			if n.Subtree != nil {
				if f := find(*n.Subtree); f != nil {
					return f
				}
			}
		}
		return nil
	}
	n := find(sn.Root)
	if n == nil {
		t.Fatalf("no file %s in the snapshot", name)
	}
	cid := n.Content[i]
	locs, err := r.Locate("", []chunk.ID{cid})
	mustOK(t, err)
	loc := locs[cid]
	h := fmt.Sprintf("%x", loc.Pack)
	return cid, filepath.Join(e.repo, "data", h[:2], h), int64(loc.Offset) + int64(loc.Length)/2
}

func TestE2ERestoreSkipDamaged(t *testing.T) {
	e := newEnv(t)
	src := filepath.Join(t.TempDir(), "src")
	writeRandomTree(t, src, 3<<20, 11)
	mustOK(t, os.WriteFile(filepath.Join(src, "small.txt"), []byte("small\n"), 0o644))
	e.mustRun("backup", src)
	id, pack, off := e.fileChunk(t, "file-000.bin", 0)
	f, err := os.OpenFile(pack, os.O_RDWR, 0)
	mustOK(t, err)
	b := []byte{0}
	_, err = f.ReadAt(b, off)
	mustOK(t, err)
	b[0] ^= 0x40
	_, err = f.WriteAt(b, off)
	mustOK(t, err)
	mustOK(t, f.Close())

	// Without --skip-damaged: exit 5, nothing written.
	dst := filepath.Join(t.TempDir(), "dst")
	e.wantFail(exitCorrupt, "file-000.bin", "restore", "latest", "--target", dst)
	if exists(dst) {
		t.Fatal("a failed restore left its target")
	}
	// With it: everything else restored and kept, the damaged file listed
	// with its chunk and pack, exit 5.
	r := e.run("restore", "latest", "--target", dst, "--skip-damaged")
	packName := filepath.Base(pack)
	if r.code != exitCorrupt {
		t.Fatalf("restore --skip-damaged: exit %d, want %d\n%s%s", r.code, exitCorrupt, r.stdout, r.stderr)
	}
	for _, want := range []string{"damaged, not restored: file ", "file-000.bin: chunk " + id.String() + " in pack " + packName,
		"memento: restore into " + dst + " is INCOMPLETE: 1 damaged path(s) could not be read and are not in it (kept because of --skip-damaged)"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr does not contain %q:\n%s", want, r.stderr)
		}
	}
	if !strings.Contains(r.stdout, "INCOMPLETE") {
		t.Errorf("stdout does not say the result is incomplete:\n%s", r.stdout)
	}
	want := repoTreeDigest(t, src)
	got := repoTreeDigest(t, inSnapshot(t, dst, src))
	lost := filepath.Join("d00", "file-000.bin")
	if _, ok := got[lost]; ok {
		t.Errorf("the damaged file %s was restored", lost)
	}
	delete(want, lost)
	sameDigest(t, "restore --skip-damaged", want, got)

	// --json carries the list too.
	dst2 := filepath.Join(t.TempDir(), "dst2")
	r = e.run("restore", "latest", "--target", dst2, "--skip-damaged", "--json")
	var res restoreJSON
	if r.code != exitCorrupt {
		t.Fatalf("--json: exit %d\n%s", r.code, r.stderr)
	}
	mustOK(t, json.Unmarshal([]byte(r.stdout), &res))
	if d := res.Result.Damaged; len(d) != 1 || d[0].Kind != "file" || !strings.HasSuffix(d[0].Path, "d00/file-000.bin") ||
		d[0].Chunk != id.String() || d[0].Pack != packName || d[0].Error == "" {
		t.Errorf("JSON damaged list: %+v", res.Result.Damaged)
	}
	if res.Result.Files != uint64(len(want)-countDirs(want)) {
		t.Errorf("JSON says %d files restored, want %d", res.Result.Files, len(want)-countDirs(want))
	}
}

// countDirs counts the directories of a repoTreeDigest.
func countDirs(d map[string]string) int {
	n := 0
	for _, v := range d {
		if strings.HasPrefix(v, "d") {
			n++
		}
	}
	return n
}

func TestE2ERestoreFlagContradictions(t *testing.T) {
	e := newEnv(t)
	tgt := t.TempDir() + "/t"
	for _, c := range []struct {
		msg  string
		args []string
	}{
		{"--latest restores the newest snapshot, --at/--to-seq a point in time: give one of them", []string{"restore", "--space", "s1", "--latest", "--at", "2026-01-01T00:00:00Z", "--target", tgt}},
		{"--latest restores the newest snapshot, --at/--to-seq a point in time", []string{"restore", "--space", "s1", "--latest", "--to-seq", "5", "--target", tgt}},
		{"give either --at or --to-seq, not both", []string{"restore", "--space", "s1", "--at", "2026-01-01T00:00:00Z", "--to-seq", "5", "--target", tgt}},
		{"--skip-damaged does not go with --at/--to-seq", []string{"restore", "--space", "s1", "--at", "2026-01-01T00:00:00Z", "--skip-damaged", "--target", tgt}},
		{"--skip-damaged with a space needs --as-new", []string{"restore", "--space", "s1", "--latest", "--skip-damaged", "--target", tgt}},
		{"pitr ranges needs --space ID", []string{"pitr", "ranges"}},
		{"name a snapshot, or give --space ID with --latest, --at T or --to-seq N", []string{"restore", "--target", tgt}},
	} {
		e.wantFail(exitUsage, c.msg, c.args...)
	}
	r := e.run("restore", "--help")
	for _, want := range []string{"--at T", "--to-seq N", "--include", "--exclude", "--skip-damaged", "--force-target"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("restore --help does not mention %q", want)
		}
	}
}

func TestE2EBackupTagValidation(t *testing.T) {
	e := newEnv(t)
	src := smallTree(t)
	for _, c := range []struct{ tag, msg string }{
		{"", "--tag: empty tag"},
		{"a b/c", `--tag: tag "a b/c" contains ' '`},
		{"x/y", `contains '/'`},
		{"ok,", "--tag: empty tag"},
		{"tab\tx", `contains '\t'`},
		{strings.Repeat("t", 129), "at most 128"},
		{"identity:abc", "are written only by memento"},
	} {
		e.wantFail(exitUsage, c.msg, "backup", src, "--tag", "nightly", "--tag", c.tag)
	}
	if ids := e.snapshotIDs(); len(ids) != 0 {
		t.Fatalf("refused backups wrote snapshots: %v", ids)
	}
	e.mustRun("backup", src, "--tag", "nightly,env:prod", "--tag", "before-upgrade")
	m := e.startMount(t)
	defer m.stop(syscall.SIGINT, 15*time.Second)
	for _, tag := range []string{"nightly", "env:prod", "before-upgrade"} {
		if _, err := os.Readlink(filepath.Join(m.mp, "tags", tag, "latest")); err != nil {
			t.Errorf("tag %s not under the mount's tags/: %v (tags/ holds %q)", tag, err, entries(t, filepath.Join(m.mp, "tags")))
		}
	}
	if got := entries(t, filepath.Join(m.mp, "tags")); len(got) != 3 {
		t.Errorf("tags/ holds %q, want the 3 tags given", got)
	}
}
