package main

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"memento/repo/repotest"
)

// TestTagConcurrent runs several `memento tag --add` processes on one
// snapshot at once, then a tag and a forget of one snapshot at once. Each
// tag waits for the other (the manifest lock) and edits the snapshot as the
// one before left it (found by its original: tag), so one snapshot remains
// with every tag; of a tag and a forget exactly one wins, and the loser
// fails with exit 7 (the snapshot it names is gone), never both as if the
// other had not run.
func TestTagConcurrent(t *testing.T) {
	e := newEnv(t)
	src := filepath.Join(t.TempDir(), "src")
	repotest.WriteFile(t, filepath.Join(src, "f"), []byte("tagged"), 0o644)
	e.mustRun("backup", src)
	ids := e.snapshotIDs()
	if len(ids) != 1 {
		t.Fatalf("snapshots: %v", ids)
	}
	id := ids[0]

	const n = 4
	res := make([]result, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res[i] = e.run("tag", "--add", fmt.Sprintf("t%d", i), id)
		}()
	}
	wg.Wait()
	for i, r := range res {
		if r.code != 0 {
			t.Errorf("tag --add t%d: exit %d\nstdout: %s\nstderr: %s", i, r.code, r.stdout, r.stderr)
		}
	}
	sns := e.snapshotsJSON()
	if len(sns) != 1 {
		t.Fatalf("%d snapshots after %d concurrent tag runs on one snapshot: %+v", len(sns), n, sns)
	}
	tags := slices.Clone(sns[0].Tags)
	slices.Sort(tags)
	if want := []string{"original:" + id, "t0", "t1", "t2", "t3"}; !slices.Equal(tags, want) {
		t.Fatalf("tags %v, want %v", tags, want)
	}
	if out := e.mustRun("check"); !strings.Contains(out, "0 errors") {
		t.Fatalf("check after concurrent tags:\n%s", out)
	}

	// A tag and a forget of the snapshot at once.
	cur := sns[0].ID
	var tagRes, forgetRes result
	wg.Add(2)
	go func() { defer wg.Done(); tagRes = e.run("tag", "--add", "late", cur) }()
	go func() { defer wg.Done(); forgetRes = e.run("forget", "--allow-empty", cur) }()
	wg.Wait()
	left := e.snapshotsJSON()
	switch {
	case tagRes.code == 0 && forgetRes.code == exitNotFound:
		if len(left) != 1 || !slices.Contains(left[0].Tags, "late") {
			t.Fatalf("the tag won, but the snapshots are %+v", left)
		}
	case forgetRes.code == 0 && tagRes.code == exitNotFound:
		if len(left) != 0 {
			t.Fatalf("the forget won, but the snapshots are %+v", left)
		}
	default:
		t.Fatalf("tag: exit %d %s; forget: exit %d %s; snapshots %+v", tagRes.code, tagRes.stderr, forgetRes.code, forgetRes.stderr, left)
	}
}
