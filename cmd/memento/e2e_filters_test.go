package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"memento/repo/repotest"
)

// goSrcSubset copies some packages of the Go toolchain's src/ (a real tree:
// sources, tests, testdata with archives and odd names) into dir.
func goSrcSubset(t *testing.T, dir string) {
	t.Helper()
	out, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		t.Fatalf("go env GOROOT: %v", err)
	}
	goroot := strings.TrimSpace(string(out))
	for _, pkg := range []string{"archive", "bufio", "container", "sort", "strings"} {
		from := filepath.Join(goroot, "src", pkg)
		if _, err := os.Stat(from); err != nil {
			t.Fatalf("the Go toolchain's src/%s: %v", pkg, err)
		}
		mustOK(t, os.CopyFS(filepath.Join(dir, pkg), os.DirFS(from)))
	}
}

// repoState is every file of a repository directory with its SHA-256.
func repoState(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	mustOK(t, filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if d.IsDir() {
			out[rel+"/"] = "dir"
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		h := sha256.Sum256(b)
		out[rel] = hex.EncodeToString(h[:])
		return nil
	}))
	return out
}

// backupSummary runs a --json backup and returns its one result.
func (e *env) backupSummary(args ...string) backupJSON {
	e.t.Helper()
	var res []backupJSON
	out := e.mustRun(append([]string{"backup", "--json"}, args...)...)
	if err := json.Unmarshal([]byte(out), &res); err != nil || len(res) != 1 {
		e.t.Fatalf("backup --json: %v\n%s", err, out)
	}
	return res[0]
}

// TestBackupFilters (issue 17): --exclude (unanchored and anchored globs,
// **), --exclude-file, --dry-run (same figures as the backup, the
// repository byte-identical after), --files-from, --stdin and the refusals,
// through the real binary on a copy of part of the Go toolchain's src/.
func TestBackupFilters(t *testing.T) {
	e := newEnv(t)
	work := t.TempDir()
	src := filepath.Join(work, "gosrc")
	goSrcSubset(t, src)
	list := filepath.Join(src, "container", "list")
	exFile := filepath.Join(work, "excludes")
	mustOK(t, os.WriteFile(exFile, []byte("# the list package, anchored\n\n"+list+"\n**/zip/*.go\n"), 0o644))
	args := []string{src, "--exclude", "*_test.go", "--exclude", "testdata", "--exclude-file", exFile}

	// What the backup must hold: src without what the patterns match.
	want := repoTreeDigest(t, src)
	dropped := 0
	for p := range want {
		base := filepath.Base(p)
		if strings.HasSuffix(base, "_test.go") || strings.Contains("/"+p+"/", "/testdata/") ||
			p == "container/list" || strings.HasPrefix(p, "container/list/") ||
			(strings.HasPrefix(p, "archive/zip/") && strings.HasSuffix(p, ".go")) {
			delete(want, p)
			dropped++
		}
	}
	if dropped < 20 || len(want) < 20 {
		t.Fatalf("the tree is not a test of excludes: %d entries kept, %d dropped", len(want), dropped)
	}

	before := repoState(t, e.repo)
	dry := e.backupSummary(append(args, "--dry-run")...)
	sameDigest(t, "repository after a dry run", before, repoState(t, e.repo))
	if !dry.DryRun || dry.Snapshot != "" || dry.Summary.NewBytes == 0 {
		t.Fatalf("dry run result: %+v", dry)
	}
	if out := e.mustRun("snapshots"); !strings.Contains(out, "0 snapshots") && strings.Contains(out, "gosrc") {
		t.Fatalf("a dry run left a snapshot:\n%s", out)
	}
	real := e.backupSummary(args...)
	if d, r := dry.Summary, real.Summary; d.Files != r.Files || d.Bytes != r.Bytes || d.NewBytes != r.NewBytes || d.Excluded != r.Excluded || r.Excluded == 0 {
		t.Errorf("dry run figures %+v differ from the backup's %+v", d, r)
	}
	dst := filepath.Join(t.TempDir(), "r")
	e.mustRun("restore", real.Snapshot, "--target", dst)
	sameDigest(t, "restored with excludes", want, repoTreeDigest(t, inSnapshot(t, dst, src)))

	// --files-from: comments, blank lines, two sources of one name in
	// different directories (the full-path layout keeps both).
	a, b := filepath.Join(work, "srv", "a", "x"), filepath.Join(work, "srv", "b", "x")
	repotest.WriteFile(t, filepath.Join(a, "f"), []byte("a\n"), 0o644)
	repotest.WriteFile(t, filepath.Join(b, "f"), []byte("b\n"), 0o644)
	from := filepath.Join(work, "from")
	mustOK(t, os.WriteFile(from, []byte("# sources\n"+a+"\n\n"+b+"\n"), 0o644))
	res := e.backupSummary("--files-from", from)
	if strings.Join(res.Paths, " ") != a+" "+b {
		t.Errorf("--files-from paths %q", res.Paths)
	}
	dst = filepath.Join(t.TempDir(), "r")
	e.mustRun("restore", res.Snapshot, "--target", dst)
	for p, w := range map[string]string{a: "a\n", b: "b\n"} {
		if got, err := os.ReadFile(filepath.Join(inSnapshot(t, dst, p), "f")); err != nil || string(got) != w {
			t.Errorf("%s/f restored as %q, %v", p, got, err)
		}
	}

	// --stdin: 3 MiB through a pipe (not seekable, as from pg_dump) into one file.
	data := repotest.RandomBytes(17, 3<<20)
	dump := filepath.Join(work, "dump")
	mustOK(t, os.WriteFile(dump, data, 0o600))
	r := e.runBin("/bin/sh", "-c", `cat "$1" | "$0" backup --stdin --stdin-filename dump.sql --json`, mementoBin, dump)
	if r.code != 0 {
		t.Fatalf("backup --stdin: exit %d: %s", r.code, r.stderr)
	}
	dst = filepath.Join(t.TempDir(), "r")
	e.mustRun("restore", "latest", "--target", dst)
	if got, err := os.ReadFile(filepath.Join(dst, "dump.sql")); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("stdin restored: %d bytes, %v", len(got), err)
	}

	e.wantFail(exitUsage, `--exclude: "a[": not a valid pattern`, "backup", src, "--exclude", "a[")
	e.wantFail(exitUsage, `--iexclude: "!": empty pattern`, "backup", src, "--iexclude", "!")
	e.wantFail(exitUsage, "apply to path backups", "backup", "--data-dir", work, "--all", "--exclude", "x")
	e.wantFail(exitUsage, "--stdin backs up standard input: give no paths", "backup", "--stdin", src)
	e.wantFail(exitUsage, "--files-from", "backup", "--files-from", filepath.Join(work, "missing"))
	e.wantFail(exitNotFound, "no such file", "backup", filepath.Join(work, "missing"))
}

// TestBackupFiltersNegatedAndCaseless (issue 17): a negated --exclude
// ("!PATTERN") takes back what an earlier pattern left out; --iexclude and
// --iexclude-file ignore case. The restored tree is exactly the kept part.
func TestBackupFiltersNegatedAndCaseless(t *testing.T) {
	e := newEnv(t)
	src := smallTree(t)
	P := inSnapshot(t, "/", src)
	exFile := filepath.Join(t.TempDir(), "iexcludes")
	mustOK(t, os.WriteFile(exFile, []byte("# deep text, any case\nD.TXT\n"), 0o644))
	res := e.backupSummary(src, "--exclude", P+"/*", "--exclude", "!"+P+"/keep", "--exclude", "!"+P+"/other",
		"--iexclude", "*.TMP", "--iexclude-file", exFile)
	want := map[string]string{}
	for p, d := range repoTreeDigest(t, src) {
		switch filepath.ToSlash(p) {
		case "keep", "keep/a.txt", "keep/sub", "keep/sub/b.log", "other", "other/f.txt", "other/deep":
			want[p] = d
		}
	}
	if len(want) != 7 {
		t.Fatalf("the tree is not a test of the patterns: %v", want)
	}
	dst := filepath.Join(t.TempDir(), "r")
	e.mustRun("restore", res.Snapshot, "--target", dst)
	got := repoTreeDigest(t, inSnapshot(t, dst, src))
	// other/deep lost its files, so its mtime differs from the source's.
	delete(want, "other/deep")
	delete(got, "other/deep")
	sameDigest(t, "restored after negated and case-insensitive excludes", want, got)
}

// TestBackupOneFileSystem (issue 17): with --one-file-system a directory
// where another file system is mounted is stored empty; without, its files
// are backed up.
func TestBackupOneFileSystem(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	e := newEnv(t)
	src := filepath.Join(t.TempDir(), "src")
	repotest.WriteFile(t, filepath.Join(src, "here"), []byte("on the source's file system\n"), 0o644)
	mnt := filepath.Join(src, "mnt")
	mustOK(t, os.Mkdir(mnt, 0o755))
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", mnt).Run() })
	repotest.WriteFile(t, filepath.Join(mnt, "elsewhere"), []byte("on the tmpfs\n"), 0o644)

	for _, c := range []struct {
		flag      string
		elsewhere bool
	}{{"--one-file-system", false}, {"--exclude=nothing-matches", true}} {
		id := e.backupSummary(src, c.flag).Snapshot
		dst := filepath.Join(t.TempDir(), "r")
		e.mustRun("restore", id, "--target", dst)
		root := inSnapshot(t, dst, src)
		if _, err := os.Stat(filepath.Join(root, "here")); err != nil {
			t.Errorf("%s: %v", c.flag, err)
		}
		if fi, err := os.Stat(filepath.Join(root, "mnt")); err != nil || !fi.IsDir() {
			t.Errorf("%s: the mount point is not restored as a directory: %v", c.flag, err)
		}
		_, err := os.Stat(filepath.Join(root, "mnt", "elsewhere"))
		if (err == nil) != c.elsewhere {
			t.Errorf("%s: mnt/elsewhere restored: %v, want %v", c.flag, err == nil, c.elsewhere)
		}
	}
}

// TestOldLayoutSnapshotsStayReadable (issue 17): a snapshot of the first
// layout (paths by their last element), from the format-1 golden
// repository, still lists and restores through the binary, at
// TARGET/<last element>, while new snapshots use the full-path layout.
func TestOldLayoutSnapshotsStayReadable(t *testing.T) {
	e := &env{t: t, repo: filepath.Join(t.TempDir(), "repo"), cache: filepath.Join(t.TempDir(), "cache"), password: "memento golden v1"}
	mustOK(t, os.CopyFS(e.repo, os.DirFS(filepath.Join("..", "..", "repo", "testdata", "repo-v1-insecure", "repo"))))
	var sns []struct {
		ID     string   `json:"id"`
		Space  string   `json:"space"`
		Paths  []string `json:"paths"`
		Layout string   `json:"layout"`
	}
	mustOK(t, json.Unmarshal([]byte(e.mustRun("snapshots", "--json")), &sns))
	old := ""
	for _, s := range sns {
		if s.Space == "" {
			old = s.ID
			if s.Layout != "" {
				t.Errorf("the golden path snapshot has layout %q", s.Layout)
			}
		}
	}
	if old == "" {
		t.Fatalf("no path snapshot in the golden repository")
	}
	if out := e.mustRun("ls", old); !strings.Contains(out, " /src/sub dir/link -> ../hello.txt") {
		t.Errorf("ls of a first-layout snapshot:\n%s", out)
	}
	dst := filepath.Join(t.TempDir(), "r")
	e.mustRun("restore", old, "--target", dst)
	if b, err := os.ReadFile(filepath.Join(dst, "src", "hello.txt")); err != nil || string(b) != "hello, memento\n" {
		t.Fatalf("first-layout restore: %q, %v", b, err)
	}
	// A new backup in the same repository uses the full-path layout.
	src := filepath.Join(t.TempDir(), "src")
	repotest.WriteFile(t, filepath.Join(src, "n"), []byte("new\n"), 0o644)
	id := e.backupSummary(src).Snapshot
	mustOK(t, json.Unmarshal([]byte(e.mustRun("snapshots", "--json")), &sns))
	for _, s := range sns {
		if s.ID == id && s.Layout != "full" {
			t.Errorf("new snapshot layout %q, want full", s.Layout)
		}
	}
}
