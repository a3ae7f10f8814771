package restore_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"memento/chunk"
	"memento/repo"
	"memento/repo/backup"
	"memento/repo/backup/backuptest"
	"memento/repo/repotest"
	"memento/repo/restore"
)

// bigSparseFile is 40 MiB: random data (incompressible, chunks of some
// MiB opened into the file's write windows, several runs at once) with
// 12 MiB of zeros in the middle and zeros at the end (chunks of zeros, not
// read, holes on disk).
func bigSparseFile() []byte {
	b := make([]byte, 40<<20)
	copy(b, repotest.RandomBytes(11, 14<<20))
	copy(b[26<<20:], repotest.RandomBytes(12, 10<<20))
	return b
}

// TestRestoreBigFileThroughWindows: a file of many write windows, its
// chunks opened in place on several goroutines, comes back byte for byte,
// its zero runs as holes.
func TestRestoreBigFileThroughWindows(t *testing.T) {
	tr := repotest.New(t, repo.InitOptions{})
	src := filepath.Join(t.TempDir(), "src")
	want := bigSparseFile()
	repotest.WriteFile(t, filepath.Join(src, "big"), want, 0o640)
	sn := backuptest.Backup(t, tr.Repository, backup.BackupOptions{Paths: []string{src}})
	target := filepath.Join(t.TempDir(), "target")
	if _, err := restore.Restore(context.Background(), tr.Repository, sn, target, restore.RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(target, "src", "big")
	got, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("restored %d bytes, want %d (equal: false)", len(got), len(want))
	}
	fi := repotest.Lstat(t, p)
	if fi.Mode().Perm() != 0o640 {
		t.Errorf("mode %v, want 0640", fi.Mode().Perm())
	}
	// 12 MiB of zeros in the middle and 2 at the end: chunks of zeros
	// cut by the chunker inside them are never read and never written.
	if alloc := fi.Sys().(*syscall.Stat_t).Blocks * 512; alloc > fi.Size()-8<<20 {
		t.Errorf("%d of %d bytes allocated: the zero runs were written", alloc, fi.Size())
	}
}

// TestRestoreDamagedChunkOfBigFile: one flipped byte in a chunk in the
// middle of a big file, whose chunks are opened on several goroutines into
// its write windows, fails the restore once, naming the pack, the file and
// the snapshot; nothing reaches the target and no staging is left.
func TestRestoreDamagedChunkOfBigFile(t *testing.T) {
	tr := repotest.New(t, repo.InitOptions{})
	src := filepath.Join(t.TempDir(), "src")
	repotest.WriteFile(t, filepath.Join(src, "big"), bigSparseFile(), 0o644)
	repotest.WriteFile(t, filepath.Join(src, "other"), []byte("unharmed"), 0o644)
	sn := backuptest.Backup(t, tr.Repository, backup.BackupOptions{Paths: []string{src}})
	n := tr.NodeAt(t, sn, "src/big")
	if len(n.Content) < 6 {
		t.Fatalf("big has %d chunks; the test wants several runs", len(n.Content))
	}
	locs, err := tr.Locate("", n.Content)
	if err != nil {
		t.Fatal(err)
	}
	// The third chunk of random data: in the middle of the first part,
	// several runs and windows in.
	var victim chunk.ID
	for i, seen := 0, 0; i < len(n.Content) && seen < 3; i++ {
		if l := locs[n.Content[i]]; l.Length > l.RawLength/2 {
			victim, seen = n.Content[i], seen+1
		}
	}
	loc := locs[victim]
	pack := filepath.Join(tr.Dir, filepath.FromSlash(repo.PackName(loc.Pack)))
	repotest.FlipByte(t, pack, int64(loc.Offset)+int64(loc.Length)/2)
	err = restore.WantRestoreRefused(t, tr.Repository, sn, "pack "+filepath.Base(pack)[:8], "file src/big", "snapshot "+sn.ShortID(), victim.Short())
	if c := strings.Count(err.Error(), "src/big"); c != 1 {
		t.Errorf("restore error names the file %d times, want once: %v", c, err)
	}
}
