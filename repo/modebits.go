package repo

import (
	"io/fs"
	"syscall"
)

// UnixPermBits converts the os.FileMode bits stored in a node's Mode
// (permissions plus Go's own setuid, setgid and sticky flags) to the Unix
// mode bits chmod(2) takes.
func UnixPermBits(m uint32) uint32 {
	fm := fs.FileMode(m)
	out := uint32(fm.Perm())
	if fm&fs.ModeSetuid != 0 {
		out |= syscall.S_ISUID
	}
	if fm&fs.ModeSetgid != 0 {
		out |= syscall.S_ISGID
	}
	if fm&fs.ModeSticky != 0 {
		out |= syscall.S_ISVTX
	}
	return out
}
