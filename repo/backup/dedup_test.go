package backup

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"memento/chunk"
	"memento/repo"
	"memento/repo/repotest"
	"memento/repo/restore/restoretest"
)

// TestDedupAcrossSnapshots checks what a backup stores when little changed: a
// second backup of the same tree stores nothing new, a file rewritten in one
// place stores only the chunks around the change, and change detection skips
// unchanged files without reading them.
func TestDedupAcrossSnapshots(t *testing.T) {
	tr := repotest.New(t, repo.InitOptions{})
	src := filepath.Join(t.TempDir(), "src")
	const bigSize = 12 << 20
	repotest.WriteFile(t, filepath.Join(src, "big"), repotest.RandomBytes(1, bigSize), 0o644)
	repotest.WriteFile(t, filepath.Join(src, "log"), repotest.RandomBytes(2, 3<<20), 0o644)
	for i := range 20 {
		repotest.WriteFile(t, filepath.Join(src, "small", formatName(i)), repotest.RandomBytes(uint64(10+i), 1000+i), 0o644)
	}
	const files = 22

	sn1 := mustBackup(t, tr.Repository, BackupOptions{Paths: []string{src}})
	s := sn1.Summary
	if s.Files != files || s.UnchangedFiles != 0 || s.NewBytes != s.Bytes || s.Bytes != bigSize+3<<20+20*1000+190 {
		t.Fatalf("first backup: %+v", s)
	}
	packs := len(tr.PackFiles(t))

	// Nothing changed: every file is skipped by change detection, nothing is stored.
	prog := &repo.Progress{}
	sn2 := mustBackup(t, tr.Repository, BackupOptions{Paths: []string{src}, Progress: prog})
	s = sn2.Summary
	if sn2.Parent != sn1.ID.String() {
		t.Errorf("second backup's parent is %q, want %s", sn2.Parent, sn1.ID)
	}
	if s.UnchangedFiles != files || s.NewBytes != 0 || s.NewChunks != 0 || s.StoredBytes != 0 || s.Bytes != sn1.Summary.Bytes {
		t.Errorf("unchanged backup: %+v", s)
	}
	if prog.Unchanged.Load() != files || prog.NewBytes.Load() != 0 {
		t.Errorf("progress: %d unchanged, %d new bytes", prog.Unchanged.Load(), prog.NewBytes.Load())
	}
	if sn2.Root != sn1.Root {
		t.Errorf("unchanged tree has a new root %s (was %s)", sn2.Root.Short(), sn1.Root.Short())
	}
	if n := len(tr.PackFiles(t)); n != packs {
		t.Errorf("unchanged backup wrote %d packs", n-packs)
	}

	// NoParent reads everything again, yet content addressing stores nothing.
	sn3 := mustBackup(t, tr.Repository, BackupOptions{Paths: []string{src}, NoParent: true})
	if s := sn3.Summary; s.UnchangedFiles != 0 || s.NewBytes != 0 || s.StoredBytes != 0 {
		t.Errorf("backup without parent of unchanged data: %+v", s)
	}

	// Rewrite 100 bytes in the middle of big, keep its size; append to log.
	f, err := os.OpenFile(filepath.Join(src, "big"), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(repotest.RandomBytes(99, 100), 6<<20); err != nil {
		t.Fatal(err)
	}
	f.Close()
	appendFile(t, filepath.Join(src, "log"), repotest.RandomBytes(3, 64<<10))
	want := repotest.DigestTree(t, src)
	sn4 := mustBackup(t, tr.Repository, BackupOptions{Paths: []string{src}})
	s = sn4.Summary
	if s.UnchangedFiles != files-2 {
		t.Errorf("after two changes: %d unchanged files, want %d", s.UnchangedFiles, files-2)
	}
	// One changed chunk of big and the changed tail of log: at most a chunk
	// each (a boundary may move into the next chunk). Chunk sizes depend on
	// the repository's random polynomial, so bound by count and Max, not by
	// an average size.
	if s.NewChunks == 0 || s.NewChunks > 4 || s.NewBytes > s.NewChunks*uint64(chunk.ParamsDefault.Max) {
		t.Errorf("a 100-byte rewrite and a 64 KiB append stored %d new bytes in %d chunks: %+v", s.NewBytes, s.NewChunks, s)
	}
	if s.StoredBytes == 0 || s.StoredBytes > s.NewBytes+64<<10 {
		t.Errorf("stored %d bytes for %d new bytes", s.StoredBytes, s.NewBytes)
	}
	repotest.CompareTrees(t, want, repotest.DigestTree(t, filepath.Join(restoretest.Restore(t, tr.Repository, sn4), "src")))
}

// TestChangeDetectionUsesCtime: a file rewritten with the same size whose
// mtime was put back is still detected (ctime moved), so the backup is right.
func TestChangeDetectionUsesCtime(t *testing.T) {
	tr := repotest.New(t, repo.InitOptions{})
	src := filepath.Join(t.TempDir(), "src")
	p := filepath.Join(src, "sneaky")
	repotest.WriteFile(t, p, []byte("original content"), 0o644)
	repotest.WriteFile(t, filepath.Join(src, "other"), []byte("other"), 0o644)
	old := time.Unix(1600000000, 5)
	repotest.Touch(t, p, old, false)
	mustBackup(t, tr.Repository, BackupOptions{Paths: []string{src}})

	time.Sleep(10 * time.Millisecond) // let the ctime differ on coarse clocks
	repotest.WriteFile(t, p, []byte("modified content"), 0o644)
	repotest.Touch(t, p, old, false)
	sn := mustBackup(t, tr.Repository, BackupOptions{Paths: []string{src}})
	if sn.Summary.UnchangedFiles != 1 {
		t.Errorf("%d unchanged files, want 1 (only 'other')", sn.Summary.UnchangedFiles)
	}
	got, err := os.ReadFile(filepath.Join(restoretest.Restore(t, tr.Repository, sn), "src", "sneaky"))
	if err != nil || string(got) != "modified content" {
		t.Fatalf("restored %q, %v", got, err)
	}
}

func appendFile(t *testing.T, p string, b []byte) {
	t.Helper()
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
}

func formatName(i int) string { return "file-" + string(rune('a'+i%26)) + string(rune('a'+i/26)) }
