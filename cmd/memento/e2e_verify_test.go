package main

import (
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"memento/walreplay"
)

// simData generates a small Engram data dir with two spaces.
func (e *env) simData(seed string) string {
	e.t.Helper()
	dd := filepath.Join(e.t.TempDir(), "engram")
	e.sim("generate", "--dir", dd, "--size", "6MB", "--spaces", "2", "--segment-size", "256KiB", "--seed", seed)
	return dd
}

func TestE2EVerifyLevelsAuditAndSchedule(t *testing.T) {
	e := newEnv(t)
	dd := e.simData("3")
	e.mustRun("backup", "--data-dir", dd, "--all")
	for _, level := range []string{"L1", "L2", "L3", "L4"} {
		out := e.mustRun("verify", "--all", "--level", level)
		if n := strings.Count(out, "verdict  "+level+" PASSED"); n != 2 {
			t.Fatalf("verify %s: %d verdicts passed:\n%s", level, n, out)
		}
	}
	out := e.mustRun("verify", "--space", "space-a", "--latest", "--level", "L4")
	if !strings.Contains(out, "matches the one recorded at backup") || !strings.Contains(out, "sampled lookups ok") {
		t.Fatalf("L4 output:\n%s", out)
	}
	var res verifyOutput
	if err := json.Unmarshal([]byte(e.mustRun("verify", "--all", "--level", "L2", "--json")), &res); err != nil {
		t.Fatal(err)
	}
	if !res.Passed || len(res.Verdicts) != 2 || res.Verdicts[0].Figures["files_hashed"] == 0 {
		t.Fatalf("json %+v", res)
	}
	// The audit trail holds the backups and verifications; --verified reads it.
	var recs []map[string]any
	if err := json.Unmarshal([]byte(e.mustRun("log", "--json", "--command", "verify")), &recs); err != nil {
		t.Fatal(err)
	}
	if len(recs) != 11 || recs[0]["result"] != "ok" || recs[0]["host"] == "" {
		t.Fatalf("%d verify records: %v", len(recs), recs)
	}
	// Each `verify --all` writes its records at once, listed in the order
	// of its verdicts (the snapshots' order, by time: the two spaces'
	// snapshots of one `backup --all` come in either order), level by level.
	order := []string{res.Verdicts[0].Space, res.Verdicts[1].Space}
	if order[0] == order[1] || order[0] != "space-a" && order[0] != "space-b" {
		t.Fatalf("verdict spaces %v", order)
	}
	for i, level := range []string{"L1", "L2", "L3", "L4"} {
		for j, space := range order {
			if r := recs[2*i+j]; r["space"] != space || r["level"] != level {
				t.Fatalf("verify record %d: space %v level %v, want %s %s", 2*i+j, r["space"], r["level"], space, level)
			}
		}
	}
	if out := e.mustRun("log", "--command", "backup"); strings.Count(out, " backup ") != 2 {
		t.Fatalf("backup records:\n%s", out)
	}
	var sns []map[string]any
	if err := json.Unmarshal([]byte(e.mustRun("snapshots", "--verified", "L4", "--json")), &sns); err != nil {
		t.Fatal(err)
	}
	if len(sns) != 2 {
		t.Fatalf("--verified L4 lists %d snapshots", len(sns))
	}
	e.wantFail(exitUsage, "--verified", "snapshots", "--verified", "L9")
	e.wantFail(exitUsage, "name snapshots", "verify", "--level", "L2")
	e.wantFail(exitUsage, "applies to L2 only", "verify", "--all", "--level", "L3", "--subset", "10%")
	// Scheduling: everything is due once, then nothing.
	out = e.mustRun("verify", "--schedule")
	for _, slot := range []string{"latest-l2", "sample-l3", "oldest-l4"} {
		if !strings.Contains(out, "due: "+slot) {
			t.Fatalf("schedule did not run %s:\n%s", slot, out)
		}
	}
	if out := e.mustRun("verify", "--schedule"); !strings.Contains(out, "nothing due") {
		t.Fatalf("second scheduled run:\n%s", out)
	}
	e.mustRun("check", "--read-data")

	// --all --latest: after a second backup, exactly the newest snapshot of
	// each space, the same ones `snapshots --latest`-style lookups give.
	e.mustRun("backup", "--data-dir", dd, "--all", "--force")
	var latest verifyOutput
	if err := json.Unmarshal([]byte(e.mustRun("verify", "--all", "--latest", "--level", "L1", "--json")), &latest); err != nil {
		t.Fatal(err)
	}
	if !latest.Passed || len(latest.Verdicts) != 2 {
		t.Fatalf("verify --all --latest: %+v", latest)
	}
	for _, vd := range latest.Verdicts {
		var list []map[string]any
		if err := json.Unmarshal([]byte(e.mustRun("snapshots", "--space", vd.Space, "--json")), &list); err != nil || len(list) != 2 {
			t.Fatalf("snapshots of %s: %v (%d listed)", vd.Space, err, len(list))
		}
		want, _ := list[len(list)-1]["id"].(string)
		if vd.Snapshot != want || vd.Snapshot == res.Verdicts[0].Snapshot || vd.Snapshot == res.Verdicts[1].Snapshot {
			t.Fatalf("space %s: verified %s, newest is %q (first backup's: %s, %s)", vd.Space, vd.Snapshot, want, res.Verdicts[0].Snapshot, res.Verdicts[1].Snapshot)
		}
	}
	e.wantFail(exitUsage, "or --all [--latest]", "verify", "--latest", "--level", "L1")
}

// alterSimEntry flips a content byte of the first record entry at or after seq and
// fixes its CRC, so every per-entry check still passes.
func alterSimEntry(t *testing.T, walDir string, seq uint64) {
	t.Helper()
	segs, err := walreplay.ListSegments(walDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range segs {
		b, err := os.ReadFile(s.Path)
		if err != nil {
			t.Fatal(err)
		}
		for off := 0; off+walreplay.HeaderSize <= len(b); {
			h, reason := walreplay.DecodeHeader(b[off:])
			if reason != "" {
				break
			}
			end := off + walreplay.HeaderSize + int(h.PayloadLen)
			if h.Seq >= seq && (h.Type == walreplay.EpisodeStore || h.Type == walreplay.MemoryUpdate) {
				p := append([]byte(nil), b[off+walreplay.HeaderSize:end]...)
				p[len(p)-1] ^= 0x01
				enc := walreplay.AppendEntry(nil, &walreplay.Entry{Seq: h.Seq, TimestampNS: h.TimestampNS, Type: h.Type, Flags: h.Flags, Payload: p})
				copy(b[off:end], enc)
				if err := os.WriteFile(s.Path, b, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			off = end
		}
	}
	t.Fatalf("no record entry at or after seq %d", seq)
}

// L4 passes on engram-sim data and fails when one archived entry is altered
// and the snapshot re-signed with a key that is not the repository's.
func TestE2EVerifyL4RejectsAlteredEntryResignedWithWrongKey(t *testing.T) {
	e := newEnv(t)
	dd := e.simData("5")
	e.mustRun("backup", "--data-dir", dd, "--space", "space-a")
	e.mustRun("verify", "--all", "--level", "L4")

	// The attacker alters entry 40 (CRC fixed) and backs the space up into
	// a repository of their own, i.e. signs the manifest with their key, and
	// plants the manifest and its data in the victim repository.
	alterSimEntry(t, filepath.Join(dd, "spaces", "space-a", "wal"), 40)
	evil := &env{t: t, repo: filepath.Join(t.TempDir(), "evil"), cache: filepath.Join(t.TempDir(), "evilcache"), password: "attacker"}
	evil.mustRun("init")
	evil.mustRun("backup", "--data-dir", dd, "--space", "space-a")
	// (Its index file would not even open here: a damaged or foreign index
	// file stops Open itself, see TestCheckRepairReplacesDamagedIndexFile.)
	for _, dir := range []string{"snapshots", "data"} {
		copyDir(t, filepath.Join(evil.repo, dir), filepath.Join(e.repo, dir))
	}
	r := e.run("verify", "--all", "--level", "L4")
	if r.code != exitCorrupt {
		t.Fatalf("verify of the planted snapshot: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stdout, "L1 FAIL  manifest") || !strings.Contains(r.stdout, "verdict  L4 PASSED") {
		t.Fatalf("want the planted manifest to fail at L1 and the real one to pass:\n%s", r.stdout)
	}
	if strings.Contains(r.stdout, "state digest") && strings.Contains(r.stdout, "matches") && strings.Count(r.stdout, "matches") > 1 {
		t.Fatalf("the planted snapshot was replayed:\n%s", r.stdout)
	}
	e.wantFail(exitCorrupt, "failed verification", "verify", "--all", "--level", "L1")
	// check lists the planted manifest and the foreign packs too.
	r = e.run("check")
	if r.code != exitCorrupt || !strings.Contains(r.stdout, "cannot be authenticated") {
		t.Fatalf("check: exit %d\n%s", r.code, r.stdout)
	}
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		dst := filepath.Join(to, rel)
		if d.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, b, 0o444)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func packsOf(t *testing.T, repo string) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	filepath.WalkDir(filepath.Join(repo, "data"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			out[p] = true
		}
		return nil
	})
	return out
}

// check --repair after deleting the bbolt index and one pack recovers
// everything else: the other space verifies at L4 and restores, and the
// damaged snapshot is marked, with what could not be saved printed.
func TestE2ECheckRepairAfterLosingIndexAndPack(t *testing.T) {
	e := newEnv(t)
	dd := e.simData("7")
	e.mustRun("backup", "--data-dir", dd, "--space", "space-a")
	aPacks := packsOf(t, e.repo)
	e.mustRun("backup", "--data-dir", dd, "--space", "space-b")
	var victims []string
	for p := range aPacks {
		victims = append(victims, p)
	}
	sort.Strings(victims)
	if err := os.Remove(victims[0]); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(e.cache); err != nil {
		t.Fatal(err)
	}
	r := e.run("check", "--repair")
	if r.code != exitCorrupt || !strings.Contains(r.stdout, "could not be saved") || !strings.Contains(r.stdout, "marked damaged in damaged/") ||
		!strings.Contains(r.stdout, "(space space-a)") || !strings.Contains(r.stdout, "lost: / (everything") {
		t.Fatalf("check --repair: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if out := e.mustRun("check"); !strings.Contains(out, "check: 0 errors") || !strings.Contains(out, "damaged, marked so") {
		t.Fatalf("check after repair:\n%s", out)
	}
	e.mustRun("verify", "--space", "space-b", "--latest", "--level", "L4")
	e.wantFail(exitCorrupt, "failed verification", "verify", "--space", "space-a", "--latest", "--level", "L1")
	dst := filepath.Join(t.TempDir(), "restored")
	e.mustRun("restore", "--space", "space-b", "--latest", "--target", dst)
	for _, f := range []string{"warm/warm_tier.dat", "checkpoint.json"} {
		want, _ := os.ReadFile(filepath.Join(dd, "spaces", "space-b", f))
		got, err := os.ReadFile(filepath.Join(dst, "spaces", "space-b", f))
		if err != nil || string(got) != string(want) {
			t.Fatalf("restored %s differs (%v)", f, err)
		}
	}
	if out := e.mustRun("log", "--command", "repair"); !strings.Contains(out, "failed") {
		t.Fatalf("repair not in the audit trail:\n%s", out)
	}
}
