package verify_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"memento/chunk"
	"memento/repo"
	"memento/repo/backup"
	"memento/repo/backup/backuptest"
	"memento/repo/repotest"
	"memento/repo/verify"
	"memento/repo/verify/verifytest"
	"memento/walreplay"
)

func TestVerifyLevelsPassOnIntactRepository(t *testing.T) {
	fx := backuptest.NewSpaceFixture(t, 256<<10)
	for _, level := range []verify.Level{verify.L1, verify.L2, verify.L3, verify.L4} {
		t.Run(level.String(), func(t *testing.T) {
			vds := verifytest.IDs(t, fx.Repo.Repository, level, fx.Space.ID, fx.Paths.ID)
			verifytest.WantPass(t, vds...)
			sp, pa := vds[0], vds[1]
			if sp.Figures["files"] != float64(fx.Space.Summary.Files) || pa.Figures["files"] != 3 {
				t.Errorf("files: %v and %v", sp.Figures["files"], pa.Figures["files"])
			}
			switch level {
			case verify.L2, verify.L3:
				if sp.Figures["files_hashed"] != sp.Figures["files"] || pa.Figures["files_hashed"] != 3 {
					t.Errorf("files hashed: %v of %v, %v of 3", sp.Figures["files_hashed"], sp.Figures["files"], pa.Figures["files_hashed"])
				}
				if pa.Figures["data_bytes"] < 3<<20 {
					t.Errorf("L2 verified %v bytes of data, want at least 3 MiB", pa.Figures["data_bytes"])
				}
			case verify.L4:
				q := sp.Query
				if q == nil || q.Digest != fx.Space.Engram.StateDigest || q.Seq != 600 || q.LookupsOK != q.Sampled || q.Sampled == 0 {
					t.Fatalf("query report %+v, manifest %+v", q, fx.Space.Engram)
				}
				st := replayDir(t, filepath.Join(fx.DataDir, "spaces", "tenant_01", "wal"))
				if q.Memories != st.Len() {
					t.Errorf("L4 counted %d memories, the source WAL has %d", q.Memories, st.Len())
				}
			}
		})
	}
}

func replayDir(t *testing.T, dir string) *walreplay.State {
	t.Helper()
	l, err := walreplay.OpenLog(dir)
	if err != nil {
		t.Fatal(err)
	}
	st := walreplay.NewState()
	if _, err := l.Replay(context.Background(), walreplay.Target{}, st); err != nil {
		t.Fatal(err)
	}
	return st
}

// A WAL with a missing segment backs up (without the recorder, which would
// refuse it) but fails L3 with the missing range, while L2 still passes:
// the bytes are intact, the history is not.
func TestVerifyWALGapFailsL3WithRange(t *testing.T) {
	tr := repotest.New(t, repo.InitOptions{})
	dd := filepath.Join(t.TempDir(), "engram")
	repotest.WriteEngramSpace(t, dd, "gappy", 400, 8<<10, 50)
	segs, err := walreplay.ListSegments(filepath.Join(dd, "spaces", "gappy", "wal"))
	if err != nil || len(segs) < 4 {
		t.Fatalf("%d segments, %v", len(segs), err)
	}
	if err := os.Remove(segs[2].Path); err != nil {
		t.Fatal(err)
	}
	sn, err := backup.Backup(context.Background(), tr.Repository, backup.BackupOptions{Space: "gappy", DataDir: dd})
	if err != nil {
		t.Fatal(err)
	}
	verifytest.WantPass(t, verifytest.IDs(t, tr.Repository, verify.L2, sn.ID)...)
	vd := verifytest.IDs(t, tr.Repository, verify.L3, sn.ID)[0]
	from, to := segs[2].FirstSeq, segs[3].FirstSeq-1
	verifytest.WantFinding(t, vd, verify.L3, "WAL", "gap: sequences "+itoa(from)+".."+itoa(to)+" are missing", segs[1].Name, segs[3].Name)
	// L4 finds the same gap in the restored files, and no digest to prove.
	vd = verifytest.IDs(t, tr.Repository, verify.L4, sn.ID)[0]
	verifytest.WantFinding(t, vd, verify.L3, "gap: sequences "+itoa(from)+".."+itoa(to))
	verifytest.WantFinding(t, vd, verify.L4, "no recorded digest")
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }

// The checkpoint must lie within the WAL: a WAL whose older segments were
// removed past the checkpoint has lost history the tiers do not hold.
func TestVerifyCheckpointOutsideWALFailsL3(t *testing.T) {
	tr := repotest.New(t, repo.InitOptions{})
	dd := filepath.Join(t.TempDir(), "engram")
	repotest.WriteEngramSpace(t, dd, "s", 300, 8<<10, 10)
	segs, _ := walreplay.ListSegments(filepath.Join(dd, "spaces", "s", "wal"))
	for _, s := range segs[:2] {
		os.Remove(s.Path)
	}
	sn, err := backup.Backup(context.Background(), tr.Repository, backup.BackupOptions{Space: "s", DataDir: dd})
	if err != nil {
		t.Fatal(err)
	}
	vd := verifytest.IDs(t, tr.Repository, verify.L3, sn.ID)[0]
	verifytest.WantFinding(t, vd, verify.L3, "checkpoint.json is at seq 10 but the WAL starts at "+itoa(segs[2].FirstSeq), "sequences 11.."+itoa(segs[2].FirstSeq-1))
}

// L4 proves the replayed state against the digest recorded at backup: an
// entry altered with a valid CRC passes L1-L3 but fails L4, and a manifest
// re-signed with a key other than the repository's fails at L1.
func TestVerifyL4AlteredEntry(t *testing.T) {
	tr := repotest.New(t, repo.InitOptions{})
	dd := filepath.Join(t.TempDir(), "engram")
	repotest.WriteEngramSpace(t, dd, "s", 500, 16<<10, 400)
	good := backuptest.Space(t, tr.Repository, dd, "s")
	if good.Engram.StateDigestKind != repo.StateDigestLtHash || repo.StateDigestLtHash != walreplay.DigestKindLtHash {
		t.Fatalf("a format-%d repository recorded state digest kind %q", tr.Config().Version, good.Engram.StateDigestKind)
	}
	if want := replayDir(t, filepath.Join(dd, "spaces", "s", "wal")); hexOf(t, want, repo.StateDigestLtHash) != good.Engram.StateDigest {
		t.Fatalf("recorded v2 digest %s, an independent replay gives %s", good.Engram.StateDigest, hexOf(t, want, repo.StateDigestLtHash))
	}
	verifytest.WantPass(t, verifytest.IDs(t, tr.Repository, verify.L4, good.ID)...)

	// The archived entry 123 is altered (CRC fixed), and the snapshot's
	// manifest claims the digest of the original.
	alterEntry(t, filepath.Join(dd, "spaces", "s", "wal"), 123)
	info := *good.Engram
	forged, err := backup.Backup(context.Background(), tr.Repository, backup.BackupOptions{Space: "s", DataDir: dd, NoParent: true, Engram: &info})
	if err != nil {
		t.Fatal(err)
	}
	verifytest.WantPass(t, verifytest.IDs(t, tr.Repository, verify.L3, forged.ID)...)
	vd := verifytest.IDs(t, tr.Repository, verify.L4, forged.ID)[0]
	verifytest.WantFinding(t, vd, verify.L4, "state digest (lthash16) at seq 500", "the backup recorded "+good.Engram.StateDigest)
	if vd.FirstLevel() != verify.L4 {
		t.Errorf("first failing level %s, want L4", vd.FirstLevel())
	}

	// Re-signed with a wrong key: the same manifest, signed by an attacker.
	m := forged.Manifest
	m.Engram = &repo.EngramInfo{}
	*m.Engram = *forged.Engram
	m.Engram.StateDigest = vd.Query.Digest // the altered state's digest
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	m.Signature = nil
	msg, _ := signedBytes(&m)
	m.Signature = ed25519.Sign(priv, msg)
	fid, err := tr.SaveFile(context.Background(), repo.DirSnapshots, kindSnapshot, &m)
	id := chunk.ID(fid)
	if err != nil {
		t.Fatal(err)
	}
	vd = verifytest.IDs(t, tr.Repository, verify.L4, id)[0]
	verifytest.WantFinding(t, vd, verify.L1, "signature does not verify with the repository's public key")
	if vd.Query != nil {
		t.Fatal("L4 replayed a snapshot whose manifest is not signed by the repository")
	}
}

// An old manifest replayed with a changed root: its signature no longer
// covers it.
func TestVerifyManifestWithChangedRoot(t *testing.T) {
	fx := backuptest.NewSpaceFixture(t, 0)
	m := fx.Paths.Manifest
	m.Root = fx.Space.Root
	fid, err := fx.Repo.SaveFile(context.Background(), repo.DirSnapshots, kindSnapshot, &m)
	id := chunk.ID(fid)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := fx.Repo.ListSnapshotIDs(context.Background())
	if err != nil || len(ids) != 3 {
		t.Fatalf("listed %d snapshots, %v", len(ids), err)
	}
	vd := verifytest.IDs(t, fx.Repo.Repository, verify.L1, id)[0]
	verifytest.WantFinding(t, vd, verify.L1, "manifest "+id.Short(), "signature does not verify")
}

func TestVerifyNoRecordedDigestFailsL4(t *testing.T) {
	tr := repotest.New(t, repo.InitOptions{})
	dd := filepath.Join(t.TempDir(), "engram")
	repotest.WriteEngramSpace(t, dd, "s", 100, 16<<10, 50)
	sn, err := backup.Backup(context.Background(), tr.Repository, backup.BackupOptions{Space: "s", DataDir: dd})
	if err != nil {
		t.Fatal(err)
	}
	verifytest.WantPass(t, verifytest.IDs(t, tr.Repository, verify.L3, sn.ID)...)
	vd := verifytest.IDs(t, tr.Repository, verify.L4, sn.ID)[0]
	verifytest.WantFinding(t, vd, verify.L4, "no recorded digest")
	if len(vd.Findings) != 1 {
		t.Errorf("want only the missing digest, got:\n%s", verifytest.FindingsText(vd))
	}
}

// With a buffer too small to hold any chunk that arrives early, L2 drops
// and re-reads chunks instead of holding memory, and still proves every file.
func TestVerifyL2TinyBufferRereads(t *testing.T) {
	tr := repotest.New(t, repo.InitOptions{PackSize: 64 << 10})
	src := filepath.Join(t.TempDir(), "src")
	for i := range 6 {
		repotest.WriteFile(t, filepath.Join(src, "f"+itoa(uint64(i))), repotest.RandomBytes(uint64(i+10), 700<<10), 0o644)
	}
	sn := backuptest.Backup(t, tr.Repository, backup.BackupOptions{Paths: []string{src}})
	// A second snapshot shares the chunks in a different order.
	repotest.WriteFile(t, filepath.Join(src, "f0"), append(repotest.RandomBytes(99, 50<<10), repotest.RandomBytes(10, 700<<10)...), 0o644)
	sn2 := backuptest.Backup(t, tr.Repository, backup.BackupOptions{Paths: []string{src}})
	vds, err := verify.VerifySnapshots(context.Background(), tr.Repository, []chunk.ID{sn.ID, sn2.ID}, verify.VerifyOptions{Level: verify.L2, BufferBytes: 1})
	if err != nil {
		t.Fatal(err)
	}
	verifytest.WantPass(t, vds...)
	for _, vd := range vds {
		if vd.Figures["files_hashed"] != 6 {
			t.Errorf("%s: hashed %v files", vd.Short(), vd.Figures["files_hashed"])
		}
	}
}

func TestVerifySubsetRotationCoversEveryPackOnce(t *testing.T) {
	tr := repotest.New(t, repo.InitOptions{PackSize: 64 << 10})
	src := filepath.Join(t.TempDir(), "src")
	// 32 MiB: at least 4 chunks (chunks are at most 8 MiB) whatever the
	// repository's random polynomial, so 4 subsets have packs to share.
	repotest.WriteFile(t, filepath.Join(src, "a"), repotest.RandomBytes(1, 32<<20), 0o644)
	sn := backuptest.Backup(t, tr.Repository, backup.BackupOptions{Paths: []string{src}})
	full := verifytest.IDs(t, tr.Repository, verify.L2, sn.ID)[0]
	verifytest.WantPass(t, full)
	var recs []repo.AuditRecord
	total := 0.0
	for range 4 {
		sub := verify.NextSubset(recs, 4)
		vds, err := verify.VerifySnapshots(context.Background(), tr.Repository, []chunk.ID{sn.ID}, verify.VerifyOptions{Level: verify.L2, Subset: sub})
		if err != nil {
			t.Fatal(err)
		}
		verifytest.WantPass(t, vds...)
		if vds[0].Figures["packs_read"] >= full.Figures["packs_read"] {
			t.Errorf("subset %s read %v packs of %v", sub, vds[0].Figures["packs_read"], full.Figures["packs_read"])
		}
		total += vds[0].Figures["packs_read"]
		recs = append(recs, repo.AuditRecord{Command: "verify", Subset: vds[0].Subset})
	}
	if total != full.Figures["packs_read"] {
		t.Errorf("4 subsets read %v packs, the snapshot has %v", total, full.Figures["packs_read"])
	}
	if got := verify.NextSubset(recs, 4); got.Part != 0 {
		t.Errorf("rotation continues at part %d, want 0", got.Part)
	}
	if _, err := verify.VerifySnapshots(context.Background(), tr.Repository, []chunk.ID{sn.ID}, verify.VerifyOptions{Level: verify.L3, Subset: verify.Subset{Part: 0, Of: 4}}); err == nil {
		t.Error("a subset at L3 was accepted")
	}
}

func TestParseLevelAndSubset(t *testing.T) {
	for _, c := range []struct {
		in   string
		want verify.Level
		ok   bool
	}{{"L1", verify.L1, true}, {"l4", verify.L4, true}, {"3", verify.L3, true}, {"L5", 0, false}, {"", 0, false}, {"LL2", 0, false}} {
		got, err := verify.ParseLevel(c.in)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("ParseLevel(%q) = %v, %v", c.in, got, err)
		}
	}
	for _, c := range []struct {
		in   string
		want int
	}{{"10%", 10}, {"1/10", 10}, {"25%", 4}, {"100%", 1}, {"33%", 3}, {"0%", 0}, {"1/0", 0}, {"x", 0}, {"2/10", 0}} {
		got, err := verify.ParseSubsetShare(c.in)
		if got != c.want || (err == nil) != (c.want > 0) {
			t.Errorf("ParseSubsetShare(%q) = %d, %v", c.in, got, err)
		}
	}
}

// hexOf is st's state digest of kind in hex.
func hexOf(t *testing.T, st *walreplay.State, kind string) string {
	t.Helper()
	d, err := st.DigestOf(kind)
	if err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(d[:])
}

// TestVerifyFormat4KeepsV1Digest: a repository of format 4 still records
// version-1 state digests (no kind) when this binary backs it up, and L4
// verifies them; a format-5 one records version 2.
func TestVerifyFormat4KeepsV1Digest(t *testing.T) {
	tr := repotest.New(t, repo.InitOptions{})
	tr.SetFormat(t, 4)
	r := tr.Reopen(t)
	if r.Config().Version != 4 || r.Config().StateDigestKind() != "" {
		t.Fatalf("format %d, digest kind %q", r.Config().Version, r.Config().StateDigestKind())
	}
	dd := filepath.Join(t.TempDir(), "engram")
	repotest.WriteEngramSpace(t, dd, "s", 300, 16<<10, 200)
	sn := backuptest.Space(t, r, dd, "s")
	st := replayDir(t, filepath.Join(dd, "spaces", "s", "wal"))
	if d := st.Digest(); sn.Engram.StateDigestKind != "" || sn.Engram.StateDigest != hex.EncodeToString(d[:]) {
		t.Fatalf("format 4: recorded kind %q digest %s, want v1 %x", sn.Engram.StateDigestKind, sn.Engram.StateDigest, d)
	}
	verifytest.WantPass(t, verifytest.IDs(t, r, verify.L4, sn.ID)...)
}
