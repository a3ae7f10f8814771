package main

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// TestMountMetadata (issue 17): a path backup of a tree with extended
// attributes (user.* and trusted.* on files and a directory), hard
// links, FIFOs, devices and other owners, seen through a real mount, has
// the source's metadata digest: the same attribute names and values, one
// inode and the link count per hard-link group. Attributes are read-only.
func TestMountMetadata(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("device nodes, trusted.* and chown need root")
	}
	e := newEnv(t)
	src := filepath.Join(t.TempDir(), "src")
	metadataTree(t, src)
	if err := unix.Lsetxattr(filepath.Join(src, "plain"), "user.probe", []byte("x"), 0); err != nil {
		t.Fatalf("the test directory's file system takes no user.* attributes: %v", err)
	}
	want := metaDigest(t, src)
	e.mustRun("backup", src)
	m := e.startMount(t)
	snap := inSnapshot(t, filepath.Join(m.mp, "snapshots", "latest"), src)
	sameDigest(t, "the mount", want, metaDigest(t, snap))

	plain := filepath.Join(snap, "plain")
	buf := make([]byte, 64)
	if n, err := unix.Getxattr(plain, "user.note", buf); err != nil || string(buf[:n]) != "hello xattr" {
		t.Errorf("getxattr user.note = %q, %v", buf[:max(n, 0)], err)
	}
	if _, err := unix.Getxattr(plain, "user.none", buf); !errors.Is(err, unix.ENODATA) {
		t.Errorf("getxattr of a missing name: %v, want ENODATA", err)
	}
	if err := unix.Setxattr(plain, "user.note", []byte("changed"), 0); !errors.Is(err, syscall.EROFS) {
		t.Errorf("setxattr: %v, want EROFS", err)
	}
	if err := unix.Removexattr(plain, "user.note"); !errors.Is(err, syscall.EROFS) {
		t.Errorf("removexattr: %v, want EROFS", err)
	}
}
