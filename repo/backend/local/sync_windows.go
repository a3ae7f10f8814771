//go:build windows

package local

import "syscall"

var notDir = syscall.ENOTDIR

// syncDir is a no-op: Windows cannot open a directory for fsync, and NTFS
// journals renames itself.
func syncDir(*syncRing, string) error { return nil }
