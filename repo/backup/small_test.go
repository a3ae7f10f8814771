package backup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"memento/chunk"
	"memento/repo"
	"memento/repo/backend/mem"
	"memento/repo/repotest"
	"memento/repo/restore/restoretest"
)

// TestSmallFilesAroundTheirLimits: files at the edges of the small-file path
// (read whole, saveSmallFile: below smallFileMax and the Min of their chunk
// parameters; slotKept, above which a slot keeps no buffer) and the streamed
// files past them back up to the same root twice (the walk reads them
// concurrently, in no fixed order) and restore byte for byte; an unchanged
// re-backup stores nothing.
func TestSmallFilesAroundTheirLimits(t *testing.T) {
	tr := repotest.New(t, repo.InitOptions{})
	src := filepath.Join(t.TempDir(), "src")
	sizes := []int{0, 1, 63, 64, 4096, slotKept - 1, slotKept, slotKept + 1, smallFileMax - 1, smallFileMax, smallFileMax + 1, 3 << 20}
	for i, n := range sizes {
		repotest.WriteFile(t, filepath.Join(src, fmt.Sprintf("f%02d-%d", i, n)), repotest.RandomBytes(uint64(i)+1, n), 0o644)
		text := bytes.Repeat([]byte(fmt.Sprintf("line %d of a text file that compresses\n", i)), n/30+1)[:n]
		repotest.WriteFile(t, filepath.Join(src, "text", fmt.Sprintf("t%02d-%d.go", i, n)), text, 0o644)
	}
	sn1 := mustBackup(t, tr.Repository, BackupOptions{Paths: []string{src}})
	if s := sn1.Summary; s.Files != uint64(2*len(sizes)) || s.UnchangedFiles != 0 {
		t.Fatalf("first backup: %+v", s)
	}
	sn2 := mustBackup(t, tr.Repository, BackupOptions{Paths: []string{src}, NoParent: true})
	if sn2.Root != sn1.Root || sn2.Summary.NewChunks != 0 {
		t.Fatalf("second backup without parent: root %s (first %s), %d new chunks", sn2.Root.Short(), sn1.Root.Short(), sn2.Summary.NewChunks)
	}
	sn3 := mustBackup(t, tr.Repository, BackupOptions{Paths: []string{src}})
	if s := sn3.Summary; s.UnchangedFiles != uint64(2*len(sizes)) || s.StoredBytes != 0 {
		t.Fatalf("unchanged re-backup: %+v", s)
	}
	repotest.CompareTrees(t, repotest.DigestTree(t, src), repotest.DigestTree(t, filepath.Join(restoretest.Restore(t, tr.Repository, sn1), "src")))
}

// TestSaveSmallFileSizeChanged: a small file is read by the size it was
// listed with; one that grew since is streamed on from what was read
// (within the small path's buffer, past it, past Min: several chunks), one
// that shrank is read to its end, one that vanished is dropped. Each gets
// the content list, digest and size that streaming the file as it now is
// gives (saveFile).
func TestSaveSmallFileSizeChanged(t *testing.T) {
	tr := repotest.New(t, repo.InitOptions{})
	ctx := context.Background()
	pipe := chunk.NewPipeline(2, chunk.DefaultLevel)
	defer pipe.Close()
	r := tr.Repository
	a := &archiver{r: r, key: r.ChunkKey(""), pipe: pipe, params: r.Config().ParamSet(), known: map[chunk.ID]struct{}{},
		prog: &repo.Progress{}, packer: r.NewPacker(ctx, ""), sem: make(chan struct{}, 1)}
	defer a.packer.Abort()
	dir := t.TempDir()
	slot := &smallSlot{}
	for _, tt := range []struct{ listed, actual int }{
		{10, 10}, {10, 11}, {10, 4096}, {100, 5000}, {slotKept, 200 << 10}, {10, 3 << 20}, {5000, 100}, {5000, 0}, {0, 0}, {0, 1},
	} {
		name := fmt.Sprintf("listed %d, %d bytes", tt.listed, tt.actual)
		p := filepath.Join(dir, fmt.Sprintf("f-%d-%d", tt.listed, tt.actual))
		repotest.WriteFile(t, p, repotest.RandomBytes(uint64(tt.actual), tt.actual), 0o644)
		small := &repo.Node{Type: repo.NodeFile, Size: uint64(tt.listed)}
		if err := a.saveSmallFile(ctx, p, "x/"+filepath.Base(p), small, chunk.ParamsDefault, slot); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		streamed := &repo.Node{Type: repo.NodeFile}
		if err := a.saveFile(ctx, p, "x/"+filepath.Base(p), fileIn{dir: -1}, streamed, -1, nil); err != nil {
			t.Fatalf("%s: streamed: %v", name, err)
		}
		if small.Size != uint64(tt.actual) || !small.Equal(streamed) {
			t.Fatalf("%s: size %d, %d chunks; streamed: size %d, %d chunks", name, small.Size, len(small.Content), streamed.Size, len(streamed.Content))
		}
	}
	gone := &repo.Node{Type: repo.NodeFile, Size: 10}
	if err := a.saveSmallFile(ctx, filepath.Join(dir, "gone"), "x/gone", gone, chunk.ParamsDefault, slot); err != nil || gone.Type != "" {
		t.Fatalf("vanished file: %v, type %q", err, gone.Type)
	}
	if err := os.Mkdir(filepath.Join(dir, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	err := a.saveSmallFile(ctx, filepath.Join(dir, "d"), "x/d", &repo.Node{Type: repo.NodeFile, Size: 10}, chunk.ParamsDefault, slot)
	if want := fmt.Sprintf("backup %s: read at offset 0: read %[1]s: is a directory", filepath.Join(dir, "d")); err == nil || err.Error() != want {
		t.Fatalf("a directory where a file was listed: %v, want %q", err, want)
	}
}

// TestSmallFileStoreErrorStopsBackup: when pack writes fail while the
// small-file workers store hundreds of files, the backup fails with that
// error (the packer reports it), writes no snapshot, and returns: the walk,
// the workers and the directories' waits do not hang.
func TestSmallFileStoreErrorStopsBackup(t *testing.T) {
	ctx := context.Background()
	be := mem.New("small-fail")
	if _, err := repo.Init(ctx, be, repo.InitOptions{Password: "pw", KDF: repotest.FastKDF, PackSize: 1 << 20}); err != nil {
		t.Fatal(err)
	}
	r, err := repo.Open(ctx, be, repo.Options{Password: "pw", CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	src := filepath.Join(t.TempDir(), "src")
	var seed uint64
	writeDirTree(t, src, 4, 3, &seed) // 255 small files
	for i := range 40 {               // random: each fills a good part of a 1 MiB pack
		repotest.WriteFile(t, filepath.Join(src, fmt.Sprintf("r%02d", i)), repotest.RandomBytes(uint64(1000+i), 100<<10), 0o644)
	}
	boom := errors.New("disk full of packs")
	be.FailOn(mem.OpWrite, func(name string) bool { return strings.HasPrefix(name, "data/") }, boom)
	sn, err := Backup(ctx, r, BackupOptions{Paths: []string{src}})
	if !errors.Is(err, boom) || sn != nil {
		t.Fatalf("backup with failing pack writes: snapshot %v, error %v", sn, err)
	}
	be.SetHook(nil)
	if all, err := r.Snapshots(ctx); err != nil || len(all) != 0 {
		t.Fatalf("snapshots after the failed backup: %d, %v", len(all), err)
	}
}

// TestSmallFileReadErrorStopsBackup: a small file that cannot be read
// (/proc/self/mem lists as an empty regular file; reading its first page
// fails with EIO) fails the backup with that file's error, not the
// cancellation it causes in the workers busy with the other files.
func TestSmallFileReadErrorStopsBackup(t *testing.T) {
	const bad = "/proc/self/mem"
	if fi, err := os.Lstat(bad); err != nil || !fi.Mode().IsRegular() || fi.Size() != 0 {
		t.Fatalf("%s: %v (a regular empty file on Linux)", bad, err)
	}
	tr := repotest.New(t, repo.InitOptions{})
	src := filepath.Join(t.TempDir(), "src")
	var seed uint64
	writeDirTree(t, src, 4, 3, &seed)
	_, err := Backup(context.Background(), tr.Repository, BackupOptions{Paths: []string{src, bad}})
	if want := "backup /proc/self/mem: read at offset 0: read /proc/self/mem: input/output error"; err == nil || err.Error() != want {
		t.Fatalf("backup of %s: %v, want %q", bad, err, want)
	}
}

// TestSmallFileOpenErrorStopsBackup: a small file that cannot be opened
// (/proc/sys/vm/drop_caches lists as an empty regular file but is
// write-only, even for root) fails the backup with that file's error and
// no snapshot, whether the walk reads it in a batch or its worker does.
func TestSmallFileOpenErrorStopsBackup(t *testing.T) {
	const bad = "/proc/sys/vm/drop_caches"
	if fi, err := os.Lstat(bad); err != nil || !fi.Mode().IsRegular() || fi.Size() != 0 {
		t.Fatalf("%s: %v (a regular empty file on Linux)", bad, err)
	}
	if f, err := os.Open(bad); err == nil {
		f.Close()
		t.Skipf("%s opens for reading here", bad)
	}
	tr := repotest.New(t, repo.InitOptions{})
	src := filepath.Join(t.TempDir(), "src")
	var seed uint64
	writeDirTree(t, src, 2, 3, &seed)
	sn, err := Backup(context.Background(), tr.Repository, BackupOptions{Paths: []string{src, bad}})
	if want := "backup /proc/sys/vm/drop_caches: open /proc/sys/vm/drop_caches: permission denied"; err == nil || err.Error() != want || sn != nil {
		t.Fatalf("backup of %s: snapshot %v, %v, want %q", bad, sn, err, want)
	}
}
