package main

import (
	"bytes"
	"crypto/sha256"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"memento/repo/repotest"
)

// TestDumpTarget: dump --target writes the same bytes as dump to stdout (a
// file, and a directory as tar), refuses an existing file without --force
// and leaves it as it was, replaces it with --force, and a dump that fails
// on damaged data leaves no file and no temporary file behind.
func TestDumpTarget(t *testing.T) {
	e := newEnv(t)
	src := filepath.Join(t.TempDir(), "src")
	writeRandomTree(t, src, 3<<20, 17)
	big := filepath.Join(src, "big")
	content := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	repotest.WriteFile(t, big, content, 0o644)
	e.mustRun("backup", src)
	sp := inSnapshot(t, "/", src)
	out := t.TempDir()

	f := filepath.Join(out, "big")
	if got := e.mustRun("dump", "--target", f, "latest", sp+"/big"); got != "" {
		t.Fatalf("dump --target wrote to stdout: %q", got)
	}
	if got := mustRead(t, f); sha256.Sum256(got) != sha256.Sum256(content) {
		t.Fatalf("dump --target: %d bytes, not the file's %d", len(got), len(content))
	}
	tarFile := filepath.Join(out, "src.tar")
	e.mustRun("dump", "-t", tarFile, "latest", sp)
	if got, want := mustRead(t, tarFile), e.mustRun("dump", "latest", sp); sha256.Sum256(got) != sha256.Sum256([]byte(want)) || len(want) < 3<<20 {
		t.Fatalf("dump --target of a directory: %d bytes, stdout %d bytes, digests differ", len(got), len(want))
	}

	// An existing file is refused and kept; --force replaces it.
	if err := os.WriteFile(f, []byte("keep me"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.wantFail(exitUsage, "--target "+f+" exists: give --force to replace it", "dump", "--target", f, "latest", sp+"/big")
	if got := string(mustRead(t, f)); got != "keep me" {
		t.Fatalf("a refused dump changed the file: %q", got)
	}
	e.mustRun("dump", "--target", f, "--force", "latest", sp+"/big")
	if got := mustRead(t, f); !bytes.Equal(got, content) {
		t.Fatalf("dump --force: %d bytes", len(got))
	}
	e.wantFail(exitUsage, "is a directory", "dump", "--target", out, "--force", "latest", sp+"/big")
	e.wantFail(exitUsage, "does not exist", "dump", "--target", filepath.Join(out, "no", "f"), "latest", sp+"/big")
	e.wantFail(exitUsage, "--force is for --target", "dump", "--force", "latest", sp+"/big")

	// Damaged data: stdout would have what was read so far; --target
	// leaves nothing.
	loseLargestPack(t, e.repo, nil)
	lost := filepath.Join(out, "lost.tar")
	// A pack the index lists but the repository lost is damage: exit 5,
	// naming it.
	if r := e.run("dump", "--target", lost, "latest", sp); r.code != exitCorrupt || !strings.Contains(r.stderr, "missing from the repository") {
		t.Fatalf("dump of a snapshot with a lost pack: exit %d\n%s", r.code, r.stderr)
	}
	if names := entries(t, out); len(names) != 2 || names[0] != "big" || names[1] != "src.tar" {
		t.Fatalf("files after a failed dump --target: %v", names)
	}
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
