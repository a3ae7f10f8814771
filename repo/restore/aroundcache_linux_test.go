//go:build linux

package restore_test

import (
	"os"
	"path/filepath"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"memento/repo"
	"memento/repo/backup"
	"memento/repo/backup/backuptest"
	"memento/repo/repotest"
	"memento/repo/restore/restoretest"
)

// TestRestoreReadsAroundPageCache: a restore reads a local repository's
// large runs with O_DIRECT (StreamOptions.AroundCache, fetch.go), so the
// packs it read are not in the page cache afterwards; reading them through
// it, as before issue 18's session 8, left every page of them resident and
// fails here. On tmpfs (no O_DIRECT, everything is resident) only the
// restored bytes are checked.
func TestRestoreReadsAroundPageCache(t *testing.T) {
	tr := repotest.New(t, repo.InitOptions{})
	src := filepath.Join(t.TempDir(), "src")
	data := repotest.RandomBytes(41, 12<<20+123) // incompressible: runs of MiBs
	repotest.WriteFile(t, filepath.Join(src, "big"), data, 0o644)
	want := repotest.DigestTree(t, src)
	sn := backuptest.Backup(t, tr.Repository, backup.BackupOptions{Paths: []string{src}})

	packs := tr.PackFiles(t)
	var total int64
	for _, p := range packs {
		total += evict(t, p)
	}
	if total < int64(len(data)) {
		t.Fatalf("%d packs of %d bytes hold the %d-byte file", len(packs), total, len(data))
	}
	dst := restoretest.Restore(t, tr.Repository, sn)
	repotest.CompareTrees(t, want, repotest.DigestTree(t, filepath.Join(dst, "src")))

	var st unix.Statfs_t
	if err := unix.Statfs(tr.Dir, &st); err != nil {
		t.Fatal(err)
	}
	if st.Type == unix.TMPFS_MAGIC {
		return
	}
	var resident int64
	for _, p := range packs {
		resident += residentBytes(t, p)
	}
	// The tree, the pack headers and the runs below directio.MinReadSize
	// may come through the page cache: a few pages, not the file.
	if resident > total/8 {
		t.Errorf("after the restore %d of the packs' %d bytes are in the page cache: the runs were not read around it", resident, total)
	}
}

// evict puts the file p on disk and drops it from the page cache; it
// returns its size.
func evict(t *testing.T, p string) int64 {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Fdatasync(int(f.Fd())); err != nil {
		t.Fatal(err)
	}
	if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// residentBytes is how many bytes of the file p are in the page cache
// (mincore(2) of a mapping of it).
func residentBytes(t *testing.T, p string) int64 {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() == 0 {
		return 0
	}
	m, err := unix.Mmap(int(f.Fd()), 0, int(fi.Size()), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(m)
	page := os.Getpagesize()
	vec := make([]byte, (len(m)+page-1)/page)
	if _, _, e := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&vec[0]))); e != 0 {
		t.Fatal(e)
	}
	var n int64
	for _, v := range vec {
		if v&1 != 0 {
			n += int64(page)
		}
	}
	return n
}
