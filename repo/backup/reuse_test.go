package backup

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"memento/repo"
	"memento/repo/repotest"
	"memento/walreplay"
)

// spaceBackup backs up one space through an EngramRecorder whose parent is
// the given snapshot's (nil: none) and returns the snapshot and whether the
// parent's WAL end and digest were reused.
func spaceBackup(t *testing.T, r *repo.Repository, dataDir, space string, parent *repo.Snapshot) (*repo.Snapshot, bool) {
	t.Helper()
	rec := NewEngramRecorder(context.Background(), dataDir, space)
	defer rec.Close()
	rec.DigestKind = r.Config().StateDigestKind() // as BackupSpace does
	opts := BackupOptions{DataDir: dataDir, Space: space, Parent: parent, NoParent: parent == nil}
	if parent != nil {
		rec.Parent = parent.Engram
	}
	rec.Attach(&opts)
	sn := mustBackup(t, r, opts)
	return sn, rec.Reused
}

// TestUnchangedWALIsNotReadAgain: an unchanged space's backup takes the WAL
// start, end, first entry and digest from its parent (no replay, and not
// even the newest segment read for the start), also for a WAL that no
// longer starts at seq 1 (no digest to lend: the replay could not make
// one either). A segment rewritten in place with its size and mtime put
// back is noticed by its ctime and replayed. In repositories of format 4
// (state digest version 1) and 5 (version 2, whose kind a parent without a
// digest does not record: it lends its positions all the same).
func TestUnchangedWALIsNotReadAgain(t *testing.T) {
	for _, c := range []struct {
		name      string
		dropFirst bool
		format    int
	}{
		{"whole WAL, format 4", false, 4}, {"WAL without its first segment, format 4", true, 4},
		{"whole WAL, format 5", false, 5}, {"WAL without its first segment, format 5", true, 5},
	} {
		t.Run(c.name, func(t *testing.T) {
			tr := formatRepo(t, c.format)
			const space = "s1"
			dd, _, segs := engramWAL(t, c.dropFirst)
			first, reused := spaceBackup(t, tr.Repository, dd, space, nil)
			fi := first.Engram
			if reused || fi.WALEnd.Seq != 400 || fi.WALStart != fi.WALEnd || fi.WALFingerprint == "" || (fi.StateDigest == "") != c.dropFirst {
				t.Fatalf("first backup: reused %v, %+v", reused, fi)
			}

			second, reused := spaceBackup(t, tr.Repository, dd, space, first)
			if se := second.Engram; !reused || !reflect.DeepEqual(se, fi) {
				t.Fatalf("unchanged WAL: reused %v, recorded %+v, parent %+v", reused, second.Engram, fi)
			}

			// A segment rewritten in place (zeros) with its size and mtime put
			// back: only its ctime tells, and the fingerprint has it, so the
			// WAL is read again and the damage found and marked, instead of
			// the parent's end being lent to a WAL that no longer has it.
			last := segs[len(segs)-1]
			st, err := os.Stat(last.Path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(last.Path, make([]byte, last.Size), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Chtimes(last.Path, st.ModTime(), st.ModTime()); err != nil {
				t.Fatal(err)
			}
			rec := NewEngramRecorder(context.Background(), dd, space)
			defer rec.Close()
			rec.Parent = second.Engram
			opts := BackupOptions{DataDir: dd, Space: space, Parent: second}
			rec.Attach(&opts)
			third, err := Backup(context.Background(), tr.Repository, opts)
			if !errors.Is(err, repo.ErrMarkedDamaged) || rec.Reused || third == nil || third.Engram.WALEnd.Seq >= fi.WALEnd.Seq || third.Engram.WALStart.Seq >= fi.WALEnd.Seq {
				t.Fatalf("segment zeroed in place, size and mtime kept: reused %v, err %v, snapshot %+v", rec.Reused, err, third)
			}
		})
	}
}

// formatRepo is a test repository of format (4 or repo.FormatVersion).
func formatRepo(t *testing.T, format int) *repotest.Repo {
	t.Helper()
	tr := repotest.New(t, repo.InitOptions{})
	if format != repo.FormatVersion {
		tr.SetFormat(t, format)
		tr.Repository = tr.Reopen(t)
	}
	return tr
}

// engramWAL writes space s1 of 400 entries into a new data dir and returns
// the dir, its WAL directory and segments (three or more); with dropFirst
// the first segment is removed (a WAL that no longer starts at seq 1).
func engramWAL(t *testing.T, dropFirst bool) (dd, walDir string, segs []walreplay.SegmentInfo) {
	t.Helper()
	dd = filepath.Join(t.TempDir(), "engram")
	repotest.WriteEngramSpace(t, dd, "s1", 400, 16<<10, 100)
	walDir = filepath.Join(dd, "spaces", "s1", "wal")
	segs, err := walreplay.ListSegments(walDir)
	if err != nil || len(segs) < 3 {
		t.Fatalf("%d segments, %v: the test wants 3 or more", len(segs), err)
	}
	if dropFirst {
		if err := os.Remove(segs[0].Path); err != nil {
			t.Fatal(err)
		}
		segs = segs[1:]
	}
	return dd, walDir, segs
}
