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

	"github.com/bmatcuk/doublestar/v4"

	"memento/chunk"
	"memento/repo"
)

// ExcludePatterns decide which paths a path backup leaves out, as restic's
// --exclude does: a pattern is a glob (*, ?, [...], {a,b}, ** for any number
// of directories) matched against a path's absolute name. One that starts
// with / is anchored at the file system root; any other matches at any
// depth ("*.o" is any file ending in .o, "cache/tmp" any tmp in a directory
// named cache). An excluded directory is left out with everything below it.
type ExcludePatterns struct {
	globs []string
}

// CompileExcludes checks patterns and returns them ready to match. Blank
// patterns are refused: the caller drops comments and empty lines of a file.
func CompileExcludes(patterns []string) (*ExcludePatterns, error) {
	e := &ExcludePatterns{}
	for _, p := range patterns {
		g := strings.TrimSuffix(p, "/")
		if strings.TrimSpace(g) == "" {
			return nil, fmt.Errorf("exclude pattern %q is empty", p)
		}
		if strings.HasPrefix(g, "/") {
			g = strings.TrimLeft(g, "/")
		} else {
			g = "**/" + g
		}
		if !doublestar.ValidatePattern(g) {
			return nil, fmt.Errorf("exclude pattern %q is not a valid glob", p)
		}
		e.globs = append(e.globs, g)
	}
	return e, nil
}

// Match reports whether the absolute path p is excluded.
func (e *ExcludePatterns) Match(p string) bool {
	if e == nil {
		return false
	}
	rel := strings.TrimLeft(filepath.ToSlash(p), "/")
	for _, g := range e.globs {
		if ok, _ := doublestar.Match(g, rel); ok {
			return true
		}
	}
	return false
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
	items, err := readDirItems(top)
	if err != nil {
		return nil, nil, err
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
	if err := a.saveReader(ctx, in, name, n); err != nil {
		return chunk.ID{}, fmt.Errorf("backup from standard input: %w", err)
	}
	return a.saveTree(&repo.Tree{Nodes: []*repo.Node{n}})
}
