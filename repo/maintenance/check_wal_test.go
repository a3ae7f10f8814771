package maintenance

import (
	"context"
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
