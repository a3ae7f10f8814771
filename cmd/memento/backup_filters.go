package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
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
	oneFileSystem bool
	filesFrom     []string
	stdin         bool
	stdinName     string
	dryRun        bool
}

func (f *pathBackupFlags) register(fl *pflag.FlagSet) {
	fl.StringArrayVar(&f.exclude, "exclude", nil, "leave out paths matching `PATTERN` (a glob with ** matched against the absolute path; anchored with a leading /) (repeatable)")
	fl.StringArrayVar(&f.excludeFiles, "exclude-file", nil, "read exclude patterns from `FILE`, one a line, # comments (repeatable)")
	fl.BoolVarP(&f.oneFileSystem, "one-file-system", "x", false, "stay on each path's file system: mount points are stored as empty directories")
	fl.StringArrayVar(&f.filesFrom, "files-from", nil, "read the paths to back up from `FILE` (- for standard input), one a line, # comments (repeatable)")
	fl.BoolVar(&f.stdin, "stdin", false, "back up standard input as one file (named by --stdin-filename)")
	fl.StringVar(&f.stdinName, "stdin-filename", "stdin", "the file name --stdin stores")
	fl.BoolVarP(&f.dryRun, "dry-run", "n", false, "read and chunk everything, report what would be stored, write nothing to the repository")
}

// any reports whether a flag of a path backup was given.
func (f *pathBackupFlags) any(fl *pflag.FlagSet) []string {
	var set []string
	for _, n := range []string{"exclude", "exclude-file", "one-file-system", "files-from", "stdin", "stdin-filename", "dry-run"} {
		if fl.Changed(n) {
			set = append(set, "--"+n)
		}
	}
	return set
}

// apply checks the flags and sets them on a path backup's options; paths
// are the command's arguments.
func (f *pathBackupFlags) apply(opts *backup.BackupOptions, paths []string, stdin io.Reader) error {
	var patterns []string
	patterns = append(patterns, f.exclude...)
	for _, file := range f.excludeFiles {
		lines, err := readListFile(file, stdin)
		if err != nil {
			return usagef("--exclude-file: %v", err)
		}
		patterns = append(patterns, lines...)
	}
	if len(patterns) > 0 {
		ex, err := backup.CompileExcludes(patterns)
		if err != nil {
			return usagef("%v", err)
		}
		opts.Exclude = ex
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
