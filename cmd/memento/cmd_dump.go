package main

import (
	"bufio"
	"path"

	"github.com/spf13/cobra"

	"memento/repo"
	"memento/repo/inspect"
)

func newDumpCommand(a *app) *cobra.Command {
	var archive, target string
	var force bool
	c := &cobra.Command{
		Use:   "dump SNAPSHOT PATH",
		Short: "Write a file of a snapshot to stdout, or a directory as a tar archive",
		Long: `dump writes the content of the file at PATH in SNAPSHOT (an ID, a unique
prefix of at least 4 hex digits, or "latest") to stdout, every chunk read
and verified as restore reads it, and the whole file's BLAKE3 checked at the
end. A directory (or any PATH with --archive) is written as an archive:
tar (PAX, the default: modes, owners, mtimes, symlinks) or zip (modes,
mtimes, symlinks); names are relative to PATH's parent ("/" dumps the whole
snapshot). PATH is a path as 'memento ls' shows it.

  memento dump latest /src/go.mod > go.mod
  memento dump 9a8b7c6d /spaces/tenant_01 | tar -x -C /tmp/t
  memento dump --archive zip latest /src > src.zip
  memento dump --target go.mod latest /src/go.mod

--target FILE writes to FILE instead of stdout, atomically: under a
temporary name in FILE's directory, fsynced, then put in place, so a dump
that fails (a damaged chunk, a BLAKE3 mismatch, Ctrl-C) leaves no FILE at
all, where stdout would have had the bytes read so far. An existing FILE is
refused (exit 2) unless --force, which replaces it (a symlink at FILE is
replaced itself, not followed). The file gets mode 0666 less the umask.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if archive != "" && archive != inspect.Tar && archive != inspect.Zip {
				return usagef("--archive %q: want tar or zip", archive)
			}
			if force && target == "" {
				return usagef("--force is for --target: replace an existing FILE")
			}
			var tf *targetFile
			if target != "" {
				var err error
				if tf, err = createTarget(target, force); err != nil {
					return err
				}
				defer tf.abort() // after commit: removes nothing
			}
			ctx := cmd.Context()
			r, err := a.openRead(ctx)
			if err != nil {
				return err
			}
			defer r.Close()
			sn, err := r.FindSnapshot(ctx, args[0])
			if err != nil {
				return err
			}
			p := path.Clean("/" + args[1])
			n, _, err := inspect.Lookup(ctx, r, sn, p)
			if err != nil {
				return err
			}
			out := a.stdout
			if tf != nil {
				out = tf
			}
			w := bufio.NewWriterSize(out, 1<<20)
			if n != nil && n.Type == repo.NodeFile && archive == "" {
				err = inspect.DumpFile(ctx, r, sn, p, n, w)
			} else if n != nil && n.Type == repo.NodeSymlink && archive == "" {
				return usagef("snapshot %s: %s is a symlink to %q: dump it with --archive, or dump its target", sn.ShortID(), p, n.LinkTarget)
			} else {
				if archive == "" {
					archive = inspect.Tar
				}
				err = inspect.DumpArchive(ctx, r, sn, p, archive, w)
			}
			if err != nil {
				return err
			}
			if err := w.Flush(); err != nil {
				return err
			}
			if tf != nil {
				return tf.commit()
			}
			return nil
		},
	}
	c.Flags().StringVarP(&target, "target", "t", "", "write to this file instead of stdout (atomically: all or nothing)")
	c.Flags().BoolVar(&force, "force", false, "with --target: replace the file if it exists")
	c.Flags().StringVar(&archive, "archive", "", "archive format, also for a single file: tar or zip (default: tar for a directory)")
	return c
}
