package deploy_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"memento/deploy/runbook"
)

// TestGuideBlocks runs the command blocks of the operations guide
// (docs/operations/backup-restore.md), tagged <!-- guide:GROUP step:STEP -->,
// in document order with bash against memento and engram-sim built from
// this tree, on an engram-sim data dir, and checks what each did. The
// guide's system paths are moved under a temporary root (the blocks and the
// memento.env they install are rewritten, nothing else). Every ```sh block
// of the guide is run or tagged not-run with a reason, and every block run
// has its checks here: a new block without them fails.
func TestGuideBlocks(t *testing.T) {
	needTool(t, "bash", "bash")
	needTool(t, "fusermount3", "fuse3")
	doc, err := runbook.Load("../docs/operations/backup-restore.md", "guide")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range doc.Unmarked {
		t.Errorf("%s:%d: ```sh block neither tagged <!-- guide:GROUP step:STEP --> nor <!-- guide:not-run REASON -->", doc.Path, l)
	}
	for _, s := range doc.Skipped {
		t.Logf("not run (%s:%d): %s", doc.Path, s.Line, s.Reason)
	}

	e := newOpsEnv(t)
	root := filepath.Join(e.dir, "root")
	var moved []string
	for _, p := range []string{"/etc/memento", "/srv/", "/var/lib/engram", "/var/cache/memento", "/mnt/"} {
		moved = append(moved, p, root+p)
	}
	rw := strings.NewReplacer(moved...)
	// The guide's paths, moved: the assertions read the same places.
	e.data = rw.Replace("/var/lib/engram")
	e.repo = rw.Replace("/srv/memento")
	e.env = append(e.env, "MEMENTO_REPOSITORY="+e.repo, "MEMENTO_PASSWORD_FILE="+rw.Replace("/etc/memento/password"),
		"MEMENTO_CACHE_DIR="+rw.Replace("/var/cache/memento"), "ENGRAM_DATA_DIR="+e.data)
	e.tool("engram-sim", "generate", "--dir", e.data, "--size", "2M", "--spaces", "2", "--seed", "11", "--segment-size", "128KiB")
	const space = "space-a"
	full := e.truthOf(e.data, space)
	// AT: an instant between the checkpoint (where a restore of the
	// snapshot starts) and the newest entry, so that only the WAL
	// archived on top of the snapshot recovers it.
	var cp struct {
		Sequence uint64 `json:"sequence"`
	}
	if err := json.Unmarshal([]byte(readFile(t, filepath.Join(e.data, "spaces", space, "checkpoint.json"))), &cp); err != nil {
		t.Fatal(err)
	}
	if full.Sequence < cp.Sequence+4 {
		t.Fatalf("space %s: checkpoint at %d, newest entry %d: no room for a point in time between", space, cp.Sequence, full.Sequence)
	}
	var mid truthLine
	if err := json.Unmarshal([]byte(e.tool("engram-sim", "truth", "--dir", e.data, "--space", space, "--to-seq", strconv.FormatUint((cp.Sequence+full.Sequence)/2, 10))), &mid); err != nil {
		t.Fatal(err)
	}

	// The checkout the blocks run in: the shipped memento.env (its paths
	// moved) and the operator scripts.
	checkout := filepath.Join(e.dir, "checkout")
	if err := os.MkdirAll(filepath.Join(checkout, "deploy", "systemd"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(checkout, "deploy", "systemd", "memento.env"), []byte(rw.Replace(readFile(t, "systemd/memento.env"))), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(rootDir(t), "scripts"), filepath.Join(checkout, "scripts")); err != nil {
		t.Fatal(err)
	}
	// The blocks' environment: the settings come from memento.env, as
	// for an operator; SPACE and AT are the guide's placeholders.
	var env []string
	for _, kv := range e.env {
		k, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(k, "MEMENTO_") && k != "ENGRAM_DATA_DIR" {
			env = append(env, kv)
		}
	}
	env = append(env, "SPACE="+space, "AT="+strconv.FormatInt(mid.TimestampNS, 10))
	r := &runbook.Runner{Doc: doc, Env: env, Dir: checkout, Replace: moved}

	wantDigest := func(dir string, want truthLine) {
		t.Helper()
		if got := e.truthOf(dir, space); got != want {
			t.Errorf("%s: space %s is %+v, want %+v", dir, space, got, want)
		}
	}
	checks := map[string]func(out string){
		"setup/init": func(string) {
			st, err := os.Stat(rw.Replace("/etc/memento/password"))
			if err != nil || st.Mode().Perm() != 0o600 || st.Size() < 32 {
				t.Errorf("password file: %v %v", st, err)
			}
			if s := e.snapshots(); len(s) != 0 {
				t.Errorf("a new repository has snapshots: %v", s)
			}
		},
		"scripts/examples": func(out string) {
			if n := countTag(e.snapshots(), "before-upgrade"); n != 2 {
				t.Errorf("%d snapshots tagged before-upgrade, want 2 (one per space)", n)
			}
			wantDigest(rw.Replace("/srv/restore-test"), mid)
		},
		"commands/backup": func(out string) {
			if n := countTag(e.snapshots(), "manual"); n != 2 {
				t.Errorf("%d snapshots tagged manual, want 2", n)
			}
		},
		"commands/restore": func(out string) {
			wantDigest(rw.Replace("/srv/restore-latest"), full)
			wantDigest(rw.Replace("/srv/restore-pitr"), mid)
			if !strings.Contains(out, mid.Digest) {
				t.Errorf("wal replay does not print the state digest %s:\n%s", mid.Digest, out)
			}
		},
		"commands/verify-prune": func(out string) {
			s := e.snapshots()
			if len(s) != 2 || countTag(s, "manual") != 2 {
				t.Errorf("after forget --keep-daily: %+v, want the two manual snapshots", s)
			}
		},
		"commands/replicate": func(out string) {
			src := e.snapshots()
			for _, s := range src {
				if !strings.Contains(out, s.ID[:8]) {
					t.Errorf("replica lacks snapshot %s:\n%s", s.ID, out)
				}
			}
		},
		"commands/mount": func(out string) {
			want := readFile(t, filepath.Join(e.data, "spaces", space, "checkpoint.json"))
			if !strings.Contains(out, want) {
				t.Errorf("mount: checkpoint.json read through the mount differs from the data dir's:\n%s\nwant\n%s", out, want)
			}
		},
	}
	for _, b := range doc.Blocks {
		check, ok := checks[b.Name]
		if !ok {
			t.Fatalf("%s:%d: block %s has no checks in TestGuideBlocks", doc.Path, b.Line, b.Name)
		}
		delete(checks, b.Name)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		start := time.Now()
		out, err := r.RunBlock(ctx, b)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("guide %s (%.1fs):\n%s", b.Name, time.Since(start).Seconds(), out)
		check(out)
	}
	for name := range checks {
		t.Errorf("the guide has no block %s", name)
	}
}
