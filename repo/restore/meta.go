package restore

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"memento/repo"
)

// What a restore does with each kind of node besides files, directories and
// symlinks (docs/restore.md, "Special files, hard links and extended
// attributes"):
//
//   - a FIFO is created with mkfifo;
//   - a character or block device is created with mknod, which needs root
//     (CAP_MKNOD): without it the device is left out and listed;
//   - a socket is left out, without counting as a failure: it is made by
//     the process that listens on it, and a socket file without its
//     listener is useless (restic does the same);
//   - files of one hard-link group are written once and linked;
//   - extended attributes are set after the owner, before the mode; one
//     the target refuses (a file system without them, security.* or
//     trusted.* without root) is left out and listed.
//
// Whatever is left out is listed in RestoreResult.NotRestored; the restore
// still completes (every file's content is verified and in place) and the
// command exits 1 (docs/cli.md).

// linkKey is a hard-link group of a snapshot.
type linkKey struct{ dev, ino uint64 }

// pendingLink is a name of a hard-link group to link once the group's
// first name is written.
type pendingLink struct {
	first, path string
}

// notRestored records what a restore could not recreate.
func (rs *restorer) notRestored(rel, what string, err error) {
	msg := fmt.Sprintf("%s: %s", repo.DisplayRel(rel), what)
	if err != nil {
		msg += ": " + err.Error()
	}
	rs.r.Logger().Warn("not restored", "path", repo.DisplayRel(rel), "what", what, "err", err)
	rs.mu.Lock()
	rs.missing = append(rs.missing, msg)
	rs.mu.Unlock()
}

// restoreSpecial creates a FIFO or device node at p. It reports whether it
// created something (the caller then sets owner and times).
func (rs *restorer) restoreSpecial(n *repo.Node, p, rel string) (bool, error) {
	perm := uint32(os.FileMode(n.Mode).Perm())
	var err error
	switch n.Type {
	case repo.NodeSocket:
		rs.r.Logger().Info("socket not restored: it is made by the process that listens on it", "path", repo.DisplayRel(rel))
		return false, nil
	case repo.NodeFIFO:
		err = unix.Mkfifo(p, perm)
	case repo.NodeCharDev:
		err = unix.Mknod(p, unix.S_IFCHR|perm, int(n.Rdev))
	case repo.NodeBlockDev:
		err = unix.Mknod(p, unix.S_IFBLK|perm, int(n.Rdev))
	}
	if err == nil {
		return true, nil
	}
	if n.Type != repo.NodeFIFO && (errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES)) {
		rs.notRestored(rel, fmt.Sprintf("%s %d:%d", n.Type, unix.Major(n.Rdev), unix.Minor(n.Rdev)), err)
		return false, nil
	}
	return false, fmt.Errorf("restore %s: %w", p, &os.PathError{Op: "mknod", Path: p, Err: err})
}

// setSpecialMeta gives a FIFO or device node its owner, mode (mknod's is
// cut by the umask) and times.
func (rs *restorer) setSpecialMeta(n *repo.Node, p, rel string) error {
	setOwner(p, n)
	rs.setXattrs(n, p, rel)
	if err := os.Chmod(p, os.FileMode(n.Mode)&(os.ModePerm|os.ModeSetuid|os.ModeSetgid|os.ModeSticky)); err != nil {
		return fmt.Errorf("restore %s: %w", p, err)
	}
	setTimes(p, n, false)
	return nil
}

// setXattrs sets a node's extended attributes on p (not following a
// symlink). Those the target refuses are listed, not fatal.
func (rs *restorer) setXattrs(n *repo.Node, p, rel string) {
	for _, x := range n.Xattrs {
		if err := unix.Lsetxattr(p, x.Name, x.Value, 0); err != nil {
			rs.notRestored(rel, "extended attribute "+x.Name, err)
		}
	}
}

// linkPending creates the later names of hard-link groups, once every
// file is written.
func (rs *restorer) linkPending(links []pendingLink) error {
	for _, l := range links {
		if err := os.Link(l.first, l.path); err != nil {
			return fmt.Errorf("restore %s: hard link to %s: %w", l.path, filepath.Base(l.first), err)
		}
	}
	return nil
}
