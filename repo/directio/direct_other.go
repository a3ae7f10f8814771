//go:build !linux

package directio

import (
	"errors"
	"os"
)

var errUnsupported = errors.New("O_DIRECT is not supported on this system")

// setDirect turning O_DIRECT on always fails here, so Writers write through
// the page cache; turning it off is a no-op.
func setDirect(f *os.File, on bool) error {
	if on {
		return errUnsupported
	}
	return nil
}

func isInvalid(error) bool { return false }

// openDirect always fails here: packs are read through the page cache.
func openDirect(*os.File) (*os.File, error) { return nil, errUnsupported }
