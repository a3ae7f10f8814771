package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/spf13/cobra"

	"memento/fusefs"
)

// unmountGrace is how long a signalled mount waits for open files to be
// closed after detaching, before it exits anyway.
const unmountGrace = 5 * time.Second

type mountFlags struct {
	allowOther bool
	cacheSize  string
	debugFUSE  bool
	pitrViews  int
}

func newMountCommand(a *app) *cobra.Command {
	var f mountFlags
	c := &cobra.Command{
		Use:   "mount MOUNTPOINT",
		Short: "Mount the repository read-only: every snapshot, space, host and tag as a directory",
		Long: `Mount serves the repository as a read-only filesystem until Ctrl-C, SIGTERM
or 'memento umount MOUNTPOINT':

  snapshots/<id>/...                       a snapshot's files, as backed up
  snapshots/latest -> <id>
  spaces/<space>/latest -> ../../snapshots/<id>
  spaces/<space>/by-time/<time> -> ../../../snapshots/<id>
  spaces/<space>/at/<T>/                   the space as recovered at instant T
  spaces/<space>/timelines/<N>/at/<T>/     ... on timeline N (at/ reads the newest)
  hosts/<host>/<id>, tags/<tag>/<id>       links to snapshots
  hosts/<host>/spaces/<space>/...          as spaces/<space>/, of the host's database
  hosts/<host>/identities/<identity>/spaces/<space>/...   of one database

A space is one database's (data dir identity): where several databases have
a space of that id, spaces/<space>/ holds only a README naming each one's
directory under hosts/, and recovers nothing (as 'restore --space S'
refuses without --identity).

spaces/<space>/at/ accepts any absolute instant 'memento restore --at'
accepts as a directory name, zone-less ones in --tz (not a relative one:
a name must mean the same instant each time; its README lists the
recoverable ranges). The first lookup
of an instant restores the space to it, as 'memento restore --space S --at T'
would, into a private directory under the cache dir, with memories.jsonl
(the state at T, one memory a line) and state.json (seq, time and state
digest) beside it; the last --pitr-views instants stay on disk until the
unmount.

Nothing is read until it is looked at, every byte is verified against its
chunk ID (a damaged chunk gives EIO and a log line, never wrong bytes), and
new snapshots appear without remounting.`,
		Example: `  memento mount /mnt/memento
  cp /mnt/memento/spaces/tenant_01/latest/spaces/tenant_01/metadata.json /tmp/
  memento umount /mnt/memento`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.mount(cmd.Context(), args[0], f)
		},
	}
	fl := c.Flags()
	fl.BoolVar(&f.allowOther, "allow-other", false, "let other users read the mount (file modes are enforced)")
	fl.StringVar(&f.cacheSize, "cache-size", "256MiB", "memory for decompressed chunks")
	fl.IntVar(&f.pitrViews, "pitr-views", fusefs.DefaultPointInTimeViews, "how many recovered instants (spaces/<space>/at/<T>/) stay on disk")
	fl.BoolVar(&f.debugFUSE, "debug-fuse", false, "log every FUSE request")
	_ = fl.MarkHidden("debug-fuse")
	return c
}

func (a *app) mount(ctx context.Context, mountpoint string, f mountFlags) error {
	size, err := humanize.ParseBytes(f.cacheSize)
	if err != nil || size < 1<<20 {
		return usagef("--cache-size %q: give a size of at least 1MiB, e.g. 256MiB or 2GiB", f.cacheSize)
	}
	if f.pitrViews < 1 {
		return usagef("--pitr-views %d: give at least 1", f.pitrViews)
	}
	// Check the mountpoint before asking for a password.
	if _, err := fusefs.CheckMountpoint(mountpoint); err != nil {
		return mountErr(err)
	}
	workers := moreProcsForMount()
	r, err := a.openRead(ctx)
	if err != nil {
		return err
	}
	defer r.Close()
	// A shared lock keeps prune from deleting packs while they are served.
	lock, err := r.Lock(ctx, false, "mount")
	if err != nil {
		return err
	}
	defer lock.Unlock()
	ctx = lock.Context() // cancelled if the lock is lost
	pit, err := fusefs.NewRecoverer(r, fusefs.RecovererOptions{CacheDir: a.cacheDir, Logger: a.log, Printf: a.printf})
	if err != nil {
		return err
	}
	defer pit.Cleanup() // after srv.Unmount, which drops every view
	srv, err := fusefs.Mount(r, mountpoint, fusefs.Options{
		CacheSize: int64(size), AllowOther: f.allowOther, Logger: a.log, Debug: f.debugFUSE,
		PointInTimeSel: pit.RecoverSel, ParseInstant: a.parseMountInstant, PointInTimeViews: f.pitrViews, Planner: pit.Planner(),
		PrefetchWorkers: workers,
	})
	if err != nil {
		return mountErr(err)
	}
	mp := srv.Mountpoint()
	a.printf("mounted %s at %s; Ctrl-C or 'memento umount %s' to unmount\n", r.Backend().Location(), mp, mp)
	if err := a.emit(map[string]string{"repository": r.Backend().Location(), "mountpoint": mp, "status": "mounted"}); err != nil {
		return err
	}
	select {
	case <-ctx.Done():
		lazy, err := srv.Unmount(unmountGrace)
		if err != nil {
			return fmt.Errorf("unmount %s: %w", mp, err)
		}
		if lazy {
			a.printf("unmounted %s (files were still open: detached lazily)\n", mp)
		} else {
			a.printf("unmounted %s\n", mp)
		}
	case <-srv.Done():
		_, _ = srv.Unmount(0)
		a.printf("unmounted %s\n", mp)
	}
	return nil
}

// mountErr makes a bad mountpoint a usage error (exit 2); FUSE problems
// and busy mountpoints stay failures (exit 1).
func mountErr(err error) error {
	if errors.Is(err, fusefs.ErrMountpoint) {
		return usagef("%v", err)
	}
	return err
}

func newUmountCommand(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "umount MOUNTPOINT",
		Short: "Unmount a 'memento mount' (lazily if files in it are still open)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			lazy, err := fusefs.Unmount(args[0])
			if err != nil {
				return err
			}
			if lazy {
				a.printf("%s is in use: detached; it disappears for good when the last open file is closed\n", args[0])
			} else {
				a.printf("unmounted %s\n", args[0])
			}
			return a.emit(map[string]any{"mountpoint": args[0], "lazy": lazy})
		},
	}
}

// moreProcsForMount doubles GOMAXPROCS unless the GOMAXPROCS variable is
// set, and returns how many prefetch workers the mount should run: twice
// the Ps it had before (its default follows the CPUs and the cgroup's CPU
// quota). A mount server's goroutines block in system calls all the time
// (FUSE requests read from /dev/fuse, pack runs read around the page
// cache), and a goroutine in a system call keeps its P until the runtime
// takes it back; with one P per CPU the decoding goroutines then waited for
// a P while a CPU sat idle. Reading the bench's 107 MB warm page file
// through a mount took about 10 % less time with two. The CPU work stays
// bounded by the workers, which are counted before the doubling. Setting
// GOMAXPROCS here stops the runtime from following later quota changes; a
// mount lives as long as its process, so that is the quota it started with.
func moreProcsForMount() (prefetchWorkers int) {
	procs := runtime.GOMAXPROCS(0)
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(2 * procs)
	}
	return max(4, 2*procs)
}
