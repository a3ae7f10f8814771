package deploy_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// opsScripts are the operator scripts in scripts/ops/.
var opsScripts = []string{
	"backup_full.sh", "backup_incremental.sh", "restore.sh", "restore_pitr.sh",
	"verify_backup.sh", "prune_backups.sh", "wal_compact.sh",
}

func TestShellcheck(t *testing.T) {
	sc := needTool(t, "shellcheck", "shellcheck")
	root := rootDir(t)
	var files []string
	for _, s := range opsScripts {
		p := filepath.Join("scripts", "ops", s)
		st, err := os.Stat(filepath.Join(root, p))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode()&0o111 == 0 {
			t.Errorf("%s is not executable", p)
		}
		src := readFile(t, filepath.Join(root, p))
		if !strings.HasPrefix(src, "#!/usr/bin/env bash\n") || !strings.Contains(src, "\nset -euo pipefail\n") {
			t.Errorf("%s must start with #!/usr/bin/env bash and set -euo pipefail", p)
		}
		files = append(files, p)
	}
	files = append(files, filepath.Join("scripts", "ops", "lib.sh"))
	// -x follows the scripts' "source" of lib.sh (paths from the root).
	run(t, root, nil, sc, append([]string{"-x", "--severity=style"}, files...)...)
}

// opsEnv is the environment of one scripts test: a data dir, a repository,
// and memento and engram-sim built from this tree.
type opsEnv struct {
	t                  *testing.T
	bin, dir, data     string
	repo, cache, truth string
	env                []string
}

func newOpsEnv(t *testing.T) *opsEnv {
	bin := buildBinaries(t)
	d := t.TempDir()
	e := &opsEnv{t: t, bin: bin, dir: d, data: filepath.Join(d, "data"), repo: filepath.Join(d, "repo"),
		cache: filepath.Join(d, "cache"), truth: filepath.Join(d, "truth.jsonl")}
	pw := filepath.Join(d, "password")
	if err := os.WriteFile(pw, []byte("ops-test-password\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "MEMENTO_") || strings.HasPrefix(k, "BACKUP_RETENTION_") || strings.HasPrefix(k, "AWS_") ||
			k == "ENGRAM_DATA_DIR" || k == "WAL_COMPACT_THRESHOLD" || k == "DRY_RUN" || k == "VERIFY_LEVEL" || k == "PATH" {
			continue
		}
		e.env = append(e.env, kv)
	}
	e.env = append(e.env,
		"PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"),
		"MEMENTO_REPOSITORY="+e.repo, "MEMENTO_PASSWORD_FILE="+pw, "MEMENTO_CACHE_DIR="+e.cache,
		"ENGRAM_DATA_DIR="+e.data, "MEMENTO_BIN="+filepath.Join(bin, "memento"))
	return e
}

// script runs scripts/ops/NAME with extra environment and returns its output
// and exit code.
func (e *opsEnv) script(name string, extraEnv []string, args ...string) (string, int) {
	e.t.Helper()
	cmd := exec.Command(filepath.Join(rootDir(e.t), "scripts", "ops", name), args...)
	cmd.Dir = e.dir
	cmd.Env = append(append([]string(nil), e.env...), extraEnv...)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return string(out), 0
	case errors.As(err, &ee):
		return string(out), ee.ExitCode()
	}
	e.t.Fatalf("%s: %v", name, err)
	return "", 0
}

// ok runs a script that must succeed.
func (e *opsEnv) ok(name string, extraEnv []string, args ...string) string {
	e.t.Helper()
	out, code := e.script(name, extraEnv, args...)
	if code != 0 {
		e.t.Fatalf("%s %s: exit %d\n%s", name, strings.Join(args, " "), code, out)
	}
	e.t.Logf("%s %s:\n%s", name, strings.Join(args, " "), out)
	return out
}

func (e *opsEnv) tool(name string, args ...string) string {
	e.t.Helper()
	return run(e.t, e.dir, e.env, filepath.Join(e.bin, name), args...)
}

type snapshotJSON struct {
	ID    string   `json:"id"`
	Space string   `json:"space"`
	Tags  []string `json:"tags"`
}

func (e *opsEnv) snapshots() []snapshotJSON {
	e.t.Helper()
	var s []snapshotJSON
	if err := json.Unmarshal([]byte(e.tool("memento", "snapshots", "--json")), &s); err != nil {
		e.t.Fatal(err)
	}
	return s
}

func countTag(snaps []snapshotJSON, tag string) int {
	n := 0
	for _, s := range snaps {
		if contains(s.Tags, tag) {
			n++
		}
	}
	return n
}

type truthLine struct {
	Space       string `json:"space"`
	Sequence    uint64 `json:"sequence"`
	TimestampNS int64  `json:"timestamp_ns"`
	Digest      string `json:"digest"`
}

// truthOf is engram-sim's replay of a data dir's space: its state digest.
func (e *opsEnv) truthOf(dataDir, space string) truthLine {
	e.t.Helper()
	var l truthLine
	if err := json.Unmarshal([]byte(e.tool("engram-sim", "truth", "--dir", dataDir, "--space", space)), &l); err != nil {
		e.t.Fatal(err)
	}
	return l
}

// treeDigest hashes every path, mode, size, mtime and content below dir.
func treeDigest(t *testing.T, dir string) string {
	t.Helper()
	h := sha256.New()
	var paths []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		paths = append(paths, p)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(paths)
	for _, p := range paths {
		st, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(h, "%s %v %d %d\n", p, st.Mode(), st.Size(), st.ModTime().UnixNano())
		if st.Mode().IsRegular() {
			f, err := os.Open(p)
			if err != nil {
				t.Fatal(err)
			}
			_, err = io.Copy(h, f)
			f.Close()
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

func walSegments(t *testing.T, data, space string) int {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(data, "spaces", space, "wal", "wal-*.log"))
	if err != nil {
		t.Fatal(err)
	}
	return len(m)
}

// TestOpsScripts runs every operator script against a real repository and
// an engram-sim data dir, and checks what each did: snapshots created,
// restored state digests equal to engram-sim's ground truth, memento's exit
// codes passed through, and nothing written under dry-run.
func TestOpsScripts(t *testing.T) {
	needTool(t, "bash", "bash")
	e := newOpsEnv(t)
	e.tool("engram-sim", "generate", "--dir", e.data, "--size", "8M", "--spaces", "2", "--seed", "7", "--segment-size", "256KiB")
	e.tool("memento", "init")

	// -h: usage on stdout, exit 0; a bad argument: exit 2.
	for _, s := range opsScripts {
		out := e.ok(s, nil, "-h")
		if !strings.HasPrefix(out, "Usage: "+s+" ") || !strings.Contains(out, "Environment:") {
			t.Errorf("%s -h does not print a usage with the environment:\n%s", s, out)
		}
		if out, code := e.script(s, nil, "--no-such-flag"); code != 2 || !strings.Contains(out, "unknown argument") {
			t.Errorf("%s --no-such-flag: exit %d, want 2\n%s", s, code, out)
		}
	}
	// A missing setting is a usage error naming it.
	if out, code := e.script("backup_full.sh", []string{"ENGRAM_DATA_DIR="}); code != 2 || !strings.Contains(out, "ENGRAM_DATA_DIR is not set") {
		t.Errorf("backup_full.sh without ENGRAM_DATA_DIR: exit %d, want 2\n%s", code, out)
	}

	// Dry run: every script prints its memento command lines and changes
	// nothing in the data dir, the repository or the cache.
	before := treeDigest(t, e.dir)
	m := filepath.Join(e.bin, "memento")
	for _, c := range []struct {
		script string
		env    []string
		args   []string
		want   []string
	}{
		{"backup_full.sh", []string{"DRY_RUN=1"}, nil,
			[]string{"+ " + m + " backup --data-dir " + e.data + " --all --force --tag full"}},
		{"backup_incremental.sh", nil, []string{"--dry-run"},
			[]string{"+ " + m + " wal archive --data-dir " + e.data + " --all", "+ " + m + " backup --data-dir " + e.data + " --all --tag incremental"}},
		{"restore.sh", []string{"DRY_RUN=1"}, []string{"--space", "space-a", "--target", filepath.Join(e.dir, "r0")},
			[]string{"+ " + m + " restore --space space-a --latest --target " + filepath.Join(e.dir, "r0")}},
		{"restore_pitr.sh", []string{"DRY_RUN=1"}, []string{"--space", "space-a", "--at", "2026-11-01T00:00:01Z", "--ranges"},
			[]string{"+ " + m + " pitr ranges --space space-a", "+ " + m + " restore --space space-a --at 2026-11-01T00:00:01Z --target " + e.data}},
		{"verify_backup.sh", []string{"DRY_RUN=1"}, []string{"--level", "L4"},
			[]string{"+ " + m + " verify --all --latest --level L4"}},
		{"prune_backups.sh", []string{"DRY_RUN=1"}, nil,
			[]string{"+ " + m + " forget --all --keep-daily 7 --keep-weekly 4 --keep-monthly 12", "+ " + m + " prune --max-unused 10%"}},
		{"wal_compact.sh", []string{"DRY_RUN=1", "WAL_COMPACT_THRESHOLD=0"}, nil,
			[]string{"+ " + m + " wal compact --data-dir " + e.data + " --space space-a --grace 168h", "+ " + m + " wal compact --data-dir " + e.data + " --space space-b --grace 168h"}},
	} {
		out := e.ok(c.script, c.env, c.args...)
		for _, w := range c.want {
			if !strings.Contains(out, w+"\n") {
				t.Errorf("%s dry run: want the line %q in\n%s", c.script, w, out)
			}
		}
	}
	if after := treeDigest(t, e.dir); after != before {
		t.Fatal("a dry run changed the data dir, the repository or the cache")
	}
	if snaps := e.snapshots(); len(snaps) != 0 {
		t.Fatalf("dry runs created %d snapshots", len(snaps))
	}

	// Full backup: one snapshot per space, tagged full.
	e.ok("backup_full.sh", nil, "--tag", "ops-test")
	snaps := e.snapshots()
	if len(snaps) != 2 || countTag(snaps, "full") != 2 || countTag(snaps, "ops-test") != 2 {
		t.Fatalf("after backup_full.sh: %+v, want 2 snapshots tagged full and ops-test", snaps)
	}

	// The database writes on; the incremental backup archives the WAL and
	// takes a new snapshot per space.
	e.tool("engram-sim", "run", "--dir", e.data, "--entries", "800", "--rate", "0", "--seed", "8",
		"--truth", e.truth, "--truth-every", "100", "--segment-size", "256KiB", "--same-ts", "0")
	e.ok("backup_incremental.sh", nil)
	snaps = e.snapshots()
	if len(snaps) != 4 || countTag(snaps, "incremental") != 2 {
		t.Fatalf("after backup_incremental.sh: %+v, want 2 more snapshots tagged incremental", snaps)
	}
	want := e.truthOf(e.data, "space-a")

	// restore.sh: the latest snapshot's state is the data dir's.
	r1 := filepath.Join(e.dir, "r1")
	e.ok("restore.sh", nil, "--space", "space-a", "--target", r1)
	if got := e.truthOf(r1, "space-a"); got.Digest != want.Digest || got.Sequence != want.Sequence {
		t.Errorf("restore.sh: restored state %+v, want %+v", got, want)
	}

	// restore_pitr.sh: an instant in the middle of the new writes, checked
	// against engram-sim's ground truth for it.
	var mid truthLine
	var lines []truthLine
	for _, l := range strings.Split(strings.TrimSpace(readFile(t, e.truth)), "\n") {
		var tl truthLine
		if err := json.Unmarshal([]byte(l), &tl); err != nil {
			t.Fatal(err)
		}
		if tl.Space == "space-a" {
			lines = append(lines, tl)
		}
	}
	if len(lines) < 3 {
		t.Fatalf("only %d ground-truth lines for space-a", len(lines))
	}
	mid = lines[len(lines)/2]
	r2 := filepath.Join(e.dir, "r2")
	e.ok("restore_pitr.sh", nil, "--space", "space-a", "--at", fmt.Sprint(mid.TimestampNS), "--target", r2, "--ranges")
	if got := e.truthOf(r2, "space-a"); got.Digest != mid.Digest || got.Sequence != mid.Sequence {
		t.Errorf("restore_pitr.sh --at %d: restored state %+v, want the ground truth %+v", mid.TimestampNS, got, mid)
	}

	// memento's exit codes come through: 7 not found, 8 unrecoverable.
	if out, code := e.script("restore.sh", nil, "--space", "no-such-space", "--target", filepath.Join(e.dir, "r3")); code != 7 {
		t.Errorf("restore.sh of a missing space: exit %d, want 7\n%s", code, out)
	}
	if out, code := e.script("restore_pitr.sh", nil, "--space", "space-a", "--at", "2000-01-01T00:00:00Z", "--target", filepath.Join(e.dir, "r4")); code != 8 {
		t.Errorf("restore_pitr.sh before every backup: exit %d, want 8\n%s", code, out)
	}

	// verify_backup.sh: the latest snapshot of every space passes L2, and
	// L4 (restore + replay + digest) for one space.
	if out := e.ok("verify_backup.sh", nil); strings.Count(out, "L2 PASSED") != 2 {
		t.Errorf("verify_backup.sh: want 2 L2 verdicts PASSED:\n%s", out)
	}
	if out := e.ok("verify_backup.sh", nil, "--space", "space-b", "--level", "L4"); !strings.Contains(out, "L4 PASSED") {
		t.Errorf("verify_backup.sh --level L4: no PASSED verdict:\n%s", out)
	}

	// wal_compact.sh: below the threshold nothing happens; above it the
	// archived sealed segments become one, and the state stays the same.
	segs, segsB := walSegments(t, e.data, "space-a"), walSegments(t, e.data, "space-b")
	if segs < 4 {
		t.Fatalf("space-a has %d WAL segments, the test needs at least 4", segs)
	}
	e.ok("wal_compact.sh", []string{fmt.Sprintf("WAL_COMPACT_THRESHOLD=%d", segs)})
	if n := walSegments(t, e.data, "space-a"); n != segs {
		t.Fatalf("wal_compact.sh below the threshold changed the WAL: %d segments, had %d", n, segs)
	}
	e.ok("wal_compact.sh", nil, "--threshold", "2", "--space", "space-a")
	if n := walSegments(t, e.data, "space-a"); n >= segs {
		t.Errorf("wal_compact.sh --threshold 2: still %d WAL segments (had %d)", n, segs)
	}
	if got := e.truthOf(e.data, "space-a"); got.Digest != want.Digest {
		t.Errorf("after wal_compact.sh the state is %+v, want %+v", got, want)
	}
	if n := walSegments(t, e.data, "space-b"); n != segsB {
		t.Errorf("wal_compact.sh --space space-a changed space-b's WAL: %d segments, had %d", n, segsB)
	}

	// prune_backups.sh: keep one daily snapshot per space (all were taken
	// today, so the incremental ones stay), then prune; check passes.
	e.ok("prune_backups.sh", []string{"BACKUP_RETENTION_DAILY=1", "BACKUP_RETENTION_WEEKLY=0", "BACKUP_RETENTION_MONTHLY=0"})
	snaps = e.snapshots()
	if len(snaps) != 2 || countTag(snaps, "incremental") != 2 {
		t.Errorf("after prune_backups.sh: %+v, want the 2 incremental snapshots", snaps)
	}
	e.tool("memento", "check")
	r5 := filepath.Join(e.dir, "r5")
	e.ok("restore.sh", nil, "--space", "space-a", "--target", r5)
	if got := e.truthOf(r5, "space-a"); got.Digest != want.Digest {
		t.Errorf("restore after prune: state %+v, want %+v", got, want)
	}
}
