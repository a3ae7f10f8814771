//go:build !windows

package local

import (
	"errors"
	"os"
	"syscall"
)

// notDir is what stat returns when a parent of the path is a file.
var notDir = syscall.ENOTDIR

// syncDir makes a rename or create in dir durable. Some filesystems do not
// support fsync on a directory (EINVAL); there is nothing more to do there.
func syncDir(r *syncRing, dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = r.sync(d)
	cerr := d.Close()
	if err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOTSUP) {
		return err
	}
	return cerr
}
