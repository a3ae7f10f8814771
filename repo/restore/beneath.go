package restore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"memento/chunk"
	"memento/engram"
	"memento/repo"
	"memento/repo/pitr"
)

// A restore creates, truncates and removes files only below its own
// temporary directory, and never through a symlink that came from the
// snapshot: a validly signed snapshot may still hold a symlink where Engram
// keeps a directory (spaces/<id>/wal -> a live WAL elsewhere), and a point-in-
// time restore that followed it would cut and delete the live segments.
// Such a space snapshot is refused before anything is written
// (checkSpaceTree), and the directories a restore works in after writing the
// snapshot's tree are opened beneath the temporary directory without
// following any symlink (openDirBeneath).

// checkSpaceTree refuses a space snapshot whose space directory (tree) holds
// a symlink or a file where Engram keeps a directory (wal/, the tiers), or a
// symlink in wal/: a point-in-time restore writes, truncates and removes
// segments there.
func checkSpaceTree(ctx context.Context, r Repository, sn *repo.Snapshot, tree chunk.ID) error {
	t, err := r.LoadTree(ctx, sn.Space, tree)
	if err != nil {
		return fmt.Errorf("snapshot %s: spaces/%s: %w", sn.ShortID(), sn.Space, err)
	}
	for _, name := range engram.SpaceSubdirs {
		n := t.Find(name)
		if n == nil {
			continue
		}
		rel := "spaces/" + sn.Space + "/" + name
		if err := pitr.NeedSpaceDir(sn, rel, n); err != nil {
			return err
		}
		if name != "wal" {
			continue
		}
		wt, err := r.LoadTree(ctx, sn.Space, *n.Subtree)
		if err != nil {
			return fmt.Errorf("snapshot %s: %s: %w", sn.ShortID(), rel, err)
		}
		for _, s := range wt.Nodes {
			if s.Type == repo.NodeSymlink {
				return &repo.CorruptError{What: "snapshot " + sn.ShortID(), Err: repo.ErrUnsafePath,
					Detail: fmt.Sprintf("%s/%s is a symlink to %q in the WAL directory (a restore never follows a symlink from a snapshot)", rel, s.Name, s.LinkTarget)}
			}
		}
	}
	return nil
}

// openDirBeneath opens the directory rel (slash-separated, relative) below
// root, creating the missing ones with perm when mkdir is set, without ever
// following a symlink: each component is opened with openat2(2)
// RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS relative to the one before, or, on a
// kernel without openat2 (before 5.6, or a seccomp filter refusing it), with
// O_NOFOLLOW|O_DIRECTORY. A symlink on the way is an error (ELOOP or
// ENOTDIR), as is a file (ENOTDIR).
func openDirBeneath(root, rel string, mkdir bool, perm uint32) (*os.File, error) {
	p := filepath.Join(root, filepath.FromSlash(rel))
	fd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: root, Err: err}
	}
	for _, c := range strings.Split(rel, "/") {
		if c == "" || c == "." || c == ".." {
			unix.Close(fd)
			return nil, fmt.Errorf("%w: %q in %s", repo.ErrUnsafePath, c, rel)
		}
		if mkdir {
			if err := unix.Mkdirat(fd, c, perm); err != nil && !errors.Is(err, unix.EEXIST) {
				unix.Close(fd)
				return nil, &os.PathError{Op: "mkdir", Path: p, Err: err}
			}
		}
		next, err := openatNoFollow(fd, c)
		unix.Close(fd)
		if err != nil {
			return nil, &os.PathError{Op: "open", Path: p, Err: err}
		}
		fd = next
	}
	return os.NewFile(uintptr(fd), p), nil
}

// openatNoFollow opens the directory name in dirfd without following a
// symlink anywhere.
func openatNoFollow(dirfd int, name string) (int, error) {
	flags := unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC
	how := unix.OpenHow{Flags: uint64(flags), Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS}
	for try := 0; ; try++ {
		fd, err := unix.Openat2(dirfd, name, &how)
		switch {
		case err == nil:
			return fd, nil
		case (errors.Is(err, unix.EINTR) || errors.Is(err, unix.EAGAIN)) && try < 8: // EAGAIN: a rename raced the lookup
			continue
		case errors.Is(err, unix.ENOSYS), errors.Is(err, unix.EPERM):
			return unix.Openat(dirfd, name, flags, 0)
		}
		return -1, err
	}
}

// mkdirBeneath makes sure rel is a directory below root (creating it with
// perm if missing) reached through no symlink; see openDirBeneath.
func mkdirBeneath(root, rel string, perm uint32) error {
	d, err := openDirBeneath(root, rel, true, perm)
	if err != nil {
		return err
	}
	return d.Close()
}
