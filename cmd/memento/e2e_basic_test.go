package main

import (
	"os"
	"path/filepath"
	"testing"
)

func TestVersionAndUsageErrors(t *testing.T) {
	e := newEnv(t)
	if out := e.mustRun("version"); out == "" {
		t.Fatal("version printed nothing")
	}
	e.wantFail(exitUsage, "--target DIR is required", "restore", "latest")
	e.wantFail(exitUsage, "nothing to back up", "backup")
	e.wantFail(exitUsage, "invalid space id", "backup", "--data-dir", t.TempDir(), "--space", "Bad/Name")
}

func TestWrongPasswordAndMissingRepo(t *testing.T) {
	e := newEnv(t)
	e.password = "wrong"
	e.wantFail(exitWrongPassword, "wrong password", "snapshots")
	e.password = "correct horse"
	e.repo = filepath.Join(t.TempDir(), "nope")
	e.wantFail(exitNoRepository, "no repository", "snapshots")
}

func TestBackupRestoreRoundTrip(t *testing.T) {
	e := newEnv(t)
	src := filepath.Join(t.TempDir(), "src")
	if err := os.MkdirAll(filepath.Join(src, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "d", "f"), []byte("hello memento\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	e.mustRun("backup", src)
	dst := filepath.Join(t.TempDir(), "dst")
	e.mustRun("restore", "latest", "--target", dst)
	got, err := os.ReadFile(filepath.Join(inSnapshot(t, dst, src), "d", "f"))
	if err != nil || string(got) != "hello memento\n" {
		t.Fatalf("restored content %q, %v", got, err)
	}
	fi, err := os.Stat(filepath.Join(inSnapshot(t, dst, src), "d", "f"))
	if err != nil || fi.Mode().Perm() != 0o640 {
		t.Fatalf("restored mode %v, %v", fi.Mode(), err)
	}
}
