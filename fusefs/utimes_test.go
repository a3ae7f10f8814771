package fusefs

import (
	"golang.org/x/sys/unix"
	"syscall"
)

func utimesNoFollow(p string, ts []syscall.Timespec) error {
	return unix.UtimesNanoAt(unix.AT_FDCWD, p, []unix.Timespec{unix.Timespec(ts[0]), unix.Timespec(ts[1])}, unix.AT_SYMLINK_NOFOLLOW)
}
