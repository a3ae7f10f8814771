package fusefs

import (
	"context"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"

	"memento/repo"
)

var (
	_ fs.NodeGetxattrer  = (*treeDir)(nil)
	_ fs.NodeListxattrer = (*treeDir)(nil)
	_ fs.NodeGetxattrer  = (*fileNode)(nil)
	_ fs.NodeListxattrer = (*fileNode)(nil)
	_ fs.NodeGetxattrer  = (*treeLink)(nil)
	_ fs.NodeListxattrer = (*treeLink)(nil)
)

// The extended attributes a path backup recorded (tree format 2,
// docs/path-backups.md) are served on the snapshot's files, directories,
// symlinks and special files, from the tree node: getxattr of a name the
// node lacks is ENODATA, listxattr lists the stored names. The mount is
// read-only: setxattr and removexattr are EROFS (readOnly). A snapshot's
// root directory has no node and so no attributes.

// getxattr copies the value of attribute name of n into dest, as
// getxattr(2) does: with an empty dest it returns the size only, with one
// too small ERANGE and the size.
func getxattr(n *repo.Node, name string, dest []byte) (uint32, syscall.Errno) {
	if n == nil {
		return 0, syscall.ENODATA
	}
	for _, x := range n.Xattrs {
		if x.Name != name {
			continue
		}
		size := uint32(len(x.Value))
		if len(dest) == 0 {
			return size, 0
		}
		if len(dest) < len(x.Value) {
			return size, syscall.ERANGE
		}
		return uint32(copy(dest, x.Value)), 0
	}
	return 0, syscall.ENODATA
}

// listxattr writes the attribute names of n, each ending in a NUL, into
// dest, as listxattr(2) does.
func listxattr(n *repo.Node, dest []byte) (uint32, syscall.Errno) {
	if n == nil {
		return 0, 0
	}
	size := 0
	for _, x := range n.Xattrs {
		size += len(x.Name) + 1
	}
	if len(dest) == 0 {
		return uint32(size), 0
	}
	if len(dest) < size {
		return uint32(size), syscall.ERANGE
	}
	off := 0
	for _, x := range n.Xattrs {
		off += copy(dest[off:], x.Name)
		dest[off] = 0
		off++
	}
	return uint32(size), 0
}

func (d *treeDir) Getxattr(ctx context.Context, name string, dest []byte) (uint32, syscall.Errno) {
	return getxattr(d.node, name, dest)
}

func (d *treeDir) Listxattr(ctx context.Context, dest []byte) (uint32, syscall.Errno) {
	return listxattr(d.node, dest)
}

func (n *fileNode) Getxattr(ctx context.Context, name string, dest []byte) (uint32, syscall.Errno) {
	return getxattr(n.node, name, dest)
}

func (n *fileNode) Listxattr(ctx context.Context, dest []byte) (uint32, syscall.Errno) {
	return listxattr(n.node, dest)
}

func (l *treeLink) Getxattr(ctx context.Context, name string, dest []byte) (uint32, syscall.Errno) {
	return getxattr(l.node, name, dest)
}

func (l *treeLink) Listxattr(ctx context.Context, dest []byte) (uint32, syscall.Errno) {
	return listxattr(l.node, dest)
}
