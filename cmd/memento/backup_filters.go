package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/spf13/pflag"

	"memento/repo/backup"
)

// pathBackupFlags are the flags of path backups only: what to leave out,
// where the list of paths comes from, standard input as a file, and the
// dry run. A space is backed up whole, so a --data-dir backup refuses them.
type pathBackupFlags struct {
	exclude       []string
	excludeFiles  []string
	iexclude      []string
	iexcludeFiles []string
	oneFileSystem bool
	filesFrom     []string
	stdin         bool
	stdinName     string
	dryRun        bool
}

func (f *pathBackupFlags) register(fl *pflag.FlagSet) {
	fl.StringArrayVar(&f.exclude, "exclude", nil, "leave out paths matching `PATTERN` (a glob with ** matched against the absolute path; anchored with a leading /; !PATTERN takes back what earlier ones left out) (repeatable)")
	fl.StringArrayVar(&f.excludeFiles, "exclude-file", nil, "read exclude patterns from `FILE`, one a line, # comments (repeatable)")
	fl.StringArrayVar(&f.iexclude, "iexclude", nil, "as --exclude, ignoring case (repeatable)")
	fl.StringArrayVar(&f.iexcludeFiles, "iexclude-file", nil, "as --exclude-file, ignoring case (repeatable)")
	fl.BoolVarP(&f.oneFileSystem, "one-file-system", "x", false, "stay on each path's file system: mount points are stored as empty directories")
	fl.StringArrayVar(&f.filesFrom, "files-from", nil, "read the paths to back up from `FILE` (- for standard input), one a line, # comments (repeatable)")
	fl.BoolVar(&f.stdin, "stdin", false, "back up standard input as one file (named by --stdin-filename)")
	fl.StringVar(&f.stdinName, "stdin-filename", "stdin", "the file name --stdin stores")
	fl.BoolVarP(&f.dryRun, "dry-run", "n", false, "read and chunk everything, report what would be stored, write nothing to the repository")
}

// any reports whether a flag of a path backup was given.
func (f *pathBackupFlags) any(fl *pflag.FlagSet) []string {
	var set []string
	for _, n := range []string{"exclude", "exclude-file", "iexclude", "iexclude-file", "one-file-system", "files-from", "stdin", "stdin-filename", "dry-run"} {
		if fl.Changed(n) {
			set = append(set, "--"+n)
		}
	}
	return set
}

// apply checks the flags and sets them on a path backup's options; paths
// are the command's arguments.
func (f *pathBackupFlags) apply(opts *backup.BackupOptions, paths []string, stdin io.Reader) error {
	for _, set := range []struct {
		flag     string
		patterns []string
		files    []string
		fold     bool
	}{{"exclude", f.exclude, f.excludeFiles, false}, {"iexclude", f.iexclude, f.iexcludeFiles, true}} {
		patterns := slices.Clone(set.patterns)
		for _, file := range set.files {
			lines, err := readListFile(file, stdin)
			if err != nil {
				return usagef("--%s-file: %v", set.flag, err)
			}
			patterns = append(patterns, lines...)
		}
		if err := opts.Exclude.Add(patterns, set.fold); err != nil {
			return usagef("--%s: %v", set.flag, err)
		}
	}
	for _, file := range f.filesFrom {
		lines, err := readListFile(file, stdin)
		if err != nil {
			return usagef("--files-from: %v", err)
		}
		if len(lines) == 0 {
			return usagef("--files-from %s names no path", file)
		}
		paths = append(paths, lines...)
	}
	if f.stdin {
		if len(paths) > 0 {
			return usagef("--stdin backs up standard input: give no paths")
		}
		opts.Stdin, opts.StdinName = stdin, f.stdinName
	}
	opts.Paths, opts.FullPaths, opts.OneFileSystem, opts.DryRun = paths, true, f.oneFileSystem, f.dryRun
	return nil
}

// readListFile reads a list of paths or patterns: one a line, blank lines
// and lines starting with # ignored, trailing spaces kept (a name may end
// in one), a carriage return of a DOS line end dropped. "-" is stdin.
func readListFile(name string, stdin io.Reader) ([]string, error) {
	var r io.Reader = stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	var out []string
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		l := strings.TrimSuffix(sc.Text(), "\r")
		if strings.TrimSpace(l) == "" || strings.HasPrefix(strings.TrimSpace(l), "#") {
			continue
		}
		out = append(out, l)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return out, nil
}
