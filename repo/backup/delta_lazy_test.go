package backup_test

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"

	"memento/chunk"
	"memento/engram"
	"memento/repo"
	"memento/repo/backup"
	"memento/repo/backup/backuptest"
	"memento/repo/repotest"
)

// compressiblePages is a warm page file whose 4 KiB pages hold the page
// magic, fill random bytes and zeros, as Engram's records padded to a page.
func compressiblePages(seed uint64, pages, fill int) []byte {
	b := make([]byte, pages*engram.PageSize)
	for p := range pages {
		setPage(b, p, seed+uint64(p), fill)
	}
	return b
}

func setPage(b []byte, page int, seed uint64, fill int) {
	pg := b[page*engram.PageSize : (page+1)*engram.PageSize]
	clear(pg)
	copy(pg, engram.WarmPageMagic)
	copy(pg[8:], repotest.RandomBytes(seed, fill))
}

// TestDeltaCandidatesStoredForms: with the chunks that replaced a parent
// chunk handed to the archiver uncompressed (chunk.SplitFileLazy; that they
// arrive uncompressed is TestSplitFileLazy's), one with more than half of
// its pages rewritten is stored whole and compressed, one with a page
// rewritten is a delta (a frame under a quarter of the chunk, taken
// without the comparison), one with half of its pages rewritten with more
// content is a delta after the comparison with its stored form; every
// chunk's ID is the keyed hash of its plaintext and the blobs read back as
// the file's bytes.
func TestDeltaCandidatesStoredForms(t *testing.T) {
	tr := repotest.New(t, repo.InitOptions{})
	r := tr.Repository
	src := t.TempDir()
	const rel = "warm/warm_tier.dat"
	path := filepath.Join(src, filepath.FromSlash(rel))
	old := compressiblePages(1, 64, 3000) // 8 chunks of 8 pages
	repotest.WriteFile(t, path, old, 0o644)
	backuptest.Backup(t, r, backup.BackupOptions{Paths: []string{src}, Host: "h"})

	cur := bytes.Clone(old)
	for p := 8; p < 16; p++ { // chunk 1: every page
		setPage(cur, p, 100+uint64(p), 3000)
	}
	setPage(cur, 3*8+2, 200, 3000)   // chunk 3: one page
	for p := 5 * 8; p < 5*8+4; p++ { // chunk 5: half of the pages, 4000 bytes each
		setPage(cur, p, 300+uint64(p), 4000)
	}
	repotest.WriteFile(t, path, cur, 0o644)
	sn := backuptest.Backup(t, r, backup.BackupOptions{Paths: []string{src}, Host: "h"})
	n := tr.NodeAt(t, sn, filepath.Base(src)+"/"+rel)
	if len(n.Content) != 8 {
		t.Fatalf("%d chunks, want 8", len(n.Content))
	}
	want := map[int]uint8{1: repo.FlagCompressed, 3: repo.FlagDelta, 5: repo.FlagDelta}
	for i, id := range n.Content {
		plain := cur[i*32<<10 : (i+1)*32<<10]
		if r.ChunkKey("").Sum(plain) != id {
			t.Fatalf("chunk %d: ID is not the keyed hash of its plaintext", i)
		}
		l, err := r.Locate("", []chunk.ID{id})
		if err != nil {
			t.Fatal(err)
		}
		if f, ok := want[i]; ok && l[id].Flags != f {
			t.Errorf("chunk %d: flags %#x, want %#x", i, l[id].Flags, f)
		}
		got, err := r.ReadBlob(context.Background(), "", repo.DataBlob, id)
		if err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("chunk %d: read back %d bytes, %v", i, len(got), err)
		}
	}
}
