package maintenance

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"memento/chunk"
	"memento/repo"
	"memento/repo/backup/backuptest"
	"memento/repo/repotest"
	"memento/repo/walarchive"
	"memento/walreplay"
)

// check fails on an archived segment whose chunk is in no pack, until a
// snapshot of the space covers it: then it is lost history, a warning.
func TestCheckWALArchiveDamageCoveredBySnapshot(t *testing.T) {
	ctx := context.Background()
	tr := repotest.New(t, repo.InitOptions{})
	dd := t.TempDir()
	repotest.WriteEngramSpace(t, dd, "sp", 400, 8<<10, 50)
	w, err := walarchive.LoadWALArchive(ctx, tr.Repository, "sp")
	if err != nil {
		t.Fatal(err)
	}
	lost := []walarchive.WALSegmentRecord{{Name: walreplay.SegmentName(1), FirstSeq: 1, LastSeq: 100, FirstTS: 1, LastTS: 2, Entries: 100, Size: 4096,
		Chunks: []walarchive.WALChunk{{ID: chunk.ID{9}, Size: 4096}}, Sealed: true}}
	if err := walarchive.SaveWALFile(ctx, tr.Repository, w, "h", lost); err != nil {
		t.Fatal(err)
	}
	find := func(sev string) string {
		t.Helper()
		rep, err := Check(ctx, tr.Repository, CheckOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range rep.Findings {
			if f.What == "space sp WAL archive" && f.Severity == sev {
				return f.Message
			}
			if f.Severity == SevError && f.What != "space sp WAL archive" {
				t.Errorf("unexpected error %s: %s", f.What, f.Message)
			}
		}
		t.Fatalf("no %s about the WAL archive: %+v", sev, rep.Findings)
		return ""
	}
	if msg := find(SevError); !strings.Contains(msg, "segment "+walreplay.SegmentName(1)+" (seq 1..100") || !strings.Contains(msg, "is in no pack") {
		t.Errorf("error: %s", msg)
	}
	backuptest.Space(t, tr.Repository, dd, "sp")
	if msg := find(SevWarning); !strings.Contains(msg, "a later snapshot covers it") {
		t.Errorf("warning: %s", msg)
	}
}

// check covers the deltas a WAL archive lists, not only those of
// snapshots: with every snapshot forgotten, an archived segment whose chunk
// is a delta blob whose base's pack is gone is reported by delta and base.
func TestCheckWALArchiveDeltaWithoutBase(t *testing.T) {
	ctx := context.Background()
	tr := repotest.New(t, repo.InitOptions{})
	dd := t.TempDir()
	repotest.WriteEngramSpace(t, dd, "sp", 40, 8<<10, 20)
	warm := filepath.Join(dd, "spaces", "sp", "warm", "warm_tier.dat")
	a := repotest.WarmPages(5, 256<<10)
	repotest.WriteFile(t, warm, a, 0o644)
	sn1 := backuptest.Space(t, tr.Repository, dd, "sp")
	repotest.WriteFile(t, warm, rewritePage(a, 2*8+3, 11), 0o644)
	sn2 := backuptest.Space(t, tr.Repository, dd, "sp")
	rel := "spaces/sp/warm/warm_tier.dat"
	base, delta := tr.NodeAt(t, sn1, rel).Content[2], tr.NodeAt(t, sn2, rel).Content[2]
	l, err := tr.Repository.Locate("sp", []chunk.ID{delta, base})
	if err != nil || l[delta].Flags&repo.FlagDelta == 0 || l[base].Flags&repo.FlagDelta != 0 {
		t.Fatalf("chunk 2: delta %s flags %#x, base %s flags %#x (%v): want a delta of a whole base", delta.Short(), l[delta].Flags, base.Short(), l[base].Flags, err)
	}
	w, err := walarchive.LoadWALArchive(ctx, tr.Repository, "sp")
	if err != nil {
		t.Fatal(err)
	}
	seg := []walarchive.WALSegmentRecord{{Name: walreplay.SegmentName(900), FirstSeq: 900, LastSeq: 901, FirstTS: 1, LastTS: 2, Entries: 2, Size: 32 << 10,
		Chunks: []walarchive.WALChunk{{ID: delta, Size: 32 << 10}}, Sealed: true}}
	if err := walarchive.SaveWALFile(ctx, tr.Repository, w, "h", seg); err != nil {
		t.Fatal(err)
	}
	if _, err := Forget(ctx, tr.Repository, ForgetOptions{IDs: []string{sn1.ID.String(), sn2.ID.String()}, AllowEmpty: true}); err != nil {
		t.Fatal(err)
	}
	if l[base].Pack == l[delta].Pack {
		t.Fatal("the base and its delta share a pack: the test cannot remove the base alone")
	}
	if err := os.Remove(filepath.Join(tr.Dir, filepath.FromSlash(repo.PackName(l[base].Pack)))); err != nil {
		t.Fatal(err)
	}
	rep, err := Check(ctx, tr.Reopen(t), CheckOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := "delta base " + base.Short() + " is in no pack: chunk " + delta.Short() + " cannot be read"
	for _, f := range rep.Findings {
		if f.What == "data blob "+delta.Short() && f.Message == want && f.Severity == SevError {
			return
		}
	}
	t.Fatalf("check findings lack %q:\n%+v", want, rep.Findings)
}
