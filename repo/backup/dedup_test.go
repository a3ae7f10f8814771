package backup

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"memento/chunk"
	"memento/repo"
)

// TestDedupAcrossSnapshots checks what a backup stores when little changed: a
// second backup of the same tree stores nothing new, a file rewritten in one
// place stores only the chunks around the change, and change detection skips
// unchanged files without reading them.
func TestDedupAcrossSnapshots(t *testing.T) {
	tr := newTestRepo(t, repo.InitOptions{})
	src := filepath.Join(t.TempDir(), "src")
	const bigSize = 12 << 20
	writeFile(t, filepath.Join(src, "big"), randomBytes(1, bigSize), 0o644)
	writeFile(t, filepath.Join(src, "log"), randomBytes(2, 3<<20), 0o644)
	for i := range 20 {
		writeFile(t, filepath.Join(src, "small", formatName(i)), randomBytes(uint64(10+i), 1000+i), 0o644)
	}
	const files = 22

	sn1 := tr.backup(t, BackupOptions{Paths: []string{src}})
	s := sn1.Summary
	if s.Files != files || s.UnchangedFiles != 0 || s.NewBytes != s.Bytes || s.Bytes != bigSize+3<<20+20*1000+190 {
		t.Fatalf("first backup: %+v", s)
	}
	packs := len(tr.packFiles(t))

	// Nothing changed: every file is skipped by change detection, nothing is stored.
	prog := &repo.Progress{}
	sn2 := tr.backup(t, BackupOptions{Paths: []string{src}, Progress: prog})
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
	if n := len(tr.packFiles(t)); n != packs {
		t.Errorf("unchanged backup wrote %d packs", n-packs)
	}

	// NoParent reads everything again, yet content addressing stores nothing.
	sn3 := tr.backup(t, BackupOptions{Paths: []string{src}, NoParent: true})
	if s := sn3.Summary; s.UnchangedFiles != 0 || s.NewBytes != 0 || s.StoredBytes != 0 {
		t.Errorf("backup without parent of unchanged data: %+v", s)
	}

	// Rewrite 100 bytes in the middle of big, keep its size; append to log.
	f, err := os.OpenFile(filepath.Join(src, "big"), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(randomBytes(99, 100), 6<<20); err != nil {
		t.Fatal(err)
	}
	f.Close()
	appendFile(t, filepath.Join(src, "log"), randomBytes(3, 64<<10))
	want := digestTree(t, src)
	sn4 := tr.backup(t, BackupOptions{Paths: []string{src}})
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
	compareTrees(t, want, digestTree(t, filepath.Join(tr.restore(t, sn4), "src")))
}

// TestChangeDetectionUsesCtime: a file rewritten with the same size whose
// mtime was put back is still detected (ctime moved), so the backup is right.
func TestChangeDetectionUsesCtime(t *testing.T) {
	tr := newTestRepo(t, repo.InitOptions{})
	src := filepath.Join(t.TempDir(), "src")
	p := filepath.Join(src, "sneaky")
	writeFile(t, p, []byte("original content"), 0o644)
	writeFile(t, filepath.Join(src, "other"), []byte("other"), 0o644)
	old := time.Unix(1600000000, 5)
	touch(t, p, old, false)
	tr.backup(t, BackupOptions{Paths: []string{src}})

	time.Sleep(10 * time.Millisecond) // let the ctime differ on coarse clocks
	writeFile(t, p, []byte("modified content"), 0o644)
	touch(t, p, old, false)
	sn := tr.backup(t, BackupOptions{Paths: []string{src}})
	if sn.Summary.UnchangedFiles != 1 {
		t.Errorf("%d unchanged files, want 1 (only 'other')", sn.Summary.UnchangedFiles)
	}
	got, err := os.ReadFile(filepath.Join(tr.restore(t, sn), "src", "sneaky"))
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
