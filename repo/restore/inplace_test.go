package restore

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"memento/repo"
	"memento/repo/backup"
	"memento/repo/backup/backuptest"
	"memento/repo/repotest"
)

func names(t *testing.T, dir string) []string {
	t.Helper()
	ns, err := readNames(dir)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(ns)
	return ns
}

// TestInPlaceInterruptedMoveIsFinished: an in-place restore killed while
// moving its entries into the target (after the "moving" mark: the staged
// result was complete and on disk) is finished by the next restore into the
// target; one killed before the mark is removed.
func TestInPlaceInterruptedMoveIsFinished(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	target := filepath.Join(t.TempDir(), "target")
	stage := filepath.Join(target, inPlacePrefix+".restore-42")
	repotest.WriteFile(t, filepath.Join(target, "moved"), []byte("1"), 0o644)
	repotest.WriteFile(t, filepath.Join(stage, "left", "f"), []byte("2"), 0o644)
	repotest.WriteFile(t, filepath.Join(stage, "left2"), []byte("3"), 0o644)
	repotest.WriteFile(t, stage+stagingOwnerSuffix, []byte("pid 999999999\nhost gone\n"+movingMark), 0o600)

	plan, err := planTarget(target, false, log)
	if err != nil || plan.inPlace {
		t.Fatalf("planTarget: %+v, %v (the finished target is not empty)", plan, err)
	}
	if got := names(t, target); !slices.Equal(got, []string{"left", "left2", "moved"}) {
		t.Fatalf("target holds %q after finishing the move", got)
	}
	if b, err := os.ReadFile(filepath.Join(target, "left", "f")); err != nil || string(b) != "2" {
		t.Fatalf("moved file: %q, %v", b, err)
	}
	if !strings.Contains(logs.String(), "finished moving an interrupted in-place restore") {
		t.Errorf("log: %s", logs.String())
	}

	// Before the mark: the staging directory goes, the target is empty
	// again and filled in place.
	target2 := filepath.Join(t.TempDir(), "target")
	stage2 := filepath.Join(target2, inPlacePrefix+".pitr-7")
	repotest.WriteFile(t, filepath.Join(stage2, "half"), []byte("x"), 0o644)
	repotest.WriteFile(t, stage2+stagingOwnerSuffix, []byte("pid 999999999\nhost gone\n"), 0o600)
	if plan, err := planTarget(target2, false, log); err != nil || !plan.inPlace {
		t.Fatalf("planTarget: %+v, %v (want in place: the stale staging is removed)", plan, err)
	}
	if got := names(t, target2); len(got) != 0 {
		t.Fatalf("target holds %q", got)
	}
}

// TestMoveInPlaceNeverReplaces: a name that appeared in the target while
// the restore was staged is never replaced; what was moved goes back.
func TestMoveInPlaceNeverReplaces(t *testing.T) {
	target := t.TempDir()
	st, err := newStaging(target, inPlacePrefix+".restore-", repotest.QuietLogger())
	if err != nil {
		t.Fatal(err)
	}
	repotest.WriteFile(t, filepath.Join(st.dir, "a"), []byte("restored a"), 0o644)
	repotest.WriteFile(t, filepath.Join(st.dir, "b"), []byte("restored b"), 0o644)
	repotest.WriteFile(t, filepath.Join(target, "b"), []byte("someone else's"), 0o644)
	err = moveInPlace(st, target)
	if !errors.Is(err, os.ErrExist) {
		t.Fatalf("moveInPlace over an existing name: %v, want EEXIST", err)
	}
	if b, _ := os.ReadFile(filepath.Join(target, "b")); string(b) != "someone else's" {
		t.Fatalf("existing file replaced: %q", b)
	}
	if exists := names(t, target); slices.Contains(exists, "a") {
		t.Fatalf("a moved entry stayed in the target: %q", exists)
	}
	if owner, _ := os.ReadFile(st.owner.Name()); bytes.Contains(owner, []byte(movingMark)) {
		t.Fatalf("owner file still marked moving: %q", owner)
	}
	st.abort()
	if got := names(t, target); !slices.Equal(got, []string{"b"}) {
		t.Fatalf("target holds %q after the abort", got)
	}
}

// TestRestoreSpaceIntoEmptySpaceDir: a space snapshot restored into a data
// dir whose spaces/<id> exists and is empty fills it in place, with the
// space directory's mode and mtime from the snapshot.
func TestRestoreSpaceIntoEmptySpaceDir(t *testing.T) {
	tr := repotest.New(t, repo.InitOptions{})
	dd := filepath.Join(t.TempDir(), "engram")
	engramDataDir(t, dd, "alpha")
	sd := filepath.Join(dd, "spaces", "alpha")
	repotest.Chmod(t, sd, 0o750)
	repotest.Touch(t, sd, time.Unix(1700000000, 123), false)
	want := repotest.DigestTree(t, filepath.Join(dd, "spaces"))
	sn := backuptest.Backup(t, tr.Repository, backup.BackupOptions{Space: "alpha", DataDir: dd})

	target := filepath.Join(t.TempDir(), "dd")
	repotest.Mkdir(t, filepath.Join(target, "spaces", "alpha"), 0o700)
	res, err := Restore(context.Background(), tr.Repository, sn, target, RestoreOptions{Mode: Scratch})
	if err != nil || !res.InPlace || res.SafetyCopy != "" {
		t.Fatalf("restore: %+v, %v", res, err)
	}
	repotest.CompareTrees(t, want, repotest.DigestTree(t, filepath.Join(target, "spaces")))
	if got := names(t, filepath.Join(target, "spaces")); !slices.Equal(got, []string{"alpha"}) {
		t.Fatalf("spaces/ holds %q", got)
	}
}

func TestFilter(t *testing.T) {
	for _, c := range []struct {
		include, exclude []string
		path             string
		in, out          bool
	}{
		{nil, nil, "a/b", true, false},
		{[]string{"b"}, nil, "a/b", true, false},
		{[]string{"b"}, nil, "b", true, false},
		{[]string{"/b"}, nil, "a/b", false, false},
		{[]string{"/a/b"}, nil, "a/b", true, false},
		{[]string{"/a/b/"}, nil, "a/b", true, false},
		{[]string{"*.log"}, nil, "x/y/z.log", true, false},
		{[]string{"*.log"}, nil, "x/y/z.txt", false, false},
		{[]string{"/x/**/*.txt"}, nil, "x/y/z/w.txt", true, false},
		{[]string{"/x/**/*.txt"}, nil, "x/w.txt", true, false},
		{[]string{"{a,c}/*"}, nil, "c/d", true, false},
		{nil, []string{"cache"}, "home/u/cache", true, true},
		{nil, []string{"/cache"}, "home/u/cache", true, false},
		{nil, []string{"*.tmp"}, "a.tmp", true, true},
		{[]string{"/etc", "!/etc/ssl"}, nil, "etc/passwd", true, false},
		{[]string{"/etc", "!/etc/ssl"}, nil, "etc/ssl/cert.pem", false, false},
		{nil, []string{"*.tmp", "!keep.tmp"}, "a/keep.tmp", true, false},
	} {
		f, err := NewFilter(FilterPatterns{Include: c.include, Exclude: c.exclude})
		if err != nil {
			t.Fatal(err)
		}
		if in, out := f.Included(c.path), f.Excluded(c.path); in != c.in || out != c.out {
			t.Errorf("include %q exclude %q, %s: included %v excluded %v, want %v %v", c.include, c.exclude, c.path, in, out, c.in, c.out)
		}
	}
	for p, want := range map[string]string{"": "empty pattern", "/": "names the root", "[a": "not a valid pattern", "{a": "not a valid pattern"} {
		if _, err := NewFilter(FilterPatterns{Include: []string{p}}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("NewFilter(%q): %v, want %q", p, err, want)
		}
	}
}
