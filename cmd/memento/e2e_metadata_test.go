package main

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// metaDigest describes every object below root with what repoTreeDigest
// leaves out: owner, device numbers, extended attributes and hard-link
// groups (the paths of a group, named by its first path).
func metaDigest(t *testing.T, root string) map[string]string {
	t.Helper()
	out := repoTreeDigest(t, root)
	groups := map[uint64]string{}
	var paths []string
	for p := range out {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, rel := range paths {
		p := filepath.Join(root, rel)
		fi, err := os.Lstat(p)
		mustOK(t, err)
		st := fi.Sys().(*syscall.Stat_t)
		d := out[rel] + fmt.Sprintf(" uid=%d gid=%d", st.Uid, st.Gid)
		if fi.Mode()&fs.ModeDevice != 0 {
			d += fmt.Sprintf(" rdev=%d:%d", unix.Major(st.Rdev), unix.Minor(st.Rdev))
		}
		if fi.Mode().Type()&(fs.ModeNamedPipe|fs.ModeDevice) != 0 {
			d += fmt.Sprintf(" mtime=%d", fi.ModTime().UnixNano())
		}
		if fi.Mode().IsRegular() && st.Nlink > 1 {
			if _, ok := groups[st.Ino]; !ok {
				groups[st.Ino] = rel
			}
			d += fmt.Sprintf(" links=%d group=%s", st.Nlink, groups[st.Ino])
		}
		sz, err := unix.Llistxattr(p, nil)
		if err == nil && sz > 0 {
			buf := make([]byte, sz)
			n, err := unix.Llistxattr(p, buf)
			mustOK(t, err)
			names := strings.Split(strings.TrimRight(string(buf[:n]), "\x00"), "\x00")
			sort.Strings(names)
			for _, name := range names {
				v := make([]byte, 65536)
				m, err := unix.Lgetxattr(p, name, v)
				mustOK(t, err)
				d += fmt.Sprintf(" %s=%q", name, v[:m])
			}
		}
		out[rel] = d
	}
	return out
}

// metadataTree writes a tree with every kind of node memento keeps: hard
// links (three names, two directories), extended attributes on a file, a
// directory and a FIFO, a FIFO, a socket, character and block devices, a
// setuid file and files of another owner.
func metadataTree(t *testing.T, root string) {
	t.Helper()
	w := func(rel, data string, mode os.FileMode) {
		p := filepath.Join(root, rel)
		mustOK(t, os.MkdirAll(filepath.Dir(p), 0o755))
		mustOK(t, os.WriteFile(p, []byte(data), mode))
		mustOK(t, os.Chmod(p, mode))
	}
	w("a/linked", "one inode, three names\n", 0o640)
	mustOK(t, os.Link(filepath.Join(root, "a/linked"), filepath.Join(root, "a/linked2")))
	mustOK(t, os.MkdirAll(filepath.Join(root, "b"), 0o750))
	mustOK(t, os.Link(filepath.Join(root, "a/linked"), filepath.Join(root, "b/linked3")))
	w("a/other", "another pair\n", 0o644)
	mustOK(t, os.Link(filepath.Join(root, "a/other"), filepath.Join(root, "other-link")))
	w("plain", "single\n", 0o4755)
	w("owned", "by 1234:5678\n", 0o600)
	mustOK(t, os.Lchown(filepath.Join(root, "owned"), 1234, 5678))
	mustOK(t, unix.Setxattr(filepath.Join(root, "plain"), "user.note", []byte("hello xattr"), 0))
	mustOK(t, unix.Setxattr(filepath.Join(root, "plain"), "user.bin", []byte{0, 1, 2, 255}, 0))
	mustOK(t, unix.Setxattr(filepath.Join(root, "a/linked"), "user.big", []byte(strings.Repeat("x", 3000)), 0))
	mustOK(t, unix.Setxattr(filepath.Join(root, "b"), "user.dir", []byte("on a directory"), 0))
	mustOK(t, unix.Setxattr(filepath.Join(root, "plain"), "trusted.root-only", []byte("t"), 0))
	mustOK(t, unix.Mkfifo(filepath.Join(root, "fifo"), 0o620))
	mustOK(t, unix.Mknod(filepath.Join(root, "null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
	mustOK(t, unix.Mknod(filepath.Join(root, "b/loop9"), unix.S_IFBLK|0o660, int(unix.Mkdev(7, 9))))
	for p, m := range map[string]os.FileMode{"fifo": 0o620, "null": 0o666, "b/loop9": 0o660} {
		mustOK(t, os.Chmod(filepath.Join(root, p), m)) // mknod's mode is cut by the umask
	}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	mustOK(t, err)
	mustOK(t, unix.Bind(fd, &unix.SockaddrUnix{Name: filepath.Join(root, "sock")}))
	unix.Close(fd) // the socket file stays
}

// TestMetadataRoundTrip (issue 17): hard links, extended attributes (user.*
// and, as root, trusted.*), FIFOs, device nodes and owners survive a plain
// path backup and restore through the real binary; a socket is recorded
// (ls shows it) and not recreated; a second backup reads nothing again;
// `ls --json` shows every kind.
func TestMetadataRoundTrip(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("device nodes, trusted.* and chown need root")
	}
	e := newEnv(t)
	src := filepath.Join(t.TempDir(), "src")
	metadataTree(t, src)
	if err := unix.Lsetxattr(filepath.Join(src, "plain"), "user.probe", []byte("x"), 0); err != nil {
		t.Fatalf("the test directory's file system takes no user.* attributes: %v", err)
	}
	mustOK(t, unix.Lremovexattr(filepath.Join(src, "plain"), "user.probe"))
	want := metaDigest(t, src)
	delete(want, "sock")

	out := e.mustRun("backup", src)
	if !strings.Contains(out, "snapshot ") {
		t.Fatalf("backup said %q", out)
	}
	var ls []struct{ Path, Type, Mode string }
	mustOK(t, json.Unmarshal([]byte(e.mustRun("ls", "--json", "latest")), &ls))
	types := map[string]string{}
	for _, x := range ls {
		types[strings.TrimPrefix(x.Path, src+"/")] = x.Type + " " + x.Mode
	}
	for p, w := range map[string]string{"fifo": "fifo prw--w----", "sock": "socket srwxr-xr-x", "null": "chardev crw-rw-rw-",
		"b/loop9": "blockdev brw-rw----", "a/linked2": "file -rw-r-----"} {
		if !strings.HasPrefix(types[p], w) {
			t.Errorf("ls: %s is %q, want %q...", p, types[p], w)
		}
	}

	dst := filepath.Join(t.TempDir(), "r")
	e.mustRun("restore", "latest", "--target", dst)
	got := metaDigest(t, inSnapshot(t, dst, src))
	sameDigest(t, "restored tree", want, got)
	if _, err := os.Lstat(filepath.Join(inSnapshot(t, dst, src), "sock")); err == nil {
		t.Errorf("a socket was restored")
	}

	// The mount shows the kinds: one inode and the link count for a
	// hard-link group, FIFO and device types, a device's number.
	m := e.startMount(t)
	snap := inSnapshot(t, filepath.Join(m.mp, "snapshots", "latest"), src)
	stat := func(rel string) *syscall.Stat_t {
		fi, err := os.Lstat(filepath.Join(snap, rel))
		mustOK(t, err)
		return fi.Sys().(*syscall.Stat_t)
	}
	l1, l2, l3 := stat("a/linked"), stat("a/linked2"), stat("b/linked3")
	if l1.Ino != l2.Ino || l1.Ino != l3.Ino || l1.Nlink != 3 || stat("plain").Ino == l1.Ino {
		t.Errorf("mount: hard links have inodes %d %d %d, nlink %d", l1.Ino, l2.Ino, l3.Ino, l1.Nlink)
	}
	if st := stat("fifo"); st.Mode&syscall.S_IFMT != syscall.S_IFIFO {
		t.Errorf("mount: fifo mode %o", st.Mode)
	}
	if st := stat("null"); st.Mode&syscall.S_IFMT != syscall.S_IFCHR || unix.Major(st.Rdev) != 1 || unix.Minor(st.Rdev) != 3 {
		t.Errorf("mount: null mode %o rdev %d:%d", st.Mode, unix.Major(st.Rdev), unix.Minor(st.Rdev))
	}
	if st := stat("b/loop9"); st.Mode&syscall.S_IFMT != syscall.S_IFBLK || unix.Minor(st.Rdev) != 9 {
		t.Errorf("mount: loop9 mode %o rdev %d:%d", st.Mode, unix.Major(st.Rdev), unix.Minor(st.Rdev))
	}
	if st := stat("sock"); st.Mode&syscall.S_IFMT != syscall.S_IFSOCK {
		t.Errorf("mount: sock mode %o", st.Mode)
	}
	m.stop(syscall.SIGINT, 60*time.Second)

	// Without CAP_MKNOD and CAP_SYS_ADMIN the devices and the trusted.*
	// attribute cannot be recreated: the restore completes, lists them in
	// one error line and exits 1; everything else is in place.
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Fatalf("setpriv (util-linux) is needed to drop capabilities: %v", err)
	}
	dst3 := filepath.Join(t.TempDir(), "r3")
	r := e.runBin(setpriv, "--bounding-set", "-mknod,-sys_admin", mementoBin, "restore", "latest", "--target", dst3)
	if r.code != exitFailure {
		t.Fatalf("restore without CAP_MKNOD: exit %d, want %d\n%s", r.code, exitFailure, r.stderr)
	}
	for _, w := range []string{"3 entries or attributes could not be recreated", "/null: chardev 1:3", "/b/loop9: blockdev 7:9", "/plain: extended attribute trusted.root-only"} {
		if !strings.Contains(r.stderr, w) {
			t.Errorf("restore without CAP_MKNOD: stderr lacks %q:\n%s", w, r.stderr)
		}
	}
	partial := metaDigest(t, inSnapshot(t, dst3, src))
	wantPartial := map[string]string{}
	for p, d := range want {
		wantPartial[p] = strings.Replace(d, ` trusted.root-only="t"`, "", 1)
	}
	delete(wantPartial, "null")
	delete(wantPartial, "b/loop9")
	sameDigest(t, "restored without CAP_MKNOD", wantPartial, partial)

	// Unchanged: a second backup reads no file again and keeps everything.
	out = e.mustRun("backup", src)
	if !strings.Contains(out, "0 B new") {
		t.Errorf("second backup of an unchanged tree: %q", out)
	}
	dst2 := filepath.Join(t.TempDir(), "r2")
	e.mustRun("restore", "latest", "--target", dst2)
	sameDigest(t, "restored from the second snapshot", want, metaDigest(t, inSnapshot(t, dst2, src)))
}

// inSnapshot is where a restore into dst puts the source path src of a
// path snapshot: its absolute path below dst (the full-path layout).
func inSnapshot(t *testing.T, dst, src string) string {
	t.Helper()
	abs, err := filepath.Abs(src)
	mustOK(t, err)
	dir, err := filepath.EvalSymlinks(filepath.Dir(abs))
	mustOK(t, err)
	return filepath.Join(dst, dir, filepath.Base(abs))
}
