//go:build linux

package directio

import (
	"errors"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// setDirect turns O_DIRECT on or off for f's open file description.
func setDirect(f *os.File, on bool) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	err = rc.Control(func(fd uintptr) {
		fl, err := unix.FcntlInt(fd, unix.F_GETFL, 0)
		if err != nil {
			ferr = err
			return
		}
		if on {
			fl |= unix.O_DIRECT
		} else {
			fl &^= unix.O_DIRECT
		}
		_, ferr = unix.FcntlInt(fd, unix.F_SETFL, fl)
	})
	if err != nil {
		return err
	}
	return ferr
}

func isInvalid(err error) bool { return errors.Is(err, unix.EINVAL) }

// openDirect opens f's file again, read-only with O_DIRECT.
func openDirect(f *os.File) (*os.File, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, err
	}
	var d *os.File
	var oerr error
	err = rc.Control(func(fd uintptr) {
		p := "/proc/self/fd/" + strconv.Itoa(int(fd))
		nfd, err := unix.Open(p, unix.O_RDONLY|unix.O_DIRECT|unix.O_CLOEXEC, 0)
		if err != nil {
			oerr = &os.PathError{Op: "open", Path: p, Err: err}
			return
		}
		d = os.NewFile(uintptr(nfd), f.Name())
	})
	if err != nil {
		return nil, err
	}
	return d, oerr
}
