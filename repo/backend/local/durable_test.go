//go:build linux

package local

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"golang.org/x/sys/unix"
)

// TestDeleteAndWriteSyncDirectory: Write fsyncs the directory it renamed
// into, and Delete the directory it removed from, so that neither comes
// undone after a power cut (a removed stale lock coming back would block
// the next prune).
func TestDeleteAndWriteSyncDirectory(t *testing.T) {
	b := newBackend(t)
	ctx := context.Background()
	var synced []string
	b.afterDirSync = func(dir string, err error) {
		if err != nil {
			t.Errorf("fsync %s: %v", dir, err)
		}
		synced = append(synced, dir)
	}
	locks := filepath.Join(b.root, "locks")
	if err := b.Write(ctx, "locks/ab12", bytes.NewReader([]byte("lock")), 4); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(synced, []string{b.root, locks}) { // mkdir of locks/, then the rename
		t.Fatalf("Write fsynced %v", synced)
	}
	synced = nil
	if err := b.Delete(ctx, "locks/ab12"); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(synced, []string{locks}) {
		t.Fatalf("Delete fsynced %v, want %s", synced, locks)
	}
	synced = nil
	if err := b.Delete(ctx, "locks/ab12"); err != nil || len(synced) != 0 {
		t.Fatalf("Delete of a missing file: %v, fsynced %v", err, synced)
	}
}

// ext4Shutdown is EXT4_IOC_SHUTDOWN (_IOR('X', 125, __u32)); with
// EXT4_GOING_FLAGS_NOLOGFLUSH the journal is not flushed: what was not
// committed is lost, as in a power cut.
const (
	ext4Shutdown          = 0x8004587d
	ext4GoingNoLogFlush   = 2
	powerCutImageSize     = 64 << 20
	powerCutCommitSeconds = "600"
)

// mountExt4 makes a loop-mounted ext4 file system whose journal commits only
// on fsync (commit=600) and returns its mount point; remount mounts it again.
func mountExt4(t *testing.T) (mnt string, remount func()) {
	t.Helper()
	if testing.Short() || os.Geteuid() != 0 {
		t.Skip("needs root and a loop device")
	}
	dir := t.TempDir()
	img := filepath.Join(dir, "ext4.img")
	mnt = filepath.Join(dir, "mnt")
	if err := os.Mkdir(mnt, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, powerCutImageSize); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", img).CombinedOutput(); err != nil {
		t.Skipf("mkfs.ext4: %v: %s", err, out)
	}
	mount := func() {
		if out, err := exec.Command("mount", "-o", "loop,commit="+powerCutCommitSeconds, img, mnt).CombinedOutput(); err != nil {
			t.Skipf("mount ext4 image: %v: %s", err, out)
		}
	}
	mount()
	t.Cleanup(func() { _ = exec.Command("umount", mnt).Run() })
	remount = func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Fatalf("umount: %v: %s", err, out)
		}
		mount()
	}
	return mnt, remount
}

// powerCut shuts the file system at mnt down without flushing its journal.
func powerCut(t *testing.T, mnt string) {
	t.Helper()
	f, err := os.Open(mnt)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := unix.IoctlSetPointerInt(int(f.Fd()), ext4Shutdown, ext4GoingNoLogFlush); err != nil {
		t.Skipf("EXT4_IOC_SHUTDOWN: %v", err)
	}
}

// TestDeleteSurvivesPowerCut: a lock file removed by Delete stays removed
// after a power cut (EXT4_IOC_SHUTDOWN without a journal flush, on a
// loop-mounted ext4 that commits only on fsync), and a written one stays.
func TestDeleteSurvivesPowerCut(t *testing.T) {
	mnt, remount := mountExt4(t)
	ctx := context.Background()
	b, err := Create(filepath.Join(mnt, "repo"))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	l := logSyncs(b.ring)
	for _, name := range []string{"locks/stale", "locks/kept"} {
		if err := b.Write(ctx, name, bytes.NewReader([]byte(name)), int64(len(name))); err != nil {
			t.Fatal(err)
		}
	}
	// Nothing after the Delete may commit the journal (no fsync): the
	// removal must be durable by itself.
	if err := b.Delete(ctx, "locks/stale"); err != nil {
		t.Fatal(err)
	}
	l.throughRing(t)
	powerCut(t, mnt)
	remount()
	if _, err := os.Stat(filepath.Join(b.root, "locks", "stale")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the deleted lock came back after the power cut: %v", err)
	}
	for _, name := range []string{"locks/kept"} {
		if got, err := os.ReadFile(filepath.Join(b.root, filepath.FromSlash(name))); err != nil || len(got) == 0 {
			t.Fatalf("%s after the power cut: %q, %v", name, got, err)
		}
	}
}

// TestReserve: the reserve holds ReserveSize bytes of real blocks (not a
// sparse file), is invisible to List, is made once, and ReleaseReserve
// frees it durably (the root directory is fsynced).
func TestReserve(t *testing.T) {
	b := newBackend(t)
	ctx := context.Background()
	if n, err := b.ReleaseReserve(ctx); n != 0 || err != nil {
		t.Fatalf("release without a reserve: %d, %v", n, err)
	}
	if err := b.EnsureReserve(ctx); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(b.root, reserveName)
	var st unix.Stat_t
	if err := unix.Stat(p, &st); err != nil {
		t.Fatal(err)
	}
	if st.Size != ReserveSize || st.Blocks*512 < ReserveSize {
		t.Fatalf("reserve: size %d, %d bytes allocated, want %d", st.Size, st.Blocks*512, ReserveSize)
	}
	if err := b.EnsureReserve(ctx); err != nil {
		t.Fatal(err)
	}
	var again unix.Stat_t
	if err := unix.Stat(p, &again); err != nil || again.Ino != st.Ino {
		t.Fatalf("a present reserve was made again: %v", err)
	}
	if err := b.List(ctx, "", func(name string, size int64) error {
		t.Errorf("List shows %s", name)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	var synced []string
	b.afterDirSync = func(dir string, err error) { synced = append(synced, dir) }
	if n, err := b.ReleaseReserve(ctx); n != ReserveSize || err != nil {
		t.Fatalf("release: %d, %v", n, err)
	}
	if _, err := os.Stat(p); !errors.Is(err, fs.ErrNotExist) || !slices.Equal(synced, []string{b.root}) {
		t.Fatalf("after release: %v, fsynced %v", err, synced)
	}
}
