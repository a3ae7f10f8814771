package fusefs

import (
	"fmt"
	"hash/fnv"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"

	"memento/repo"
)

// inoFor derives a stable inode number from a namespace (a snapshot ID, or
// "v" for the generated directories) and a path. Stable numbers let tools
// that compare inodes (find, tar, rsync -H, diff) work across lookups, after
// the kernel forgets an inode, and across remounts. FNV-1a is fixed across
// processes, unlike maphash; a 63-bit collision among the entries of one
// mount is improbable enough to ignore. 0 and 1 (the root) are reserved.
func inoFor(namespace, p string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(namespace))
	h.Write([]byte{0})
	h.Write([]byte(p))
	ino := h.Sum64() &^ (1 << 63)
	if ino < 2 {
		ino += 2
	}
	return ino
}

// nodeIno is the inode number of a snapshot node at path p: the names of a
// hard-link group share one, derived from the group (device, inode).
func nodeIno(namespace, p string, n *repo.Node) uint64 {
	if n.HardLinked() {
		return inoFor(namespace, fmt.Sprintf("\x00link %d %d", n.DeviceID, n.Inode))
	}
	return inoFor(namespace, p)
}

// typeBits returns the S_IFMT bits of a tree node.
func typeBits(n *repo.Node) uint32 {
	switch n.Type {
	case repo.NodeDir:
		return syscall.S_IFDIR
	case repo.NodeSymlink:
		return syscall.S_IFLNK
	case repo.NodeFIFO:
		return syscall.S_IFIFO
	case repo.NodeSocket:
		return syscall.S_IFSOCK
	case repo.NodeCharDev:
		return syscall.S_IFCHR
	case repo.NodeBlockDev:
		return syscall.S_IFBLK
	}
	return syscall.S_IFREG
}

// permBits converts the os.FileMode bits stored in a node (permissions plus
// Go's own setuid, setgid and sticky flags) to the Unix mode bits.
func permBits(m uint32) uint32 { return repo.UnixPermBits(m) }

// fillNodeAttr sets the attributes of a snapshot tree node.
func fillNodeAttr(a *fuse.Attr, ino uint64, n *repo.Node) {
	a.Ino = ino
	a.Mode = typeBits(n) | permBits(n.Mode)
	a.Uid, a.Gid = n.UID, n.GID
	a.Nlink = 1
	if n.HardLinked() {
		a.Nlink = uint32(min(n.Links, 1<<32-1))
	}
	a.Rdev = uint32(n.Rdev) // the kernel's old encoding, as go-fuse passes it on
	switch n.Type {
	case repo.NodeFile:
		a.Size = n.Size
	case repo.NodeSymlink:
		a.Size = uint64(len(n.LinkTarget))
	case repo.NodeDir:
		a.Size = 4096
	}
	a.Blocks = (a.Size + 511) / 512
	a.Blksize = 4096
	setTimes(a, time.Unix(0, n.MTimeNS))
}

// setTimes sets mtime, ctime and atime to t: a snapshot has no other times.
func setTimes(a *fuse.Attr, t time.Time) {
	s, ns := uint64(t.Unix()), uint32(t.Nanosecond())
	a.Mtime, a.Mtimensec = s, ns
	a.Ctime, a.Ctimensec = s, ns
	a.Atime, a.Atimensec = s, ns
}
