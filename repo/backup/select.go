package backup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"memento/chunk"
	"memento/repo"
	"memento/repo/pathmatch"
)

// excludedPath reports whether the absolute path p is left out by the
// exclude patterns (pathmatch: restic's semantics, matched against the
// path without its leading '/').
func excludedPath(ex pathmatch.Set, p string) bool {
	return len(ex) > 0 && ex.Match(filepath.ToSlash(p))
}

// selection restricts which children of a directory a backup reads: nil
// is all of them, otherwise only the named ones, each with its own
// selection. Full-path snapshots reach their sources through the
// directories above them, which hold only the way down.
type selection map[string]selection

// fullPathRoots returns the top-level items of a full-path snapshot
// (LayoutFull): the sources' absolute paths as directories from the file
// system root down. A directory above a source is stored with its own
// metadata and only the way down; a source inside another source is just
// part of it. Symlinks above a source are resolved (the tree holds the
// directories the source really is in), and so are the manifest's paths.
func fullPathRoots(sources []string) ([]item, []string, error) {
	var paths []string
	for _, p := range sources {
		abs, err := filepath.Abs(p)
		if err != nil {
			return nil, nil, err
		}
		if _, err := os.Lstat(abs); errors.Is(err, fs.ErrNotExist) {
			return nil, nil, fmt.Errorf("backup source %s: %w: no such file or directory", p, repo.ErrNotFound)
		} else if err != nil {
			return nil, nil, fmt.Errorf("backup source %s: %w", p, err)
		}
		if abs != "/" {
			dir, err := filepath.EvalSymlinks(filepath.Dir(abs))
			if err != nil {
				return nil, nil, fmt.Errorf("backup source %s: %w", p, err)
			}
			abs = filepath.Join(dir, filepath.Base(abs))
		}
		paths = append(paths, abs)
	}
	sort.Strings(paths)
	paths = slicesCompact(paths)
	root := selection{}
	whole := false // "/" is a source: everything
	for _, p := range paths {
		if p == "/" {
			whole = true
			continue
		}
		sel := root
		parts := strings.Split(strings.TrimPrefix(p, "/"), "/")
		for i, part := range parts {
			next, ok := sel[part]
			if ok && next == nil {
				break // an ancestor is a source: all of it is taken
			}
			if i == len(parts)-1 {
				sel[part] = nil
				break
			}
			if !ok {
				next = selection{}
				sel[part] = next
			}
			sel = next
		}
	}
	top := item{path: "/", sel: root}
	if whole {
		top.sel = nil
	}
	items, fd, err := readDirItems(top, nil, dirFlags)
	if err != nil {
		return nil, nil, err
	}
	if fd >= 0 {
		syscall.Close(fd) // the roots are looked up by path
	}
	var rootDev uint64 // with "/" a source, --one-file-system stays on the root's file system
	if fi, err := os.Lstat("/"); err == nil && whole {
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			rootDev = st.Dev
		}
	}
	for i := range items {
		items[i].source = whole || items[i].sel == nil
		items[i].dev = rootDev
	}
	return items, paths, nil
}

func slicesCompact(s []string) []string {
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

// saveStdin stores what in yields as the one file name of a snapshot's
// root, owned by this process's user, mode 0644, mtime now, streamed
// through the chunk pipeline like any file.
func (a *archiver) saveStdin(ctx context.Context, in io.Reader, name string) (chunk.ID, error) {
	n := &repo.Node{Name: name, Type: repo.NodeFile, Mode: 0o644, MTimeNS: time.Now().UnixNano(),
		UID: uint32(os.Getuid()), GID: uint32(os.Getgid())}
	a.files.Add(1)
	a.prog.Files.Add(1)
	if err := a.saveReader(ctx, in, name, n, nil); err != nil {
		return chunk.ID{}, fmt.Errorf("backup from standard input: %w", err)
	}
	return a.saveTree(&repo.Tree{Nodes: []*repo.Node{n}})
}
