package fusefs

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"memento/repo"
	"memento/repo/backup"
	"memento/repo/backup/backuptest"
	"memento/repo/repotest"
)

// TestMountXattrs (issue 17): the extended attributes a path backup
// recorded are served through the mount, byte for byte, on files and
// directories; a name the file lacks is ENODATA, a buffer too small ERANGE
// with the size; setting or removing one is EROFS; hard links are one
// inode with the link count.
func TestMountXattrs(t *testing.T) {
	requireFUSE(t)
	src := filepath.Join(t.TempDir(), "src")
	if err := os.MkdirAll(filepath.Join(src, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	file, dir := filepath.Join(src, "f"), filepath.Join(src, "d")
	if err := os.WriteFile(file, []byte("with attributes\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "plain"), []byte("none\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(file, filepath.Join(dir, "f2")); err != nil {
		t.Fatal(err)
	}
	big := strings.Repeat("v", 3000)
	attrs := map[string]map[string]string{
		file: {"user.note": "hello xattr", "user.bin": "\x00\x01\x02\xff", "user.big": big, "user.empty": ""},
		dir:  {"user.dir": "on a directory"},
	}
	for p, xs := range attrs {
		for k, v := range xs {
			if err := unix.Lsetxattr(p, k, []byte(v), 0); err != nil {
				t.Skipf("the test directory's file system takes no user.* attributes: %v", err)
			}
		}
	}
	tr := repotest.New(t, repo.InitOptions{})
	sn := backuptest.Backup(t, tr.Repository, backup.BackupOptions{Paths: []string{src}, Host: "host-a"})
	_, mp, _ := mount(t, tr.Repository, Options{})
	root := filepath.Join(mp, "snapshots", sn.ShortID(), "src")

	for p, xs := range attrs {
		mp := filepath.Join(root, strings.TrimPrefix(p, src))
		var want []string
		for k, v := range xs {
			want = append(want, k)
			buf := make([]byte, 4096)
			n, err := unix.Getxattr(mp, k, buf)
			if err != nil || string(buf[:n]) != v {
				t.Errorf("getxattr %s %s = %d bytes %.40q, %v; want %d bytes %.40q", mp, k, n, buf[:max(n, 0)], err, len(v), v)
			}
			if n, err := unix.Getxattr(mp, k, nil); err != nil || n != len(v) {
				t.Errorf("getxattr %s %s size = %d, %v; want %d", mp, k, n, err, len(v))
			}
		}
		slices.Sort(want)
		got := listXattrs(t, mp)
		if !slices.Equal(got, want) {
			t.Errorf("listxattr %s = %q, want %q", mp, got, want)
		}
		if _, err := unix.Getxattr(mp, "user.missing", make([]byte, 64)); !errors.Is(err, unix.ENODATA) {
			t.Errorf("getxattr %s user.missing: %v, want ENODATA", mp, err)
		}
		for _, op := range []func() error{
			func() error { return unix.Setxattr(mp, "user.new", []byte("x"), 0) },
			func() error { return unix.Removexattr(mp, "user.dir") },
		} {
			if err := op(); !errors.Is(err, syscall.EROFS) {
				t.Errorf("changing an attribute of %s: %v, want EROFS", mp, err)
			}
		}
	}
	f := filepath.Join(root, "f")
	if _, err := unix.Getxattr(f, "user.big", make([]byte, 10)); !errors.Is(err, unix.ERANGE) {
		t.Errorf("getxattr into 10 bytes: %v, want ERANGE", err)
	}
	if _, err := unix.Listxattr(f, make([]byte, 3)); !errors.Is(err, unix.ERANGE) {
		t.Errorf("listxattr into 3 bytes: %v, want ERANGE", err)
	}
	if got := listXattrs(t, filepath.Join(root, "plain")); len(got) != 0 {
		t.Errorf("listxattr of a file without attributes = %q", got)
	}
	if got := listXattrs(t, filepath.Join(mp, "snapshots", sn.ShortID())); len(got) != 0 {
		t.Errorf("listxattr of a snapshot's root = %q", got)
	}
	// Hard links: one inode, the link count, the same attributes.
	var a, b syscall.Stat_t
	if err := syscall.Stat(f, &a); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Stat(filepath.Join(root, "d", "f2"), &b); err != nil {
		t.Fatal(err)
	}
	if a.Ino != b.Ino || a.Nlink != 2 || b.Nlink != 2 {
		t.Errorf("hard links: inodes %d %d, nlink %d %d; want one inode, nlink 2", a.Ino, b.Ino, a.Nlink, b.Nlink)
	}
	if got := listXattrs(t, filepath.Join(root, "d", "f2")); len(got) != 4 {
		t.Errorf("listxattr of the second name = %q", got)
	}
}

// listXattrs returns the attribute names of p, sorted.
func listXattrs(t *testing.T, p string) []string {
	t.Helper()
	n, err := unix.Listxattr(p, nil)
	if err != nil {
		t.Fatalf("listxattr %s: %v", p, err)
	}
	if n == 0 {
		return nil
	}
	buf := make([]byte, n)
	n, err = unix.Listxattr(p, buf)
	if err != nil {
		t.Fatalf("listxattr %s: %v", p, err)
	}
	names := strings.Split(strings.TrimSuffix(string(buf[:n]), "\x00"), "\x00")
	slices.Sort(names)
	return names
}
