package repo_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"

	"memento/repo"
	"memento/repo/backup/backuptest"
	"memento/repo/repotest"
	"memento/repo/restore/restoretest"
	"memento/walreplay"
)

// goldenFormat5Digest is the state digest (version 2) the golden format-5
// space snapshot records: its WAL replayed to the end.
const goldenFormat5Digest = "c4ec9208ff508eb294196984bfec6de40fd6c0f66a8d22a1e35d9773e1736310"

// testdata/repo-format5-digest was written once by the first binary of
// repository format 5: one space snapshot of a small Engram space (300 WAL
// entries: stores, updates, deletes) whose manifest records the state
// digest version 2 (engram.state_digest_kind "lthash16"). The test restores
// it byte for byte, checks the manifest's kind and digest against the pinned
// value, and replays the restored WAL to the same digest. Never regenerated;
// regenerate only when deliberately starting it with
//
//	go test ./repo -run 'TestGoldenRepositoryFormat5Digest$' -update-golden
func TestGoldenRepositoryFormat5Digest(t *testing.T) {
	golden := filepath.Join("testdata", "repo-format5-digest")
	if *updateGolden {
		r := newGoldenRepo(t, golden, false)
		dd := filepath.Join(t.TempDir(), "engram")
		repotest.WriteEngramSpace(t, dd, "golden", 300, 16<<10, 200)
		sn := backuptest.Space(t, r, dd, "golden")
		finishGolden(t, golden, goldenDigest{sn.ID.String(): restoredDigest(t, sn, restoretest.Restore(t, r, sn))})
		t.Logf("state digest %s (pin it in goldenFormat5Digest)", sn.Engram.StateDigest)
	}
	src := filepath.Join(golden, "repo")
	cfg, err := os.ReadFile(filepath.Join(src, "config"))
	if err != nil || !bytes.Contains(cfg, []byte(`"version": 5,`)) {
		t.Fatalf("golden config is not of format 5 (%v):\n%s", err, cfg)
	}
	want := loadGoldenDigest(t, golden)
	r := openGoldenCopy(t, src)
	sns, err := r.Snapshots(context.Background())
	if err != nil || len(sns) != 1 || len(want) != 1 {
		t.Fatalf("%d snapshots, %d digests: %v", len(sns), len(want), err)
	}
	sn := sns[0]
	w, ok := want[sn.ID.String()]
	if !ok {
		t.Fatalf("snapshot %s is not in digest.json", sn.ID)
	}
	e := sn.Engram
	if e == nil || e.StateDigestKind != repo.StateDigestLtHash || e.StateDigest != goldenFormat5Digest {
		t.Fatalf("golden snapshot's engram info %+v, want kind %s digest %s", e, repo.StateDigestLtHash, goldenFormat5Digest)
	}
	dir := restoretest.Restore(t, r, sn)
	repotest.CompareTrees(t, w, restoredDigest(t, sn, dir))
	l, err := walreplay.OpenLog(filepath.Join(dir, "spaces", sn.Space, "wal"))
	if err != nil {
		t.Fatal(err)
	}
	st := walreplay.NewState()
	if _, err := l.Replay(context.Background(), walreplay.Target{}, st); err != nil {
		t.Fatal(err)
	}
	d, err := st.DigestOf(e.StateDigestKind)
	if err != nil || hex.EncodeToString(d[:]) != goldenFormat5Digest {
		t.Fatalf("restored WAL replays to %x (%v), the golden records %s", d, err, goldenFormat5Digest)
	}
}
