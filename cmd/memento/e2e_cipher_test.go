package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"memento/repo"
)

// TestInitCipher: init picks XAES-256-GCM (a new repository of the current format) unless --cipher says
// xchacha20-poly1305; info and --json report it; a repository of either
// cipher backs up and restores byte for byte; an unknown cipher, or one
// with --insecure-no-encryption, is a usage error (exit 2, one line naming
// --cipher) that creates nothing.
func TestInitCipher(t *testing.T) {
	src := t.TempDir()
	want := []byte(strings.Repeat("memento sealed with a cipher\n", 5000))
	if err := os.WriteFile(filepath.Join(src, "f.txt"), want, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		enc  string
	}{
		{nil, "xaes-256-gcm"},
		{[]string{"--cipher", "xchacha20-poly1305"}, "xchacha20-poly1305"},
		{[]string{"--cipher", "xaes-256-gcm"}, "xaes-256-gcm"},
	} {
		d := t.TempDir()
		e := &env{t: t, repo: filepath.Join(d, "repo"), cache: filepath.Join(d, "cache"), password: "correct horse"}
		var out struct {
			Encryption string `json:"encryption"`
			Version    int    `json:"version"`
		}
		if err := json.Unmarshal([]byte(e.mustRun(append([]string{"init", "--json"}, c.args...)...)), &out); err != nil {
			t.Fatal(err)
		}
		if out.Encryption != c.enc || out.Version != repo.FormatVersion {
			t.Fatalf("init %v: %+v, want encryption %s, version %d", c.args, out, c.enc, repo.FormatVersion)
		}
		if info := e.mustRun("info"); !strings.Contains(info, fmt.Sprintf("format version %d, encryption %s,", repo.FormatVersion, c.enc)) {
			t.Errorf("info of a %s repository:\n%s", c.enc, info)
		}
		e.mustRun("backup", src)
		e.mustRun("verify", "--all", "--level", "L2")
		tgt := filepath.Join(d, "t")
		e.mustRun("restore", "latest", "--target", tgt)
		got, err := os.ReadFile(filepath.Join(tgt, strings.TrimPrefix(src, "/"), "f.txt"))
		if err != nil {
			got, err = os.ReadFile(filepath.Join(tgt, "f.txt"))
		}
		if err != nil || string(got) != string(want) {
			t.Fatalf("%s: restored %d bytes (%v), want %d", c.enc, len(got), err, len(want))
		}
	}
	d := t.TempDir()
	e := &env{t: t, repo: filepath.Join(d, "repo"), cache: filepath.Join(d, "cache"), password: "correct horse"}
	e.wantFail(exitUsage, `memento: --cipher "aes-256-gcm": unknown cipher (want xaes-256-gcm or xchacha20-poly1305)`, "init", "--cipher", "aes-256-gcm")
	e.wantFail(exitUsage, "memento: --cipher xaes-256-gcm with --insecure-no-encryption", "init", "--cipher", "xaes-256-gcm", "--insecure-no-encryption")
	if _, err := os.Stat(e.repo); !os.IsNotExist(err) {
		t.Errorf("a refused init left %s (%v)", e.repo, err)
	}
}
