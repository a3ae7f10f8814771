package fusefs

import "errors"

// Sentinel errors of mounting and unmounting, for errors.Is. The errors
// returned wrap them with the mountpoint and what to do about it.
var (
	// ErrFUSEUnavailable means the kernel's FUSE device cannot be used.
	ErrFUSEUnavailable = errors.New("FUSE is unavailable")
	// ErrMountpoint means the mountpoint is missing or not a directory.
	ErrMountpoint = errors.New("invalid mountpoint")
	// ErrBusy means the mountpoint is already mounted, or in use when unmounting.
	ErrBusy = errors.New("mountpoint is busy")
	// ErrNotMounted means there is no memento mount at the path.
	ErrNotMounted = errors.New("not mounted")
)
