package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

// TestBackupReusesDigestOfUnchangedWAL: a backup of a space whose WAL did not
// change reuses the parent's WAL end and state digest (no replay), and as
// soon as the WAL changes the digest is computed again and matches an
// independent replay. --force never reuses.
func TestBackupReusesDigestOfUnchangedWAL(t *testing.T) {
	e := newEnv(t)
	dir := filepath.Join(t.TempDir(), "engram")
	e.sim("generate", "--dir", dir, "--size", "4M", "--spaces", "1", "--seed", "5", "--segment-size", "256KiB")
	const space = "space-a"
	type engramInfo struct {
		WALEnd struct {
			Seq uint64 `json:"seq"`
		} `json:"wal_end"`
		StateDigest    string `json:"state_digest"`
		WALFingerprint string `json:"wal_fingerprint"`
	}
	latest := func() engramInfo {
		t.Helper()
		var sns []struct {
			Engram *engramInfo `json:"engram"`
		}
		if err := json.Unmarshal([]byte(e.mustRun("snapshots", "--space", space, "--json")), &sns); err != nil {
			t.Fatal(err)
		}
		if len(sns) == 0 || sns[len(sns)-1].Engram == nil {
			t.Fatalf("no engram info in %+v", sns)
		}
		return *sns[len(sns)-1].Engram
	}
	check := func(what string, got engramInfo) {
		t.Helper()
		want := e.simTruth(dir, space)
		if got.WALEnd.Seq != want.Sequence || got.StateDigest != want.Digest || got.WALFingerprint == "" {
			t.Fatalf("%s: recorded seq %d digest %s (fingerprint %q), replay says seq %d digest %s",
				what, got.WALEnd.Seq, got.StateDigest, got.WALFingerprint, want.Sequence, want.Digest)
		}
	}

	const reused = "reused its end position and state digest"
	backup := func(wantReuse bool, extra ...string) {
		t.Helper()
		r := e.run(append([]string{"-v", "backup", "--data-dir", dir, "--space", space}, extra...)...)
		if r.code != 0 {
			t.Fatalf("backup: exit %d: %s", r.code, r.stderr)
		}
		if got := strings.Contains(r.stderr, reused); got != wantReuse {
			t.Fatalf("backup %v: reused=%v, want %v; stderr:\n%s", extra, got, wantReuse, r.stderr)
		}
	}
	backup(false)
	first := latest()
	check("first backup", first)

	backup(true)
	if second := latest(); second != first {
		t.Fatalf("unchanged WAL: second backup recorded %+v, first %+v", second, first)
	}
	backup(false, "--force")
	check("--force backup", latest())

	e.sim("run", "--dir", dir, "--entries", "300", "--rate", "100000", "--seed", "6")
	backup(false)
	third := latest()
	if third.WALFingerprint == first.WALFingerprint || third.WALEnd.Seq <= first.WALEnd.Seq {
		t.Fatalf("changed WAL not noticed: %+v after %+v", third, first)
	}
	check("backup after new writes", third)
}
