package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"memento/repo/backend/s3/miniotest"
)

// retainedJSON is the retained list of forget's and prune's --dry-run --json.
type retainedJSON struct {
	Retained []struct {
		Name  string    `json:"name"`
		Until time.Time `json:"retain_until"`
		Mode  string    `json:"mode"`
	} `json:"retained"`
}

// A dry run of forget or prune on an S3 repository with Object Lock says
// what the retention would refuse, file by file with its retain-until
// date, and exits 6 as the real run would, instead of promising removals
// that would fail; the privileged host's dry run (bypassing governance)
// promises them and exits 0.
func TestS3ObjectLockDryRun(t *testing.T) {
	srv := miniotest.Start(t)
	e, _ := newLockedS3Env(t, srv, "governance")
	src := writeTree(t, 200<<10, 3000)
	e.mustRun("backup", src)
	if err := os.WriteFile(filepath.Join(src, "sub0", "file00.bin"), bytes.Repeat([]byte("z"), 100<<10), 0o644); err != nil {
		t.Fatal(err)
	}
	e.mustRun("backup", src)
	if n := len(e.snapshotIDs()); n != 2 {
		t.Fatalf("%d snapshots, want 2", n)
	}

	r := e.wantFail(exitLocked, "forget --dry-run: 1 of the 1 files it would delete are under retention (S3 Object Lock), the last until ",
		"forget", "--all", "--keep-last", "1", "--dry-run")
	if !strings.Contains(r.stderr, "the real run would refuse and delete nothing; these credentials cannot delete it: run forget from the privileged host") {
		t.Fatalf("forget --dry-run does not say what to do: %s", r.stderr)
	}
	removed := regexp.MustCompile(`(?m)^  remove  ([0-9a-f]{8}) `).FindStringSubmatch(r.stdout)
	if removed == nil {
		t.Fatalf("forget --dry-run removes nothing:\n%s", r.stdout)
	}
	line := regexp.MustCompile(`(?m)^  retained  snapshots/(` + removed[1] + `[0-9a-f]+)  until (\S+)  \(S3 Object Lock, GOVERNANCE\)$`).FindStringSubmatch(r.stdout)
	if line == nil || !strings.Contains(r.stdout, "dry run: 1 snapshot would be removed, but 1 of them is under retention: a real run would refuse and remove nothing; nothing was changed") {
		t.Fatalf("forget --dry-run does not list the retained manifest of %s:\n%s", removed[1], r.stdout)
	}
	until, err := time.Parse(time.RFC3339, line[2])
	if err != nil || until.Before(time.Now().Add(23*time.Hour)) || until.After(time.Now().Add(25*time.Hour)) {
		t.Fatalf("retained until %q (%v), want about a day from now", line[2], err)
	}
	r = e.run("forget", "--all", "--keep-last", "1", "--dry-run", "--json")
	var fj retainedJSON
	if err := json.Unmarshal([]byte(r.stdout), &fj); err != nil || r.code != exitLocked || !strings.Contains(r.stderr, `"code":6`) || len(fj.Retained) != 1 || fj.Retained[0].Name != "snapshots/"+line[1] ||
		fj.Retained[0].Mode != "GOVERNANCE" || !fj.Retained[0].Until.Equal(until) {
		t.Fatalf("forget --dry-run --json: %v\n%s", err, r.stdout)
	}

	priv := *e
	priv.extra = append(append([]string{}, e.extra...), "MEMENTO_S3_BYPASS_GOVERNANCE=1")
	out := priv.mustRun("forget", "--all", "--keep-last", "1", "--dry-run")
	if strings.Contains(out, "retained") || !strings.Contains(out, "dry run: 1 snapshot would be removed; nothing was changed") {
		t.Fatalf("the privileged host's forget --dry-run:\n%s", out)
	}
	priv.mustRun("forget", "--all", "--keep-last", "1")

	// The backup host's prune would delete the forgotten snapshot's pack.
	r = e.wantFail(exitLocked, "prune --dry-run: ", "prune", "--dry-run", "--max-unused", "0")
	if !regexp.MustCompile(`(?m)^  retained  data/\S+  until \S+  \(S3 Object Lock, GOVERNANCE\)$`).MatchString(r.stdout) ||
		!regexp.MustCompile(`dry run: \d+ of the files it would delete (is|are) under retention: a real run would refuse and delete nothing; nothing was changed`).MatchString(r.stdout) {
		t.Fatalf("prune --dry-run does not list the retained packs:\n%s", r.stdout)
	}
	r = e.run("prune", "--dry-run", "--max-unused", "0", "--json")
	var pj retainedJSON
	if err := json.Unmarshal([]byte(r.stdout), &pj); err != nil || r.code != exitLocked || len(pj.Retained) == 0 || !strings.HasPrefix(pj.Retained[0].Name, "data/") {
		t.Fatalf("prune --dry-run --json: %v\n%s", err, r.stdout)
	}
	out = priv.mustRun("prune", "--dry-run", "--max-unused", "0")
	if strings.Contains(out, "retained") || !strings.Contains(out, "dry run: about ") {
		t.Fatalf("the privileged host's prune --dry-run:\n%s", out)
	}
	priv.mustRun("prune", "--max-unused", "0")
	e.mustRun("prune", "--dry-run") // nothing left to delete: nothing retained to report
	e.restoreLatest(src)
}
