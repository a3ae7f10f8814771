//go:build linux

package local

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// tmpFiles lists the temporary files left in dir.
func tmpFiles(t *testing.T, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	var out []string
	for _, de := range des {
		if strings.HasPrefix(de.Name(), tmpPrefix) {
			out = append(out, de.Name())
		}
	}
	return out
}

// TestStage: a staged file is invisible (Stat, List) until commit, which
// renames it into place and fsyncs its directory; abort removes it; only
// the first of commit and abort acts; a commit under a cancelled context
// publishes nothing and leaves no temporary file.
func TestStage(t *testing.T) {
	b := newBackend(t)
	ctx := context.Background()
	dir := filepath.Join(b.root, "locks")
	listed := func() []string {
		var names []string
		if err := b.List(ctx, "locks", func(name string, _ int64) error { names = append(names, name); return nil }); err != nil && !errors.Is(err, fs.ErrNotExist) {
			t.Fatal(err)
		}
		return names
	}
	var synced []string
	b.afterDirSync = func(dir string, err error) { synced = append(synced, dir) }

	commit, abort, err := b.Stage(ctx, "locks/one", bytes.NewReader([]byte("one")), 3)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Stat(ctx, "locks/one"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("staged file visible before commit: Stat %v", err)
	}
	if l := listed(); len(l) != 0 {
		t.Fatalf("List shows a staged file: %v", l)
	}
	if tmp := tmpFiles(t, dir); len(tmp) != 1 {
		t.Fatalf("staged bytes: temporary files %v, want one", tmp)
	}
	synced = nil
	if err := commit(ctx); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(synced, []string{dir}) {
		t.Fatalf("commit fsynced %v, want %s", synced, dir)
	}
	if got, err := os.ReadFile(filepath.Join(dir, "one")); err != nil || string(got) != "one" {
		t.Fatalf("committed file: %q, %v", got, err)
	}
	abort() // after commit: nothing
	if err := commit(ctx); err == nil || !strings.Contains(err.Error(), "committed or aborted already") {
		t.Fatalf("second commit: %v", err)
	}
	if l := listed(); !slices.Equal(l, []string{"locks/one"}) {
		t.Fatalf("List after commit and abort: %v", l)
	}

	commit, abort, err = b.Stage(ctx, "locks/two", bytes.NewReader([]byte("two")), 3)
	if err != nil {
		t.Fatal(err)
	}
	abort()
	if err := commit(ctx); err == nil {
		t.Fatal("commit after abort succeeded")
	}
	if _, err := b.Stat(ctx, "locks/two"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("aborted file: Stat %v", err)
	}
	if tmp := tmpFiles(t, dir); len(tmp) != 0 {
		t.Fatalf("abort left temporary files %v", tmp)
	}

	cctx, cancel := context.WithCancel(ctx)
	commit, _, err = b.Stage(cctx, "locks/three", bytes.NewReader([]byte("three")), 5)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := commit(cctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("commit under a cancelled context: %v", err)
	}
	if _, err := b.Stat(ctx, "locks/three"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("file committed under a cancelled context: Stat %v", err)
	}
	if tmp := tmpFiles(t, dir); len(tmp) != 0 {
		t.Fatalf("cancelled commit left temporary files %v", tmp)
	}

	// An existing file of the same size: nothing to write, commit is a no-op.
	commit, _, err = b.Stage(ctx, "locks/one", bytes.NewReader([]byte("xxx")), 3)
	if err != nil {
		t.Fatal(err)
	}
	if err := commit(ctx); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "one")); string(got) != "one" {
		t.Fatalf("existing file rewritten: %q", got)
	}
}

// TestStageSurvivesPowerCut: a committed staged file is durable by itself
// (nothing after the commit fsyncs), and one staged but not committed never
// appears under its name after a power cut.
func TestStageSurvivesPowerCut(t *testing.T) {
	mnt, remount := mountExt4(t)
	ctx := context.Background()
	b, err := Create(filepath.Join(mnt, "repo"))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	l := logSyncs(b.ring)
	commitA, _, err := b.Stage(ctx, "wal/a", bytes.NewReader([]byte("record a")), 8)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.Stage(ctx, "wal/b", bytes.NewReader([]byte("record b")), 8); err != nil {
		t.Fatal(err)
	}
	if err := commitA(ctx); err != nil {
		t.Fatal(err)
	}
	l.throughRing(t)
	powerCut(t, mnt)
	remount()
	if got, err := os.ReadFile(filepath.Join(b.root, "wal", "a")); err != nil || string(got) != "record a" {
		t.Fatalf("committed file after the power cut: %q, %v", got, err)
	}
	if _, err := os.Stat(filepath.Join(b.root, "wal", "b")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a staged, uncommitted file appeared after the power cut: %v", err)
	}
	var names []string
	if err := b.List(ctx, "wal", func(name string, _ int64) error { names = append(names, name); return nil }); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(names, []string{"wal/a"}) {
		t.Fatalf("List after the power cut: %v", names)
	}
}
