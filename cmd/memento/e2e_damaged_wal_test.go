package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"memento/walreplay"
)

// latestTags returns the tags of the newest snapshot (`snapshots --json`).
func (e *env) latestTags() []string {
	e.t.Helper()
	var sns []struct {
		Tags []string `json:"tags"`
	}
	if err := json.Unmarshal([]byte(e.mustRun("snapshots", "--json")), &sns); err != nil {
		e.t.Fatal(err)
	}
	return sns[len(sns)-1].Tags
}

// TestBackupOfDamagedWAL: damage in a space's WAL or checkpoint does not make
// backup refuse the space. It saves every file as it is, marks the snapshot
// (a "damaged:" tag naming segment and offset), prints one line and exits 5;
// a plain restore gives back every byte, verify reports the mark, and
// point-in-time recovery never starts from the snapshot past the damage.
func TestBackupOfDamagedWAL(t *testing.T) {
	e := newEnv(t)
	work := t.TempDir()
	clean := filepath.Join(work, "clean")
	e.sim("run", "--dir", clean, "--spaces", "1", "--rate", "0", "--entries", "3000",
		"--segment-size", "64KiB", "--dim", "16", "--seed", "3")
	// The cases back up copies of one database: the copies share its
	// identity (made before copying), as copies of a data dir do.
	e.mustRun("identity", "init", "--data-dir", clean)
	segs, err := walreplay.ListSegments(filepath.Join(clean, "spaces", "space-a", "wal"))
	if err != nil || len(segs) < 3 {
		t.Fatalf("segments %v, %v", segs, err)
	}
	newest := segs[len(segs)-1]
	cases := []struct {
		name, msg string
		damage    func(t *testing.T, space string)
		pitrSeq   uint64 // a point recoverable from the marked snapshot (0: none)
	}{
		{"zeros after the newest entry", fmt.Sprintf("WAL segment %s offset %d seq 3001: bad magic", newest.Name, newest.Size),
			func(t *testing.T, space string) {
				f, err := os.OpenFile(filepath.Join(space, "wal", newest.Name), os.O_WRONLY|os.O_APPEND, 0)
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				if _, err := f.Write(make([]byte, 4096)); err != nil {
					t.Fatal(err)
				}
			}, 3000},
		{"bad CRC in an old checkpointed segment", "WAL segment " + segs[0].Name + " offset 0 seq 1: ",
			func(t *testing.T, space string) {
				p := filepath.Join(space, "wal", segs[0].Name)
				b, err := os.ReadFile(p)
				if err != nil {
					t.Fatal(err)
				}
				b[walreplay.HeaderSize+3] ^= 0x40
				if err := os.WriteFile(p, b, 0o644); err != nil {
					t.Fatal(err)
				}
			}, 0},
		{"checkpoint beyond the WAL end", "checkpoint.json is at seq 3500, beyond the WAL's last verified entry (seq 3000)",
			func(t *testing.T, space string) {
				if err := os.WriteFile(filepath.Join(space, "checkpoint.json"), []byte(`{"sequence":3500,"timestamp_ns":1}`), 0o644); err != nil {
					t.Fatal(err)
				}
			}, 0},
	}
	for _, c := range cases {
		t.Run(strings.ReplaceAll(c.name, " ", "_"), func(t *testing.T) {
			e.t = t
			dd := filepath.Join(t.TempDir(), "dd")
			copyTreeModes(t, clean, dd)
			space := filepath.Join(dd, "spaces", "space-a")
			c.damage(t, space)
			r := e.wantFail(exitCorrupt, c.msg, "backup", "--data-dir", dd, "--space", "space-a")
			if !strings.Contains(r.stderr, "marked damaged") || !strings.Contains(r.stdout, "saved: space space-a") {
				t.Fatalf("backup output does not say the snapshot was saved and marked:\nstdout: %s\nstderr: %s", r.stdout, r.stderr)
			}
			var marks []string
			for _, tag := range e.latestTags() {
				if strings.HasPrefix(tag, "damaged:") {
					marks = append(marks, tag)
				}
			}
			if len(marks) != 1 || !strings.Contains(marks[0], c.msg) {
				t.Fatalf("snapshot tags %q, want one damage mark with %q", e.latestTags(), c.msg)
			}
			// Every byte, the damaged ones included, comes back as it was.
			dst := filepath.Join(t.TempDir(), "dst")
			if r := e.run("restore", "latest", "--target", dst); r.code != 0 || strings.Count(r.stderr, "marked damaged at backup") != 1 {
				t.Fatalf("restore of a marked snapshot: exit %d, want 0 and one warning about the mark\nstderr: %s", r.code, r.stderr)
			}
			sameDigest(t, "restore of a marked snapshot", repoTreeDigest(t, space), repoTreeDigest(t, filepath.Join(dst, "spaces", "space-a")))
			// verify names the mark (and exits 5).
			e.wantFail(exitCorrupt, "failed verification", "verify", "latest")
			if out := e.run("verify", "latest").stdout; !strings.Contains(out, "marked damaged at backup: "+c.msg) {
				t.Fatalf("verify does not report the mark:\n%s", out)
			}
			// Point-in-time recovery starts from the marked snapshot only up
			// to its last verified entry.
			if c.pitrSeq > 0 {
				e.pitr("space-a", "--to-seq", fmt.Sprint(c.pitrSeq), e.simTruth(clean, "space-a", "--to-seq", fmt.Sprint(c.pitrSeq)))
			}
			e.wantFail(exitUnrecoverable, "cannot be recovered", "restore", "--space", "space-a", "--to-seq", fmt.Sprint(c.pitrSeq+1),
				"--target", filepath.Join(t.TempDir(), "never"))
		})
	}
	// A damage mark is not a tag a user can give.
	e.t = t
	e.wantFail(exitUsage, "damage marks", "backup", "--data-dir", clean, "--space", "space-a", "--tag", "damaged:no")
}
