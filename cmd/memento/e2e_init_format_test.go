package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"memento/repo"
)

// TestInitFormat: 'init --format 5' creates a repository of format 5 (its
// config says so, byte for byte; info shows it) for the binaries of the
// previous release, which refuse format 6 as a whole. A path backup of
// small files into it stores no member blob (check's member_blobs_used,
// which a repository of the current format of the same tree has); a
// second backup, forget, prune, check --read-data and a restore work on
// it, and it stays format 5. --format 2 picks xchacha20-poly1305. A format
// this binary does not create, or XAES-256-GCM with format 2, is a usage
// error (exit 2, one line naming the value and what is accepted) that
// creates nothing.
func TestInitFormat(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src")
	for i := range 120 {
		p := filepath.Join(src, fmt.Sprintf("d%d", i%6), fmt.Sprintf("f%03d.py", i))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, bytes.Repeat(fmt.Appendf(nil, "def f%d(x):\n    return x + %d\n", i, i*7), 20+i), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	membersUsed := func(e *env) int {
		var rep struct {
			Figures map[string]int `json:"figures"`
		}
		if err := json.Unmarshal([]byte(e.mustRun("check", "--read-data", "--json")), &rep); err != nil {
			t.Fatal(err)
		}
		if rep.Figures["snapshots_intact"] != rep.Figures["snapshots"] {
			t.Fatalf("check --read-data: %v", rep.Figures)
		}
		return rep.Figures["member_blobs_used"]
	}

	d := t.TempDir()
	e := &env{t: t, repo: filepath.Join(d, "repo"), cache: filepath.Join(d, "cache"), password: "correct horse"}
	var out struct {
		Encryption string `json:"encryption"`
		Version    int    `json:"version"`
	}
	if err := json.Unmarshal([]byte(e.mustRun("init", "--format", "5", "--json")), &out); err != nil {
		t.Fatal(err)
	}
	if out.Version != 5 || out.Encryption != repo.EncryptionXAES {
		t.Fatalf("init --format 5: %+v", out)
	}
	if info := e.mustRun("info"); !strings.Contains(info, "format version 5, encryption xaes-256-gcm,") {
		t.Fatalf("info of a format-5 repository:\n%s", info)
	}
	e.mustRun("backup", src)
	if n := membersUsed(e); n != 0 {
		t.Fatalf("format 5: check counts %d member blobs used, want none", n)
	}
	if err := os.WriteFile(filepath.Join(src, "d0", "f000.py"), []byte("def f0(x):\n    return 0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.mustRun("backup", src)
	e.mustRun("forget", e.snapshotIDs()[0])
	e.mustRun("prune", "--max-unused", "0%")
	if n := membersUsed(e); n != 0 {
		t.Fatalf("format 5 after prune: check counts %d member blobs used, want none", n)
	}
	tgt := filepath.Join(d, "t")
	e.mustRun("restore", "latest", "--target", tgt)
	sameDigest(t, "restore of a format-5 repository", repoTreeDigest(t, src), repoTreeDigest(t, filepath.Join(tgt, strings.TrimPrefix(src, "/"))))
	cfg, err := os.ReadFile(filepath.Join(e.repo, "config"))
	if err != nil || !bytes.Contains(cfg, []byte("{\n  \"version\": 5,\n")) {
		t.Fatalf("config after backups and prune (%v):\n%s", err, cfg)
	}

	cur := newEnv(t)
	cur.mustRun("backup", src)
	if n := membersUsed(cur); n == 0 {
		t.Fatalf("format %d: check counts no member blob used; the tree's files are not small", repo.FormatVersion)
	}

	d2 := t.TempDir()
	e2 := &env{t: t, repo: filepath.Join(d2, "repo"), cache: filepath.Join(d2, "cache"), password: "correct horse"}
	if got := e2.mustRun("init", "--format", "2"); !strings.Contains(got, "(format 2, encryption: xchacha20-poly1305)") {
		t.Fatalf("init --format 2: %s", got)
	}
	e2.mustRun("backup", src)
	e2.mustRun("check", "--read-data")

	d3 := t.TempDir()
	e3 := &env{t: t, repo: filepath.Join(d3, "repo"), cache: filepath.Join(d3, "cache"), password: "correct horse"}
	e3.wantFail(exitUsage, "memento: --format 1: this binary creates repository formats 2 to 6\n", "init", "--format", "1")
	e3.wantFail(exitUsage, "memento: --format 7: this binary creates repository formats 2 to 6\n", "init", "--format", "7")
	e3.wantFail(exitUsage, "memento: --cipher xaes-256-gcm with --format 2: the cipher needs format 3 or later\n", "init", "--format", "2", "--cipher", "xaes-256-gcm")
	e3.wantFail(exitUsage, `memento: invalid argument "five" for "--format" flag`, "init", "--format", "five")
	if _, err := os.Stat(e3.repo); !os.IsNotExist(err) {
		t.Errorf("a refused init left %s (%v)", e3.repo, err)
	}
}
